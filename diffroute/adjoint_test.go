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

// The paired scalar adjoint (adjointScalar) and forward loop
// (sectionScalar64) equal the one-sub-step-at-a-time references to
// float64 rounding, for odd and even f, f = 1 included.
func TestAdjointScalarEqualsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 10))
	for _, f := range []int{1, 2, 3, 5, 6, 25} {
		for _, w := range [][3]float64{{1 / float64(f), 0, 0}, {0, 1, 0}, {1 / float64(f), -1 / float64(f), 1 / float64(f)}} {
			for _, rapid := range []bool{true, false} {
				nq := 5
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
				got := args(append([]float64(nil), y...))
				adjointScalar(got)
				close := func(what string, a, b float64) {
					t.Helper()
					if math.Abs(a-b) > 1e-12*(1+math.Abs(a)) {
						t.Errorf("f=%d w=%v %s: paired %v, reference %v", f, w, what, b, a)
					}
				}
				for n := range ref.y {
					close("ub", ref.y[n], got.y[n])
				}
				for q := 0; q < nq; q++ {
					close("sumL", ref.sumL[q], got.sumL[q])
					close("firstL", ref.firstL[q], got.firstL[q])
				}
				close("lam", ref.lam, got.lam)
				close("du", ref.du, got.du)
				close("dup", ref.dup, got.dup)
				close("dy", ref.dy, got.dy)

				// Forward: against the recurrence one sub-step at a time.
				lat := make([]float64, nq)
				for k := range lat {
					lat[k] = rng.Float64()
				}
				yv, up, lp := 0.4, -0.2, 0.3
				want, wantOut := make([]float64, fl), make([]float64, nq)
				{
					yr, upr, lpr := yv, up, lp
					for q := 0; q < nq; q++ {
						l := lat[q]
						lprev := l
						if !rapid {
							lprev = lpr
						}
						before, sum := yr, 0.0
						for j := 0; j < f; j++ {
							n := q*f + j
							xp := upr + l
							if j == 0 {
								xp = upr + lprev
							}
							yr = s.B0*(u[n]+l) + s.B1*xp + s.A1*yr
							want[n] = yr
							sum += yr
							upr = u[n]
						}
						wantOut[q] = w[0]*sum + w[1]*yr + w[2]*before
						lpr = l
					}
				}
				dst, out := make([]float64, fl), make([]float64, nq)
				sectionScalar64(s, f, rapid, w, &yv, &up, &lp, u, dst, mixedSeries{s64: lat}, mixedSeries{s64: out})
				for n := range want {
					close("forward y", want[n], dst[n])
				}
				for q := range wantOut {
					close("forward out", wantOut[q], out[q])
				}
				close("forward state", want[fl-1], yv)
				close("forward inflow state", u[fl-1], up)
			}
		}
	}
}
