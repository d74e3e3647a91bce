package diffroute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The vector adjoint kernel equals the scalar reference (adjointSection)
// to float64 rounding, for every step weighting, across blocks.
func TestAdjointVectorEqualsScalar(t *testing.T) {
	if !haveSectionVector() {
		t.Skip("no vector kernel on this machine")
	}
	rng := rand.New(rand.NewPCG(3, 9))
	for _, f := range []int{4, 8, 24} {
		for _, w := range [][3]float64{{1 / float64(f), 0, 0}, {0, 1, 0}, {1 / float64(f), -1 / float64(f), 1 / float64(f)}} {
			nq := 7
			fl := nq * f
			mk := func() []float64 {
				v := make([]float64, fl)
				for k := range v {
					v[k] = rng.Float64()*2 - 1
				}
				return v
			}
			ubd, y, u := mk(), mk(), mk()
			gy := make([]float64, nq)
			for k := range gy {
				gy[k] = rng.Float64()
			}
			s := Section{B0: 0.3, B1: -0.1, A1: 0.8}
			args := func(y []float64) *adjArgs {
				return &adjArgs{s: s, f: f, ubd: ubd, y: y, u: u, gy: gy, w: w, gyn: 0.7, y0: 0.4, up0: -0.2, lam: 0.9,
					sumL: make([]float64, nq), firstL: make([]float64, nq)}
			}
			ref := args(append([]float64(nil), y...))
			adjointSection(ref)
			vec := args(append([]float64(nil), y...))
			if !adjointVector(vec) {
				t.Fatal("vector kernel refused")
			}
			close := func(what string, a, b float64) {
				t.Helper()
				if math.Abs(a-b) > 1e-12*(1+math.Abs(a)) {
					t.Errorf("f=%d w=%v %s: vector %v, scalar %v", f, w, what, b, a)
				}
			}
			for n := range ref.y {
				close("ub", ref.y[n], vec.y[n])
			}
			for q := 0; q < nq; q++ {
				close("sumL", ref.sumL[q], vec.sumL[q])
				close("firstL", ref.firstL[q], vec.firstL[q])
			}
			close("lam", ref.lam, vec.lam)
			close("du", ref.du, vec.du)
			close("dup", ref.dup, vec.dup)
			close("dy", ref.dy, vec.dy)
		}
	}
}
