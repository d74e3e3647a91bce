package diffroute

// Convolution kernels of the recursive router for reaches whose IRF has no
// recursive form (Hayami's diffusive wave, pure lag). Each computes, for a
// chunk of fine sub-steps,
//
//	y[n] = Σ_k taps[k] · ext[h+n−idx[k]],  n = 0 … len(y)−1,
//
// where ext holds the last h inflows before the chunk followed by the chunk's
// inflows (h = W−1, and every idx[k] ≤ h).

// convTaps is the IRF of one convolution reach: its non-negligible taps at
// positions idx (ascending) for the gather kernel, or, when those positions
// are contiguous (Hayami's kernel, pure lag), the taps reversed (taps[j] is
// the tap at position hi−j) with idx nil, for the gather-free kernel.
type convTaps struct {
	taps  []float64 // nil: not a convolution reach; empty: an all-zero IRF
	idx   []int32
	dense bool
	hi    int           // dense: position of the last tap
	spec  *convSpectrum // dense with many taps: convolved by FFT overlap-save
	need  int           // inflows of history the taps reach (kept as state)
}

func newConvTaps(taps []float64, idx []int32) convTaps {
	l := len(idx)
	if l == 0 || int(idx[l-1])-int(idx[0]) != l-1 {
		c := convTaps{taps: taps, idx: idx}
		if l > 0 {
			c.need = int(idx[l-1])
		}
		return c
	}
	rev := make([]float64, l)
	for j := range rev {
		rev[j] = taps[l-1-j]
	}
	c := convTaps{taps: rev, dense: true, hi: int(idx[l-1]), need: int(idx[l-1])}
	if l >= convFFTMinTaps {
		c.spec = newConvSpectrum(rev)
	}
	return c
}

// convFine fills y (one chunk of fine outflows) from ext (h inflows of
// history, then len(y) inflows of the chunk). Directly, each output is summed
// over the taps in the same order whichever chunk it falls in, so routing a
// series in chunks gives bit-identical values to routing it whole; by FFT
// (long kernels, fft the worker's transforms) they agree to float64
// rounding.
func convFine(c convTaps, ext []float64, h int, y []float64, fft func(m int) *convFFTWork) {
	switch {
	case len(c.taps) == 0:
		clear(y)
	case c.spec != nil && fft != nil && len(y) >= len(c.taps):
		convOverlapSave(c.spec, len(c.taps), fft(c.spec.m), ext[h-c.hi:], y)
	case c.dense:
		// y[n] = Σ_j taps[j]·ext[h+n−(hi−j)] = Σ_j taps[j]·e[n+j]
		// with e = ext[h−hi:].
		convDense(c.taps, ext[h-c.hi:], y)
	default:
		convGather(c.taps, c.idx, ext, h, y)
	}
}

// convGather is the general sparse kernel.
func convGather(taps []float64, idx []int32, ext []float64, h int, y []float64) {
	for n := range y {
		s := 0.0
		e := ext[:h+n+1]
		for k, c := range taps {
			s += c * e[h+n-int(idx[k])]
		}
		y[n] = s
	}
}

// convDense computes y[n] = Σ_j rev[j]·e[n+j] (len(e) ≥ len(y)+len(rev)−1)
// four outputs at a time: each tap is loaded once for four independent
// accumulators, and the inflow window slides through registers (one new load
// per tap), so the loop runs at the throughput of the adds rather than the
// latency of one accumulator chain. Every output, whichever lane or tail loop
// computes it, is one accumulator summed in ascending j, so the result of an
// output does not depend on where the chunk starts.
func convDense(rev []float64, e []float64, y []float64) {
	l := len(rev)
	if l == 0 {
		clear(y)
		return
	}
	e = e[:len(y)+l-1]
	if convDenseVector(rev, e, y) {
		return
	}
	n := 0
	if l >= 16 {
		n = convDense4x4(rev, e, y)
	}
	for ; n+4 <= len(y); n += 4 {
		w := e[n : n+l+3]
		e0, e1, e2 := w[0], w[1], w[2]
		w = w[3 : 3+l]
		var s0, s1, s2, s3 float64
		for j, c := range rev {
			e3 := w[j]
			s0 += c * e0
			s1 += c * e1
			s2 += c * e2
			s3 += c * e3
			e0, e1, e2 = e1, e2, e3
		}
		y[n], y[n+1], y[n+2], y[n+3] = s0, s1, s2, s3
	}
	for ; n < len(y); n++ {
		w := e[n : n+l]
		s := 0.0
		for j, c := range rev {
			s += c * w[j]
		}
		y[n] = s
	}
}

// convDense4x4 is convDense's four-lane loop unrolled over four taps, which
// leaves fewer register moves and loop overheads per multiply-add (about 30%
// faster for long kernels; slower for a handful of taps). It returns how many
// outputs it computed (a multiple of 4).
func convDense4x4(rev []float64, e []float64, y []float64) int {
	l := len(rev)
	l4 := l &^ 3
	n := 0
	for ; n+4 <= len(y); n += 4 {
		w := e[n : n+l+3]
		e0, e1, e2 := w[0], w[1], w[2]
		var s0, s1, s2, s3 float64
		ww, rv := w[3:3+l4], rev[:l4]
		for j := 0; j+4 <= len(ww); j += 4 {
			c := rv[j : j+4 : j+4]
			x := ww[j : j+4 : j+4]
			c0, e3 := c[0], x[0]
			s0 += c0 * e0
			s1 += c0 * e1
			s2 += c0 * e2
			s3 += c0 * e3
			c1, e4 := c[1], x[1]
			s0 += c1 * e1
			s1 += c1 * e2
			s2 += c1 * e3
			s3 += c1 * e4
			c2, e5 := c[2], x[2]
			s0 += c2 * e2
			s1 += c2 * e3
			s2 += c2 * e4
			s3 += c2 * e5
			c3, e6 := c[3], x[3]
			s0 += c3 * e3
			s1 += c3 * e4
			s2 += c3 * e5
			s3 += c3 * e6
			e0, e1, e2 = e4, e5, e6
		}
		w = w[3+l4 : 3+l]
		for j, c := range rev[l4:] {
			e3 := w[j]
			s0 += c * e0
			s1 += c * e1
			s2 += c * e2
			s3 += c * e3
			e0, e1, e2 = e1, e2, e3
		}
		y[n], y[n+1], y[n+2], y[n+3] = s0, s1, s2, s3
	}
	return n
}
