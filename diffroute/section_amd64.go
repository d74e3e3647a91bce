package diffroute

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// haveSectionAVX2 reports whether sectionAVX2 can run here.
var haveSectionAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// secKernel is the argument block of sectionAVX2 (the assembly reads it by
// offset: keep the field order).
type secKernel struct {
	inflow, lat, dst, out *float32
	nq, nv                int64 // runoff steps, vectors of four sub-steps per step
	b0, b1, kc, a4        float64
	m1, m2, p             [4]float64
	y, up, lp             float64 // state in and out
	rapid, add            int64   // flags: lateral rule, add into dst (else store)
	wsum, wend, wprev     float64 // weights of a step's reported value
	in64, out64           int64   // flags: inflow, dst are []float64
	lat64, step64         int64   // flags: lat, out are []float64
}

//go:noescape
func sectionAVX2(k *secKernel)

// sectionVector runs one section over len(lat) steps of f sub-steps (f a
// multiple of 4), adding (or, when add is false, storing) its fine outflow
// into dst and writing out[q] = wsum·Σ y + wend·y_last + wprev·y_last(q−1)
// over the f outflows y of each step. It reports false, doing nothing, where
// the vector kernel is not available.
func sectionVector(s Section, f int, rapid, add bool, w [3]float64, y, uPrev, lPrev *float64, inflow, lat, dst, out []float32) bool {
	if !haveSectionAVX2 || f%4 != 0 || len(lat) == 0 {
		return false
	}
	fl := len(lat) * f
	if len(inflow) < fl || len(dst) < fl || len(out) < len(lat) {
		panic("diffroute: sectionVector buffers too short")
	}
	if useSectionAVX512 && f%8 == 0 {
		section512(s, f, rapid, add, w, y, uPrev, lPrev, inflow, lat, dst, out)
		return true
	}
	a := s.A1
	a2 := a * a
	k := secKernel{
		inflow: unsafe.SliceData(inflow), lat: unsafe.SliceData(lat), dst: unsafe.SliceData(dst), out: unsafe.SliceData(out),
		nq: int64(len(lat)), nv: int64(f / 4),
		b0: s.B0, b1: s.B1, kc: s.B0 + s.B1, a4: a2 * a2,
		m1: [4]float64{0, a, a, a}, m2: [4]float64{0, 0, a2, a2}, p: [4]float64{a, a2, a2 * a, a2 * a2},
		y: *y, up: *uPrev, lp: *lPrev,
		wsum: w[0], wend: w[1], wprev: w[2],
	}
	if rapid {
		k.rapid = 1
	}
	if add {
		k.add = 1
	}
	sectionAVX2(&k)
	*y, *uPrev, *lPrev = k.y, k.up, k.lp
	return true
}

// cascadeVector runs sections in series over len(lat) steps of f sub-steps
// (f a multiple of 4) like runCascade: the lateral runoff enters the first
// section; ys holds each section's last output, uPrev and lPrev the first
// section's last inflows. Intermediate outflows go through mid (2·len(lat)·f
// values of scratch); step (len(lat) values) is scratch and zero
// (len(lat) zeros) the runoff of later sections. The last section adds (or
// stores) into dst and writes out as sectionVector does.
func cascadeVector(secs []Section, f int, rapid, add bool, w [3]float64, ys []float64, uPrev, lPrev *float64, inflow, lat, dst, out []float32, mid []float64, step, zero []float32) bool {
	if !haveSectionAVX2 || f%4 != 0 || len(lat) == 0 || len(secs) < 2 {
		return false
	}
	fl := len(lat) * f
	if len(inflow) < fl || len(dst) < fl || len(out) < len(lat) || len(mid) < 2*fl || len(step) < len(lat) || len(zero) < len(lat) || len(ys) < len(secs) {
		panic("diffroute: cascadeVector buffers too short")
	}
	if useSectionAVX512 && f%8 == 0 {
		cascade512(secs, f, rapid, add, w, ys, uPrev, lPrev, inflow, lat, dst, out, mid, step, zero)
		return true
	}
	var in64 []float64
	upNext := 0.0
	for k, s := range secs {
		a := s.A1
		a2 := a * a
		kk := secKernel{
			lat: unsafe.SliceData(lat), out: unsafe.SliceData(step),
			nq: int64(len(lat)), nv: int64(f / 4),
			b0: s.B0, b1: s.B1, kc: s.B0 + s.B1, a4: a2 * a2,
			m1: [4]float64{0, a, a, a}, m2: [4]float64{0, 0, a2, a2}, p: [4]float64{a, a2, a2 * a, a2 * a2},
			y: ys[k], wsum: w[0], wend: w[1], wprev: w[2], add: 1,
		}
		if k == 0 {
			kk.inflow, kk.up, kk.lp = unsafe.SliceData(inflow), *uPrev, *lPrev
			if rapid {
				kk.rapid = 1
			}
		} else {
			// The inflow of section k is section k−1's outflow; its value
			// before this block is section k−1's output then.
			kk.inflow, kk.in64, kk.up = (*float32)(unsafe.Pointer(unsafe.SliceData(in64))), 1, upNext
			kk.lat = unsafe.SliceData(zero)
		}
		upNext = ys[k]
		var next []float64
		if k == len(secs)-1 {
			kk.dst, kk.out = unsafe.SliceData(dst), unsafe.SliceData(out)
			if !add {
				kk.add = 0
			}
		} else {
			next = mid[(k%2)*fl : (k%2+1)*fl]
			kk.dst, kk.out64 = (*float32)(unsafe.Pointer(unsafe.SliceData(next))), 1
		}
		sectionAVX2(&kk)
		if k == 0 {
			*uPrev, *lPrev = kk.up, kk.lp
		}
		ys[k] = kk.y
		in64 = next
	}
	return true
}

// prefetchLines asks the cache for the n bytes at p (at least one line).
//
//go:noescape
func prefetchLines(p unsafe.Pointer, n int)

// prefetch32 asks the cache for the values of s.
func prefetch32(s []float32) {
	if len(s) > 0 {
		prefetchLines(unsafe.Pointer(unsafe.SliceData(s)), 4*len(s))
	}
}

// prefetch64 asks the cache for one value.
func prefetch64(p *float64) { prefetchLines(unsafe.Pointer(p), 1) }

func haveSectionVector() bool { return haveSectionAVX2 }

// noOutVector64 reports whether sectionVector64 takes an empty out (no
// reported values: the eight-wide kernel skips them).
func noOutVector64(f int) bool { return haveSectionAVX2 && useSectionAVX512 && f%8 == 0 }

// sectionVector64 is sectionVector with float64 inflow and outflow (stored
// into dst), the runoff and reported values in either precision; out may be
// empty where noOutVector64(f).
func sectionVector64(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, inflow, dst []float64, lat, out mixedSeries) bool {
	nq := lat.len()
	if !haveSectionAVX2 || f%4 != 0 || nq == 0 {
		return false
	}
	fl := nq * f
	if len(inflow) < fl || len(dst) < fl || out.len() < nq && !(out.len() == 0 && noOutVector64(f)) {
		panic("diffroute: sectionVector64 buffers too short")
	}
	if useSectionAVX512 && f%8 == 0 {
		section512x64(s, f, rapid, w, y, uPrev, lPrev, inflow, dst, lat, out)
		return true
	}
	a := s.A1
	a2 := a * a
	k := secKernel{
		inflow: (*float32)(unsafe.Pointer(unsafe.SliceData(inflow))), lat: lat.ptr(),
		dst: (*float32)(unsafe.Pointer(unsafe.SliceData(dst))), out: out.ptr(),
		nq: int64(nq), nv: int64(f / 4),
		b0: s.B0, b1: s.B1, kc: s.B0 + s.B1, a4: a2 * a2,
		m1: [4]float64{0, a, a, a}, m2: [4]float64{0, 0, a2, a2}, p: [4]float64{a, a2, a2 * a, a2 * a2},
		y: *y, up: *uPrev, lp: *lPrev,
		wsum: w[0], wend: w[1], wprev: w[2], in64: 1, out64: 1,
	}
	if lat.s64 != nil {
		k.lat64 = 1
	}
	if out.s64 != nil {
		k.step64 = 1
	}
	if rapid {
		k.rapid = 1
	}
	sectionAVX2(&k)
	*y, *uPrev, *lPrev = k.y, k.up, k.lp
	return true
}

// sumVector64 reports whether sectionSum64 runs for f sub-steps a step.
func sumVector64(f int) bool { return haveSectionAVX2 && useSectionAVX512 && f%8 == 0 }

// sectionSum64 is sectionVector64 on the inflow in1 + in2 (each sum as
// addSeries rounds it), storing the summed inflow into usum unless usum is
// nil: a junction's inflow without a pass of its own. It reports false,
// doing nothing, where only the eight-wide kernel could do it.
func sectionSum64(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, in1, in2, usum, dst []float64, lat, out mixedSeries) bool {
	nq := lat.len()
	if !sumVector64(f) || nq == 0 {
		return false
	}
	fl := nq * f
	if len(in1) < fl || len(in2) < fl || usum != nil && len(usum) < fl || len(dst) < fl || out.len() < nq && out.len() != 0 {
		panic("diffroute: sectionSum64 buffers too short")
	}
	section512x64Sum(s, f, rapid, w, y, uPrev, lPrev, in1, in2, usum, dst, lat, out)
	return true
}

func (m mixedSeries) ptr() *float32 {
	if m.s64 != nil {
		return (*float32)(unsafe.Pointer(unsafe.SliceData(m.s64)))
	}
	return unsafe.SliceData(m.s32)
}
