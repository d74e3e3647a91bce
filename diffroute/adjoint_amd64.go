package diffroute

import "unsafe"

// adjKernel is the argument block of adjointAVX2 (the assembly reads it by
// offset: keep the field order).
type adjKernel struct {
	ubd, y, u, gy, sumL, firstL *float64
	nq, nv                      int64 // runoff steps, vectors of four sub-steps per step
	b0, b1, a4                  float64
	m1, m2, p                   [4]float64
	lam, y0, up0                float64 // λ after the block (in; out: λ at its first sub-step), y and u before it
	wsum, wend, wprev           float64
	gyn                         float64    // ∂L/∂(discharge) of the step after the block (0 past the end)
	du, dup, dy                 float64    // out: Σλ·u[n], Σλ·u[n−1], Σλ·y[n−1]
	a, a8                       float64    // adjointAVX512: a, a⁸
	p8                          [8]float64 // adjointAVX512: a⁸, a⁷, …, a
}

//go:noescape
func adjointAVX2(k *adjKernel)

//go:noescape
func adjointAVX512(k *adjKernel)

// adjointVector runs the adjoint of one section over a block of len(gy)
// steps of f sub-steps (f a multiple of 4) on the vector kernel; see
// adjointSection for the arguments. It reports false, doing nothing, where
// the kernel is not available.
func adjointVector(a *adjArgs) bool {
	if !haveSectionAVX2 || a.f%4 != 0 || len(a.gy) == 0 {
		return false
	}
	nq := len(a.gy)
	fl := nq * a.f
	if len(a.ubd) < fl || len(a.y) < fl || len(a.u) < fl || len(a.sumL) < nq || len(a.firstL) < nq {
		panic("diffroute: adjointVector buffers too short")
	}
	s := a.s
	c := s.A1
	c2 := c * c
	k := adjKernel{
		ubd: unsafe.SliceData(a.ubd), y: unsafe.SliceData(a.y), u: unsafe.SliceData(a.u), gy: unsafe.SliceData(a.gy),
		sumL: unsafe.SliceData(a.sumL), firstL: unsafe.SliceData(a.firstL),
		nq: int64(nq), nv: int64(a.f / 4),
		b0: s.B0, b1: s.B1, a4: c2 * c2,
		m1: [4]float64{c, c, c, 0}, m2: [4]float64{c2, c2, 0, 0}, p: [4]float64{c2 * c2, c2 * c, c2, c},
		lam: a.lam, y0: a.y0, up0: a.up0,
		wsum: a.w[0], wend: a.w[1], wprev: a.w[2], gyn: a.gyn,
	}
	if useSectionAVX512 && a.f%8 == 0 {
		c4 := c2 * c2
		k.nv, k.a, k.a8 = int64(a.f/8), c, c4*c4
		k.p8 = [8]float64{c4 * c4, c4 * c2 * c, c4 * c2, c4 * c, c4, c2 * c, c2, c}
		adjointAVX512(&k)
	} else {
		adjointAVX2(&k)
	}
	a.lam, a.du, a.dup, a.dy = k.lam, k.du, k.dup, k.dy
	return true
}

//go:noescape
func addVec(dst, a, b *float64, n int)

// addSeries stores a + b into dst (all of len(dst) values; dst may be a or b).
func addSeries(dst, a, b []float64) {
	if len(a) < len(dst) || len(b) < len(dst) {
		panic("diffroute: addSeries operands too short")
	}
	if !haveSectionAVX2 {
		for k := range dst {
			dst[k] = a[k] + b[k]
		}
		return
	}
	if len(dst) > 0 {
		addVec(unsafe.SliceData(dst), unsafe.SliceData(a), unsafe.SliceData(b), len(dst))
	}
}
