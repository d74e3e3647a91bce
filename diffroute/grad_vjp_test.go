package diffroute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The recursive adjoint's shortcut for built-in convolution IRFs
// (impulseVJP: Σ_k g[k]·∂h[k]/∂θ from the taps) equals ImpulseGrad
// contracted with g, for kernels whose tails underflow to zero too.
func TestImpulseVJPMatchesImpulseGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	for _, name := range []string{"hayami", "hayami_unshifted"} {
		irf, err := LookupIRF(name)
		if err != nil || irf.impulseVJP == nil {
			t.Fatalf("%s: %v (no impulseVJP)", name, err)
		}
		for _, c := range []struct {
			p []float64
			r float64
			w int
		}{{[]float64{2, 1, 4}, 1.0 / 24, 384}, {[]float64{1, 0.5, 6}, 1.0 / 4, 64}, {[]float64{30, 0.01, 3}, 1.0 / 8, 400}, {[]float64{0.3, 3, 0}, 1, 16}} {
			h := make([]float64, c.w)
			if err := irf.Impulse(h, c.p, c.r); err != nil {
				t.Fatal(err)
			}
			g := make([]float64, c.w)
			for k := range g {
				g[k] = rng.NormFloat64()
			}
			dh := make([][]float64, 3)
			for j := range dh {
				dh[j] = make([]float64, c.w)
			}
			if err := irf.ImpulseGrad(dh, c.p, c.r); err != nil {
				t.Fatal(err)
			}
			got := make([]float64, 3)
			irf.impulseVJP(got, g, h, c.p, c.r)
			gh := 0.0 // the size of the terms either sum cancels
			for k := range g {
				gh += math.Abs(g[k]) * h[k]
			}
			for j := range got {
				want, scale := 0.0, 0.0
				for k := range g {
					want += g[k] * dh[j][k]
					scale += math.Abs(g[k] * dh[j][k])
				}
				if math.Abs(got[j]-want) > 1e-12*scale+1e-14*gh || math.IsNaN(got[j]) {
					t.Errorf("%s %v: parameter %d: VJP %.15g, ImpulseGrad contracted %.15g", name, c.p, j, got[j], want)
				}
			}
		}
	}
}
