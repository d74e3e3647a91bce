package diffroute

import "math"

// Derivatives of the built-in IRFs with respect to their parameters, for the
// reverse mode. Each is checked against central differences in the tests.

// muskingumSectionsGrad: C = N/den with den = k(1−x) + r/2, so
// ∂C = (∂N·den − N·∂den)/den².
func muskingumSectionsGrad(dst [][]Section, p []float64, r float64) error {
	k, x := p[0], p[1]
	if _, _, _, err := MuskingumCoefficients(k, x, r); err != nil {
		return err
	}
	den := k*(1-x) + r/2
	n0, n1, n2 := r/2-k*x, r/2+k*x, k*(1-x)-r/2
	d2 := den * den
	// with respect to k: ∂den = 1−x; ∂N0 = −x, ∂N1 = x, ∂N2 = 1−x
	dd := 1 - x
	dst[0][0] = Section{B0: (-x*den - n0*dd) / d2, B1: (x*den - n1*dd) / d2, A1: ((1-x)*den - n2*dd) / d2}
	// with respect to x: ∂den = −k; ∂N0 = −k, ∂N1 = k, ∂N2 = −k
	dd = -k
	dst[1][0] = Section{B0: (-k*den - n0*dd) / d2, B1: (k*den - n1*dd) / d2, A1: (-k*den - n2*dd) / d2}
	return nil
}

// storageSectionsGrad serves linear storage and the Nash cascade: every
// section is {B0: a, A1: 1−a} with a = 1/(1 + tau/r), ∂a/∂tau = −a²/r.
func storageSectionsGrad(dst [][]Section, p []float64, r float64) error {
	a, err := storageCoefficient(p[0], r)
	if err != nil {
		return err
	}
	da := -a * a / r
	for s := range dst[0] {
		dst[0][s] = Section{B0: da, A1: -da}
	}
	for j := 1; j < len(dst); j++ {
		clear(dst[j]) // n: no gradient
	}
	return nil
}

// nashImpulseGrad differentiates the gamma form with respect to tau:
// ∂log h[k]/∂a = n/a − k/(1−a).
func nashImpulseGrad(dh [][]float64, p []float64, r float64) error {
	a, n, err := nashCheck(p, r)
	if err != nil {
		return err
	}
	da := -a * a / r
	h := dh[0]
	if err := nashImpulse(h, p, r); err != nil {
		return err
	}
	for k := range h {
		switch {
		case a < 1:
			h[k] *= (n/a - float64(k)/(1-a)) * da
		case k == 0: // a = 1: h = a^n at k = 0, n·aⁿ·(1−a) at k = 1
			h[k] = n * da
		case k == 1:
			h[k] = -n * da
		default:
			h[k] = 0
		}
	}
	for j := 1; j < len(dh); j++ {
		clear(dh[j])
	}
	return nil
}

// hayamiImpulseVJP is hayamiImpulseGrad contracted with g, from the taps h
// already evaluated: with ∂h[k] = h[k]·(∂v[k] − m), m = Σ_j h[j]·∂v[j],
// Σ_k g[k]·∂h[k] = Σ_k g[k]·h[k]·∂v[k] − m·Σ_k g[k]·h[k]. Taps that
// underflowed to 0 add nothing (hayamiImpulseGrad zeroes them too).
func hayamiImpulseVJP(shifted bool) func(out, g, h, p []float64, r float64) {
	return func(out, g, h, p []float64, r float64) {
		L, D, c := p[0], p[1], p[2]
		shift := 0.0
		if shifted {
			shift = r
		}
		invL, inv2D := 1/L, 1/(2*D)
		var gdv, mean [3]float64
		gh := 0.0
		for k, hk := range h {
			if hk == 0 {
				continue
			}
			t := float64(k+1) * r
			adv := L - c*(t-shift)
			a := adv * inv2D / t // adv/(2·D·t)
			dv0, dv1, dv2 := invL-a, -inv2D+a*adv*inv2D, a*(t-shift)
			w := g[k] * hk
			gh += w
			gdv[0] += w * dv0
			gdv[1] += w * dv1
			gdv[2] += w * dv2
			mean[0] += hk * dv0
			mean[1] += hk * dv1
			mean[2] += hk * dv2
		}
		for j := range out[:3] {
			out[j] = gdv[j] - mean[j]*gh
		}
	}
}

// hayamiImpulseGrad differentiates the normalised Hayami kernel
// h[k] = exp(v[k]) / Σ exp(v[j]): ∂h[k] = h[k]·(∂v[k] − Σ_j h[j]·∂v[j]).
func hayamiImpulseGrad(shifted bool) func(dh [][]float64, p []float64, r float64) error {
	impulse := hayamiImpulse(shifted)
	return func(dh [][]float64, p []float64, r float64) error {
		h := make([]float64, len(dh[0]))
		if err := impulse(h, p, r); err != nil {
			return err
		}
		L, D, c := p[0], p[1], p[2]
		shift := 0.0
		if shifted {
			shift = r
		}
		var mean [3]float64
		for k := range h {
			t := float64(k+1) * r
			adv := L - c*(t-shift)
			dv := [3]float64{1/L - adv/(2*D*t), -1/(2*D) + adv*adv/(4*D*D*t), adv * (t - shift) / (2 * D * t)}
			for j := range dv {
				dh[j][k] = dv[j]
				mean[j] += h[k] * dv[j]
			}
		}
		for j := range mean {
			for k := range h {
				dh[j][k] = h[k] * (dh[j][k] - mean[j])
				if math.IsNaN(dh[j][k]) {
					dh[j][k] = 0 // h[k] underflowed to 0
				}
			}
		}
		return nil
	}
}
