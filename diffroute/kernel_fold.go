package diffroute

import (
	"math"
	"math/cmplx"
)

// foldCoarsener turns a path spectrum straight into the path's coarse taps,
// without the inverse FFT of the fine kernel: the FFT build's hot spot
// (three quarters of its time went into gonum's inverse real FFT of length
// M for every pair).
//
// coarsen (kernel.go) is linear and shift-invariant in the fine kernel h: a
// tap is K[p] = Σ_n a(p·f − n)·h[n], with a = r ⊛ δ_shift ⊛ b for the box
// sum b (or none when the kernel is already a whole-step response), the
// one-sub-step delay of `start` averaging, and the step mean or last-value
// sample r. So K[p] = y[p·f] with y = a ⊛ h, whose spectrum is A·S; sampling
// every f-th value of y folds its spectrum f times onto M' = M/f bins, and an
// inverse DFT of length M' evaluated at the Taps wanted points gives the
// taps: about M complex operations per pair instead of an FFT of length M.
//
// The fold is circular, coarsen is not: coarsen takes h as zero before
// n = 0, where the circular form reads h's last values h[M−d], d > 0. Only
// K[0] has such terms (the window of a tap spans less than two steps), and
// their sum is a fixed linear functional of S, subtracted exactly.
//
// ReLU acts on the fine kernel and breaks linearity: with it the build keeps
// the inverse FFT and coarsen.
type foldCoarsener struct {
	m, mp, nf, half int
	a               []complex128 // A[k], k < nf
	wrap            []complex128 // α_k·A⁺[k]/M: K[0]'s wrapped terms
	tw              []complex128 // [taps][half+1]: α_j·e^{2πi·j·p/M'}/M
	z               []complex128 // half+1 folded bins (scratch: one coarsener per worker)
}

// newFoldCoarsener prepares the fold for kernels that are (boxed) or are not
// already whole-step responses.
func (kr *KernelRouter) newFoldCoarsener(boxed bool) *foldCoarsener {
	f, m, taps := kr.f, kr.m, kr.taps
	shift := 0
	if kr.opts.Average == AverageStart {
		shift = 1
	}
	// a(d) for d in [lo, lo+len(a)): r ⊛ δ_shift ⊛ b.
	var r []float64 // r(d), d = −(f−1) … 0
	if kr.opts.Sampling == SampleLast {
		r = make([]float64, f)
		r[0] = 1 // d = −(f−1): K[p] = e[p·f + f − 1]
	} else {
		r = make([]float64, f)
		for i := range r {
			r[i] = 1 / float64(f)
		}
	}
	b := []float64{1} // b(d), d = 0 …
	if !boxed {
		b = make([]float64, f)
		for i := range b {
			b[i] = 1
		}
	}
	lo := -(f - 1) + shift
	a := make([]float64, len(r)+len(b)-1)
	for i, rv := range r {
		for j, bv := range b {
			a[i+j] += rv * bv
		}
	}

	mp := m / f
	c := &foldCoarsener{m: m, mp: mp, nf: m/2 + 1, half: mp / 2}
	c.a = make([]complex128, c.nf)
	c.wrap = make([]complex128, c.nf)
	for k := range c.nf {
		var s, sp complex128
		for i, v := range a {
			d := lo + i
			// ω^{−k·d}, the phase reduced mod M first to keep it exact.
			ph := -2 * math.Pi * float64(((k*d)%m+m)%m) / float64(m)
			t := complex(v*math.Cos(ph), v*math.Sin(ph))
			s += t
			if d > 0 {
				sp += t
			}
		}
		c.a[k] = s
		c.wrap[k] = complex(alpha(k, m)/float64(m), 0) * sp
	}
	c.tw = make([]complex128, taps*(c.half+1))
	for p := range taps {
		for j := 0; j <= c.half; j++ {
			ph := 2 * math.Pi * float64((j*p)%mp) / float64(mp)
			c.tw[p*(c.half+1)+j] = complex(alpha(j, mp)/float64(m)*math.Cos(ph), alpha(j, mp)/float64(m)*math.Sin(ph))
		}
	}
	c.z = make([]complex128, c.half+1)
	return c
}

// alpha is the weight of bin k of a real signal's half spectrum of length n:
// 1 for the bins that have no mirror (0, and n/2 for even n), else 2.
func alpha(k, n int) float64 {
	if k == 0 || 2*k == n {
		return 1
	}
	return 2
}

// coarsen sets K (Taps values) from the path spectrum S (M/2+1 bins of the
// unnormalised forward FFT of the fine kernel).
func (c *foldCoarsener) coarsen(K []float64, S []complex128) {
	m, mp, nf := c.m, c.mp, c.nf
	a, z := c.a[:nf], c.z
	S = S[:nf]
	// z[j] = Σ_q Y[j + q·M'], Y = A·S, Y[k] = conj(Y[M−k]) past the half.
	for j := range z {
		var s complex128
		for k := j; k < m; k += mp {
			if k < nf {
				s += a[k] * S[k]
			} else {
				s += cmplx.Conj(a[m-k] * S[m-k])
			}
		}
		z[j] = s
	}
	h1 := c.half + 1
	for p := range K {
		tw := c.tw[p*h1 : (p+1)*h1]
		s := 0.0
		for j, v := range z {
			s += real(v)*real(tw[j]) - imag(v)*imag(tw[j])
		}
		K[p] = s
	}
	// K[0]: remove the circular terms h[M−d], d > 0.
	if len(K) > 0 {
		w := c.wrap[:nf]
		s := 0.0
		for k, v := range S {
			s += real(v)*real(w[k]) - imag(v)*imag(w[k])
		}
		K[0] -= s
	}
}
