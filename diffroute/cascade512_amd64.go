package diffroute

import (
	"math/bits"
	"unsafe"
)

// cascade512 is cascadeVector on the eight-wide section kernel (f a multiple
// of 8, buffers checked by the caller). Cascades without an inflow-lag term
// (B1 = 0 in every section: Nash reservoirs) run in one pipelined pass
// (cascadeAVX512) where mid holds its scratch (cascadeScratch values).
// Otherwise the inflow is widened to float64 once, each section runs
// sectionAVX512x64 from one half of mid into the other (later sections
// without runoff, under the lti rule with zero runoff, as cascadeVector's),
// and the last section's fine outflow is narrowed into dst.
func cascade512(secs []Section, f int, rapid, add bool, w [3]float64, ys []float64, uPrev, lPrev *float64, inflow, lat, dst, out []float32, mid []float64, step, zero []float32) {
	nq := len(lat)
	fl := nq * f
	if len(secs) <= cascadeMaxSections && noLagTerm(secs) && len(mid) >= cascadeScratch(len(secs), f) {
		cascadeFused512(secs, f, add, w, ys, inflow, lat, dst, out, mid)
		*uPrev, *lPrev = float64(inflow[fl-1]), float64(lat[nq-1])
		return
	}
	a, b := mid[:fl], mid[fl:2*fl]
	convLoad512(unsafe.SliceData(a), unsafe.SliceData(inflow), unsafe.SliceData(zero), nq, f)
	upNext := 0.0
	for k, s := range secs {
		r, runoff, up, lp := rapid, mixedSeries{s32: lat}, *uPrev, *lPrev
		if k > 0 {
			r, runoff, up, lp = false, mixedSeries{s32: zero[:nq]}, upNext, 0
		}
		upNext = ys[k]
		o := mixedSeries{s32: step}
		if k == len(secs)-1 {
			o = mixedSeries{s32: out}
		}
		section512x64(s, f, r, w, &ys[k], &up, &lp, a, b, runoff, o)
		if k == 0 {
			*uPrev, *lPrev = up, lp
		}
		a, b = b, a
	}
	convStore512(unsafe.SliceData(dst), unsafe.SliceData(a), fl, add)
}

// cascadeMaxSections bounds the one-pass kernel: each of its iterations
// visits every section, and its ring grows with the sections, so a cascade
// of hundreds of reservoirs runs section after section.
const cascadeMaxSections = 16

// noLagTerm reports whether no section weighs the previous inflow (B1 = 0),
// so the lateral rule does not matter and sections need no inflow carry.
func noLagTerm(secs []Section) bool {
	for _, s := range secs {
		if s.B1 != 0 {
			return false
		}
	}
	return true
}

// casc8Kernel is the argument block of cascadeAVX512 (the assembly reads it
// by offset: keep the field order; TestCasc8KernelLayout checks it).
type casc8Kernel struct {
	inflow, lat, dst, out         *float32
	secs, ring                    *float64 // section blocks, ring of tile buffers
	nq, nv, nsec, mask, tileBytes int64    // steps, vectors a step, sections, ring slots−1, bytes a slot
	add                           int64    // add into dst (else store)
	wsum, wend, wprev             float64  // weights of a step's reported value
	tile, ntiles                  int64    // steps a tile, tiles
}

//go:noescape
func cascadeAVX512(k *casc8Kernel)

// cascadeSecBlock is the size in float64 of one section's block for
// cascadeAVX512: b0, a, a², a⁴, a⁸, the last output, two unused, a … a⁸,
// then the scan rounds' coefficients by lane: [0 a 0 a 0 a 0 a],
// [0 0 a a² 0 0 a a²], [0 0 0 0 a a² a³ a⁴] (64-byte aligned rows).
const cascadeSecBlock = 64

// cascadeRing is the number of tile buffers of cascadeAVX512's pipeline: a
// power of two, at least one per section in flight.
func cascadeRing(nsec int) int { return 1 << bits.Len(uint(nsec-1)) }

// cascadeTile is how many runoff steps cascadeAVX512 pipelines as one tile:
// about cascadeTileSubsteps sub-steps, enough to pay a section's set-up
// (its coefficients, carry and tile pointers) over many vectors, few enough
// that the ring stays in L1.
func cascadeTile(f int) int { return max(1, cascadeTileSubsteps/f) }

var cascadeTileSubsteps = 128

// cascadeScratch is how many float64 of scratch cascadeFused512 needs for
// nsec sections and f sub-steps a step (64-byte alignment included); none
// beyond cascadeMaxSections.
func cascadeScratch(nsec, f int) int {
	if nsec > cascadeMaxSections {
		return 0
	}
	return nsec*cascadeSecBlock + cascadeRing(nsec)*cascadeTile(f)*f + 8
}

// cascadeFused512 runs cascadeAVX512 (f a multiple of 8, every B1 = 0,
// buffers checked by the caller, mid at least cascadeScratch values).
func cascadeFused512(secs []Section, f int, add bool, w [3]float64, ys []float64, inflow, lat, dst, out []float32, mid []float64) {
	off := int((64 - uintptr(unsafe.Pointer(unsafe.SliceData(mid)))%64) % 64 / 8)
	nsec, ring, tile := len(secs), cascadeRing(len(secs)), cascadeTile(f)
	blocks := mid[off : off+nsec*cascadeSecBlock]
	slots := mid[off+nsec*cascadeSecBlock : off+nsec*cascadeSecBlock+ring*tile*f]
	for k, s := range secs {
		a := s.A1
		a2 := a * a
		a3 := a2 * a
		a4 := a2 * a2
		blk := blocks[k*cascadeSecBlock : (k+1)*cascadeSecBlock]
		blk[0], blk[1], blk[2], blk[3], blk[4], blk[5] = s.B0, a, a2, a4, a4*a4, ys[k]
		copy(blk[8:], []float64{a, a2, a3, a4, a4 * a, a4 * a2, a4 * a3, a4 * a4,
			0, a, 0, a, 0, a, 0, a,
			0, 0, a, a2, 0, 0, a, a2,
			0, 0, 0, 0, a, a2, a3, a4})
	}
	k := casc8Kernel{
		inflow: unsafe.SliceData(inflow), lat: unsafe.SliceData(lat), dst: unsafe.SliceData(dst), out: unsafe.SliceData(out),
		secs: unsafe.SliceData(blocks), ring: unsafe.SliceData(slots),
		nq: int64(len(lat)), nv: int64(f / 8), nsec: int64(nsec), mask: int64(ring - 1), tileBytes: int64(8 * tile * f),
		wsum: w[0], wend: w[1], wprev: w[2], tile: int64(tile), ntiles: int64((len(lat) + tile - 1) / tile),
	}
	if add {
		k.add = 1
	}
	cascadeAVX512(&k)
	for j := range secs {
		ys[j] = blocks[j*cascadeSecBlock+5]
	}
}
