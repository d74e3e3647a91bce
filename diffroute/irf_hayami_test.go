package diffroute

import (
	"math"
	"testing"
)

// TestHayamiImpulseClosedForm checks the log-space evaluation against the
// diffusive-wave kernel written out directly, L/(2·sqrt(π·D·t³))·
// exp(−(L − c·(t − shift))²/(4·D·t)) at t = (k+1)·r, normalised to sum 1.
func TestHayamiImpulseClosedForm(t *testing.T) {
	irf, err := LookupIRF("hayami")
	if err != nil {
		t.Fatal(err)
	}
	un, err := LookupIRF("hayami_unshifted")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ L, D, c, r float64 }{{1, 0.2, 2, 0.25}, {0.7, 0.05, 1.3, 1.0 / 24}, {3, 1.5, 0.5, 0.5}} {
		for _, shifted := range []bool{true, false} {
			h := make([]float64, 200)
			fn := un.Impulse
			shift := 0.0
			if shifted {
				fn, shift = irf.Impulse, c.r
			}
			if err := fn(h, []float64{c.L, c.D, c.c}, c.r); err != nil {
				t.Fatal(err)
			}
			want := make([]float64, len(h))
			sum := 0.0
			for k := range want {
				tt := float64(k+1) * c.r
				a := c.L - c.c*(tt-shift)
				want[k] = c.L / (2 * math.Sqrt(math.Pi*c.D*tt*tt*tt)) * math.Exp(-a*a/(4*c.D*tt))
				sum += want[k]
			}
			for k := range want {
				if d := math.Abs(h[k] - want[k]/sum); d > 1e-12 {
					t.Fatalf("%+v shifted=%v: h[%d] = %.15g, want %.15g", c, shifted, k, h[k], want[k]/sum)
				}
			}
		}
	}
}
