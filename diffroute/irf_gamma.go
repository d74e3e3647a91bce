package diffroute

import (
	"fmt"
	"math"
)

// The continuous Nash cascade ("nash_gamma"): n linear reservoirs of storage
// constant tau in series, n any positive real, whose unit hydrograph is the
// gamma density
//
//	u(t) = t^(n−1)·e^(−t/tau) / (Γ(n)·tau^n),
//
// integrated over each sub-step: h[k] = ∫ u over [k·r, (k+1)·r] = the
// fraction of a pulse entering at the start of sub-step 0 that leaves during
// sub-step k, P(n, (k+1)·r/tau) − P(n, k·r/tau) with P the regularised
// lower incomplete gamma function. Σ h = 1 over an unbounded window, as for
// the other mass-conserving IRFs; n = 1 is the exact exponential
// e^(−k·r/tau)·(1 − e^(−r/tau)). It has no recursive form, so routers
// convolve it over the MaxDelay window, and both parameters have a
// gradient:
//
//	∂h[k]/∂tau = g(x_k) − g(x_{k+1}),  g(x) = x^n·e^(−x) / (Γ(n)·tau), x_k = k·r/tau,
//	∂h[k]/∂n   = ∂P/∂n(n, x_{k+1}) − ∂P/∂n(n, x_k),
//
// the last from the incomplete gamma function's series or continued
// fraction differentiated term by term.

func gammaCheck(p []float64) (tau, n float64, err error) {
	tau, n = p[0], p[1]
	if !(tau > 0) || math.IsInf(tau, 0) {
		return 0, 0, fmt.Errorf("nash_gamma tau = %v must be finite and > 0", tau)
	}
	if !(n > 0) || n > 1e4 {
		return 0, 0, fmt.Errorf("nash_gamma n = %v must be in (0, 1e4]", n)
	}
	return tau, n, nil
}

// nashGammaImpulse fills h with the gamma unit hydrograph integrated over
// sub-steps.
func nashGammaImpulse(h, p []float64, r float64) error {
	tau, n, err := gammaCheck(p)
	if err != nil {
		return err
	}
	ga := newGammaA(n)
	lo := ga.at(0)
	for k := range h {
		hi := ga.at(float64(k+1) * r / tau)
		h[k] = lo.mass(hi)
		lo = hi
	}
	return nil
}

// nashGammaImpulseGrad fills dh[0] = ∂h/∂tau and dh[1] = ∂h/∂n.
func nashGammaImpulseGrad(dh [][]float64, p []float64, r float64) error {
	tau, n, err := gammaCheck(p)
	if err != nil {
		return err
	}
	lgn, _ := math.Lgamma(n)
	g := func(x float64) float64 { // −∂P(n, t/tau)/∂tau at x = t/tau
		if x == 0 {
			return 0
		}
		return math.Exp(n*math.Log(x)-x-lgn) / tau
	}
	ga := newGammaA(n)
	lo := ga.at(0)
	glo := 0.0
	for k := range dh[0] {
		x := float64(k+1) * r / tau
		hi := ga.at(x)
		ghi := g(x)
		dh[0][k] = glo - ghi
		dh[1][k] = hi.dPda - lo.dPda
		lo, glo = hi, ghi
	}
	return nil
}

// gammaP is the regularised incomplete gamma function at one point: P, its
// complement Q = 1 − P (each accurate where it is small) and ∂P/∂a.
type gammaP struct {
	P, Q, dPda float64
}

// mass returns P(hi) − P(lo), from whichever of P and Q keeps its digits,
// never below 0 (P grows with x; rounding alone can make the difference
// negative).
func (lo gammaP) mass(hi gammaP) float64 {
	if lo.Q < 0.5 {
		return max(0, lo.Q-hi.Q)
	}
	return max(0, hi.P-lo.P)
}

// gammaA holds what the incomplete gamma function of one a needs at every
// x: log Γ and ψ at a and a+1.
type gammaA struct {
	a, lga, lga1, psi, psi1 float64
}

func newGammaA(a float64) gammaA {
	lga, _ := math.Lgamma(a)
	psi := digamma(a)
	return gammaA{a: a, lga: lga, lga1: lga + math.Log(a), psi: psi, psi1: psi + 1/a}
}

// incGamma evaluates P(a, x) = γ(a, x)/Γ(a) and ∂P/∂a for a > 0, x ≥ 0.
func incGamma(a, x float64) gammaP { return newGammaA(a).at(x) }

// at evaluates P(a, x) and ∂P/∂a at x ≥ 0: the power series below a+1,
// Lentz's continued fraction for Q above, each carried with its derivative
// in a.
func (g gammaA) at(x float64) gammaP {
	a := g.a
	if x == 0 {
		return gammaP{P: 0, Q: 1}
	}
	lx := math.Log(x)
	if x < a+1 {
		// P = e^(−x)·x^a/Γ(a+1) · Σ_j x^j/((a+1)…(a+j))
		pre := math.Exp(a*lx - x - g.lga1)
		term, dterm := 1.0, 0.0 // a term and its derivative in a
		s, ds := 1.0, 0.0
		for j := 1; j < 100000; j++ {
			q := x / (a + float64(j))
			dterm = dterm*q - term*q/(a+float64(j))
			term *= q
			s += term
			ds += dterm
			if term < 1e-17*s && math.Abs(dterm) <= 1e-17*math.Abs(ds) {
				break
			}
		}
		P := pre * s
		return gammaP{P: P, Q: 1 - P, dPda: pre * (ds + s*(lx-g.psi1))}
	}
	// Q = e^(−x)·x^a/Γ(a) · 1/(x+1−a− 1·(1−a)/(x+3−a− 2·(2−a)/(x+5−a− …)))
	// by the modified Lentz method on dual numbers (value, ∂/∂a). Where the
	// prefactor underflows, Q and ∂Q/∂a are 0 (the fraction is below 1):
	// far out in the tail (a tiny tau), where x+1−a+2i no longer changes
	// with i in floating point and the fraction would not converge.
	pre := math.Exp(a*lx - x - g.lga)
	if pre == 0 {
		return gammaP{P: 1, Q: 0}
	}
	const tiny = 1e-300
	b := dual{x + 1 - a, -1}
	c := dual{1 / tiny, 0}
	d := b.inv()
	h := d
	for i := 1; i < 100000; i++ {
		fi := float64(i)
		an := dual{-fi * (fi - a), fi}
		b.v += 2
		d = an.mul(d).add(b)
		if math.Abs(d.v) < tiny {
			d = dual{tiny, 0}
		}
		c = b.add(an.div(c))
		if math.Abs(c.v) < tiny {
			c = dual{tiny, 0}
		}
		d = d.inv()
		del := d.mul(c)
		h = h.mul(del)
		if math.Abs(del.v-1) < 1e-16 && math.Abs(del.d) <= 1e-16*(1+math.Abs(h.d/h.v)) {
			break
		}
	}
	Q := pre * h.v
	dQ := pre * (h.d + h.v*(lx-g.psi))
	return gammaP{P: 1 - Q, Q: Q, dPda: -dQ}
}

// dual is a number with its derivative in one variable.
type dual struct{ v, d float64 }

func (x dual) add(y dual) dual { return dual{x.v + y.v, x.d + y.d} }
func (x dual) mul(y dual) dual { return dual{x.v * y.v, x.d*y.v + x.v*y.d} }
func (x dual) inv() dual       { return dual{1 / x.v, -x.d / (x.v * x.v)} }
func (x dual) div(y dual) dual { return x.mul(y.inv()) }

// digamma returns ψ(x) = Γ'(x)/Γ(x) for x > 0: the recurrence
// ψ(x) = ψ(x+1) − 1/x up to x ≥ 10, then the asymptotic series (error
// below 1e-15 there).
func digamma(x float64) float64 {
	s := 0.0
	for x < 10 {
		s -= 1 / x
		x++
	}
	x2 := 1 / (x * x)
	// Bernoulli terms B_2k/(2k·x^2k), k = 1..6
	t := x2 * (1.0/12 - x2*(1.0/120-x2*(1.0/252-x2*(1.0/240-x2*(1.0/132-x2*691.0/32760)))))
	return s + math.Log(x) - 0.5/x - t
}
