package diffroute

import (
	"math"
	"strings"
	"testing"
	"time"
)

// The incomplete gamma function against closed forms: P(k, x) = 1 −
// e^(−x)·Σ_{j<k} x^j/j! for whole k, P(½, x) = erf(√x), P(3/2, x) =
// erf(√x) − 2·√(x/π)·e^(−x); both branches (x below and above a+1).
func TestIncGammaClosedForms(t *testing.T) {
	erlang := func(k int, x float64) float64 {
		s, term := 0.0, 1.0
		for j := 0; j < k; j++ {
			if j > 0 {
				term *= x / float64(j)
			}
			s += term
		}
		return 1 - math.Exp(-x)*s
	}
	for _, x := range []float64{1e-3, 0.1, 0.7, 1.5, 2.9, 4, 7.5, 13, 30, 80} {
		for _, c := range []struct {
			a    float64
			want float64
		}{
			{1, erlang(1, x)}, {2, erlang(2, x)}, {5, erlang(5, x)}, {12, erlang(12, x)},
			{0.5, math.Erf(math.Sqrt(x))},
			{1.5, math.Erf(math.Sqrt(x)) - 2*math.Sqrt(x/math.Pi)*math.Exp(-x)},
		} {
			g := incGamma(c.a, x)
			if d := math.Abs(g.P - c.want); d > 1e-14*max(1, c.want) {
				t.Errorf("P(%g, %g) = %.17g, closed form %.17g", c.a, x, g.P, c.want)
			}
			if d := math.Abs(g.P + g.Q - 1); d > 1e-15 {
				t.Errorf("P + Q at (%g, %g) = 1 + %g", c.a, x, g.P+g.Q-1)
			}
		}
	}
	// Q's relative accuracy in the tail, where the unit hydrograph lives
	// for large t: Q(1, x) = e^(−x).
	for _, x := range []float64{20, 100, 500} {
		if q := incGamma(1, x).Q; math.Abs(q-math.Exp(-x)) > 1e-13*math.Exp(-x) {
			t.Errorf("Q(1, %g) = %g, want %g", x, q, math.Exp(-x))
		}
	}
}

// ψ against its values at ½ and whole numbers; ∂P/∂a against central
// differences of P.
func TestDigammaAndIncGammaDerivative(t *testing.T) {
	const euler = 0.57721566490153286061
	if d := digamma(1) + euler; math.Abs(d) > 4e-15 {
		t.Errorf("ψ(1) + γ = %g", d)
	}
	if d := digamma(0.5) + euler + 2*math.Ln2; math.Abs(d) > 1e-14 {
		t.Errorf("ψ(½) + γ + 2 ln 2 = %g", d)
	}
	h := -euler
	for k := 1; k < 40; k++ {
		if d := digamma(float64(k)) - h; math.Abs(d) > 1e-14*max(1, math.Abs(h)) {
			t.Errorf("ψ(%d) = %.17g, want %.17g", k, digamma(float64(k)), h)
		}
		h += 1 / float64(k)
	}
	for _, a := range []float64{0.3, 0.9, 1, 2.5, 7, 31} {
		for _, x := range []float64{0.05, 0.5, 1.2, 3, 6, 11, 25, 60} {
			e := 1e-5 * a
			// differences of P, or of −Q where P is close to 1
			v := func(a float64) float64 { return incGamma(a, x).P }
			if incGamma(a, x).Q < 0.5 {
				v = func(a float64) float64 { return -incGamma(a, x).Q }
			}
			num := (8*(v(a+e)-v(a-e)) - (v(a+2*e) - v(a-2*e))) / (12 * e)
			got := incGamma(a, x).dPda
			if d := math.Abs(got - num); d > 1e-8*max(math.Abs(num), 1e-6) {
				t.Errorf("∂P/∂a at (%g, %g) = %.12g, central difference %.12g", a, x, got, num)
			}
		}
	}
}

// The gamma unit hydrograph: n = 1 is the exact exponential, whole n the
// Erlang distribution's mass per sub-step; Σ h → 1; its derivatives match
// central differences.
func TestNashGammaImpulse(t *testing.T) {
	irf, err := LookupIRF("nash_gamma")
	if err != nil {
		t.Fatal(err)
	}
	r := 0.25
	h := make([]float64, 400)
	if err := irf.Impulse(h, []float64{0.8, 1}, r); err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		want := math.Exp(-float64(k)*r/0.8) * -math.Expm1(-r/0.8)
		if math.Abs(v-want) > 1e-15*max(want, 1e-300)+1e-300 && math.Abs(v-want) > 1e-13*want {
			t.Fatalf("n = 1: h[%d] = %g, want %g", k, v, want)
		}
	}
	for _, p := range [][]float64{{0.3, 3}, {0.5, 0.6}, {0.2, 7.3}, {1.5, 2}} {
		if err := irf.Impulse(h, p, r); err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for _, v := range h {
			if v < 0 {
				t.Fatalf("%v: negative tap %g", p, v)
			}
			s += v
		}
		if math.Abs(s-incGamma(p[1], float64(len(h))*r/p[0]).P) > 1e-14 {
			t.Errorf("%v: Σh = %.16g, want P(n, W·r/tau)", p, s)
		}
		if p[1] == 3 { // Erlang: P(3, x) in closed form
			F := func(x float64) float64 { return 1 - math.Exp(-x)*(1+x+x*x/2) }
			for k := range 30 {
				want := F(float64(k+1)*r/p[0]) - F(float64(k)*r/p[0])
				if math.Abs(h[k]-want) > 1e-14 {
					t.Errorf("%v: h[%d] = %g, Erlang %g", p, k, h[k], want)
				}
			}
		}
		dh := [][]float64{make([]float64, 60), make([]float64, 60)}
		if err := irf.ImpulseGrad(dh, p, r); err != nil {
			t.Fatal(err)
		}
		for j := range 2 {
			hp, hm, hp2, hm2 := make([]float64, 60), make([]float64, 60), make([]float64, 60), make([]float64, 60)
			e := 1e-5 * p[j]
			at := func(dst []float64, d float64) {
				q := append([]float64(nil), p...)
				q[j] += d
				if err := irf.Impulse(dst, q, r); err != nil {
					t.Fatal(err)
				}
			}
			at(hp, e)
			at(hm, -e)
			at(hp2, 2*e)
			at(hm2, -2*e)
			top := 0.0
			for k := range dh[j] {
				top = max(top, math.Abs(dh[j][k]))
			}
			for k := range dh[j] {
				num := (8*(hp[k]-hm[k]) - (hp2[k] - hm2[k])) / (12 * e)
				if math.Abs(dh[j][k]-num) > 1e-8*top {
					t.Errorf("%v: ∂h[%d]/∂%s = %.12g, central difference %.12g", p, k, irf.Params[j], dh[j][k], num)
				}
			}
		}
	}
	for _, p := range [][]float64{{0, 2}, {-1, 2}, {0.5, 0}, {0.5, math.NaN()}} {
		if err := irf.Impulse(h, p, r); err == nil {
			t.Errorf("%v: no error", p)
		}
	}
}

// Asking the integer cascade for an n gradient says why not and where to go.
func TestNashCascadeNGradientRefused(t *testing.T) {
	irf, _ := LookupIRF("nash_cascade")
	err := irf.GradParam("n")
	if err == nil || !strings.Contains(err.Error(), "nash_gamma") || strings.Contains(err.Error(), "\n") {
		t.Errorf("nash_cascade n: %v", err)
	}
	if err := irf.GradParam("tau"); err != nil {
		t.Errorf("nash_cascade tau: %v", err)
	}
	g, _ := LookupIRF("nash_gamma")
	for _, name := range []string{"tau", "n"} {
		if err := g.GradParam(name); err != nil {
			t.Errorf("nash_gamma %s: %v", name, err)
		}
	}
	if err := g.GradParam("k"); err == nil {
		t.Errorf("nash_gamma k: no error")
	}
	lag, _ := LookupIRF("pure_lag")
	if err := lag.GradParam("delay"); err == nil || !strings.Contains(err.Error(), "whole sub-steps") {
		t.Errorf("pure_lag delay: %v", err)
	}
}

// TestNashGammaExtremeParams: parameters at the edges of what gammaCheck
// accepts give taps in [0, 1] summing to at most 1, finite gradients, and
// no stall: a tau of 1e-300 steps puts every tap but the first far in the
// tail, where the continued fraction of Q once ran to its iteration cap
// at each tap (minutes for a kernel build; well under a second now even on
// a loaded machine, hence the 5 s bound).
func TestNashGammaExtremeParams(t *testing.T) {
	start := time.Now()
	for _, tau := range []float64{1e-300, 1e-20, 1e-3, 2, 1e10, 1e300} {
		for _, n := range []float64{1e-300, 1e-8, 0.5, 3, 1e4} {
			h := make([]float64, 4096)
			dh := [][]float64{make([]float64, len(h)), make([]float64, len(h))}
			p := []float64{tau, n}
			if err := nashGammaImpulse(h, p, 1); err != nil {
				t.Fatal(err)
			}
			if err := nashGammaImpulseGrad(dh, p, 1); err != nil {
				t.Fatal(err)
			}
			s := 0.0
			for k, v := range h {
				if !(v >= 0 && v <= 1) || math.IsNaN(dh[0][k]) || math.IsInf(dh[0][k], 0) || math.IsNaN(dh[1][k]) || math.IsInf(dh[1][k], 0) {
					t.Fatalf("tau %g, n %g: tap %d = %g, gradients %g, %g", tau, n, k, v, dh[0][k], dh[1][k])
				}
				s += v
			}
			if s > 1+1e-12 {
				t.Errorf("tau %g, n %g: taps sum to %.17g > 1", tau, n, s)
			}
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("60 impulse responses of 4096 taps took %v", d)
	}
}
