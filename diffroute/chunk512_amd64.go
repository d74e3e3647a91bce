package diffroute

import "unsafe"

// useChunks says whether the tiled backward pass runs blocks of whole
// multiples of chunkSteps steps in the chunked layout (a variable so that
// tests compare both).
var useChunks = useSectionAVX512

// chunkKernel is the argument block of chunkForwardAVX512 (the assembly
// reads it by offset: keep the field order; TestChunkKernelLayout checks
// it).
type chunkKernel struct {
	u, u2, usum, y, c *float64
	L, f              int64 // sub-steps of a chunk, of a step
	b0, b1, a         float64
	up0, y0           float64     // inflow and outflow before the block
	aL                float64     // a^L
	carry             [16]float64 // scratch: the true outflow before each chunk
	out               *float64    // where not nil, each lane-step's reported value ([s][16])
	wsum, wend, wprev float64     // weights of a step's reported value
	lat32             *float32    // where not nil, the runoff per step in time order (instead of c)
	out32             *float32    // where not nil, the reported values in time order (instead of out)
	S                 int64       // steps a lane
	kc                float64     // b0+b1, which multiplies lat32
}

//go:noescape
func chunkForwardAVX512(k *chunkKernel)

// chunkForward routes section s over a block of 16 chunks of L sub-steps
// in the chunked layout (sub-step j·L + t at [16t + j]): y from the
// outflow y0 and inflow up0 before the block, the inflow u (+ u2 where
// not nil, then stored into usum unless nil) and the runoff: lat32, float32
// per step in time order (16·L/f values), where not nil, else c, b0+b1
// times each lane's runoff per step ([s][16], L/f steps a lane). aL is
// a^L. Where out32 (or out) is not nil it receives each step's reported
// value, weighted by w as stepWeights says, in time order (out: per step
// of each lane, [s][16]).
func chunkForward(s Section, f, L int, aL, y0, up0 float64, u, u2, usum, y, c []float64, lat32 []float32, out []float64, out32 []float32, w [3]float64) {
	n, S := 16*L, L/f
	if len(u) < n || len(y) < n || lat32 == nil && len(c) < 16*S || lat32 != nil && len(lat32) < 16*S || out32 != nil && len(out32) < 16*S ||
		u2 != nil && len(u2) < n || usum != nil && len(usum) < n || L%f != 0 || L == 0 {
		panic("diffroute: chunkForward buffers too short")
	}
	k := chunkKernel{u: unsafe.SliceData(u), y: unsafe.SliceData(y), c: unsafe.SliceData(c),
		L: int64(L), f: int64(f), b0: s.B0, b1: s.B1, a: s.A1, up0: up0, y0: y0, aL: aL,
		S: int64(S), kc: s.B0 + s.B1}
	if lat32 != nil {
		k.lat32 = unsafe.SliceData(lat32)
	}
	if out32 != nil {
		k.out32, k.wsum, k.wend, k.wprev = unsafe.SliceData(out32), w[0], w[1], w[2]
	}
	if u2 != nil {
		k.u2 = unsafe.SliceData(u2)
		if usum != nil {
			k.usum = unsafe.SliceData(usum)
		}
	}
	if out != nil {
		if len(out) < 16*(L/f) {
			panic("diffroute: chunkForward buffers too short")
		}
		k.out, k.wsum, k.wend, k.wprev = unsafe.SliceData(out), w[0], w[1], w[2]
	}
	chunkForwardAVX512(&k)
}

// chunkAdjKernel is the argument block of chunkAdjointAVX512 (the assembly
// reads it by offset: keep the field order).
type chunkAdjKernel struct {
	ubd, lam, cs, es, y, u *float64
	L, f                   int64
	b0, b1, a              float64
	sumL, firstL           *float64 // out, [s][16]
	du, dup, dy, lam0      float64  // out
	S                      int64    // steps a chunk
	aL, lamAfter, y0, up0  float64
	d, yp, up              [16]float64 // scratch: λ after each chunk; y and u before it
	gy32                   *float32    // where not nil, ∂L/∂y per step in time order: cs = w0·it, es = 0
	w0                     float64
	dx32                   *float32 // where not nil, kc·Σλ per step in time order
	lat32                  *float32 // with dx32: the runoff per step in time order
	kc                     float64
	dl                     float64 // out, with dx32: Σ runoff·Σλ
}

//go:noescape
func chunkAdjointAVX512(k *chunkAdjKernel)

// chunkAdjoint is the adjoint of chunkForward (adjointSection in the
// chunked layout): ubd, y (overwritten with ∂L/∂u), u and lam (scratch) are
// chunked rows of 16·L values; lamAfter is λ after the block, y0 and up0
// the outflow and inflow before it, aL is a^L. The loss's share of ȳ is cs
// on every sub-step of a step and es added on its last ([s][16]), or,
// where gy32 (∂L/∂y per step in time order) is not nil, w0·gy32. It returns
// Σλ·u[n], Σλ·u[n−1], Σλ·y[n−1] and λ at the block's first sub-step, and
// stores each lane-step's Σλ and first λ into sumL and firstL ([s][16]);
// where dx32 is not nil it also stores (b0+b1)·Σλ of each step into dx32
// in time order and returns dl = Σ lat32·Σλ (lat32: the runoff per step in
// time order).
func chunkAdjoint(s Section, f, L int, aL, lamAfter, y0, up0 float64, ubd, y, u, lam, cs, es, sumL, firstL []float64,
	gy32 []float32, w0 float64, dx32, lat32 []float32) (du, dup, dy, lam0, dl float64) {
	n, S := 16*L, L/f
	if L%f != 0 || L == 0 || len(ubd) < n || len(y) < n || len(u) < n || len(lam) < n || len(sumL) < 16*S || len(firstL) < 16*S ||
		gy32 == nil && (len(cs) < 16*S || len(es) < 16*S) || gy32 != nil && len(gy32) < 16*S || dx32 != nil && (len(dx32) < 16*S || len(lat32) < 16*S) {
		panic("diffroute: chunkAdjoint buffers too short")
	}
	k := chunkAdjKernel{ubd: unsafe.SliceData(ubd), lam: unsafe.SliceData(lam), cs: unsafe.SliceData(cs), es: unsafe.SliceData(es),
		y: unsafe.SliceData(y), u: unsafe.SliceData(u), L: int64(L), f: int64(f), b0: s.B0, b1: s.B1, a: s.A1,
		sumL: unsafe.SliceData(sumL), firstL: unsafe.SliceData(firstL), S: int64(S),
		aL: aL, lamAfter: lamAfter, y0: y0, up0: up0, w0: w0, kc: s.B0 + s.B1}
	if gy32 != nil {
		k.gy32 = unsafe.SliceData(gy32)
	}
	if dx32 != nil {
		k.dx32, k.lat32 = unsafe.SliceData(dx32), unsafe.SliceData(lat32)
	}
	chunkAdjointAVX512(&k)
	return k.du, k.dup, k.dy, k.lam0, k.dl
}
