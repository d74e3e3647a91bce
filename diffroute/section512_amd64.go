package diffroute

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// useSectionAVX512 says whether sectionVector runs sectionAVX512 where it
// can (a variable so that tests compare both kernels).
var useSectionAVX512 = haveSectionAVX2 && cpu.X86.HasAVX512F

// sec8Kernel is the argument block of sectionAVX512 (the assembly reads it
// by offset: keep the field order; TestSec8KernelLayout checks it).
type sec8Kernel struct {
	inflow, lat, dst, out *float32
	nq, nv                int64 // runoff steps, vectors of eight sub-steps per step
	b0, b1, kc            float64
	a, a2, a4, a8         float64
	pw                    [8]float64 // a, a², …, a⁸
	y, up, lp             float64    // state in and out
	rapid, add            int64      // flags: lateral rule, add into dst (else store)
	wsum, wend, wprev     float64    // weights of a step's reported value
	lat64, step64         int64      // sectionAVX512x64: runoff, out in float64
	in2, usum             *float32   // sectionAVX512x64: a second inflow (or nil), where the summed inflow goes (or nil)
}

//go:noescape
func sectionAVX512(k *sec8Kernel)

//go:noescape
func sectionAVX512x64(k *sec8Kernel)

// section512 is sectionVector on the eight-wide kernel (f a multiple of 8,
// float32 buffers checked by the caller).
func section512(s Section, f int, rapid, add bool, w [3]float64, y, uPrev, lPrev *float64, inflow, lat, dst, out []float32) {
	a := s.A1
	a2 := a * a
	a3 := a2 * a
	a4 := a2 * a2
	k := sec8Kernel{
		inflow: unsafe.SliceData(inflow), lat: unsafe.SliceData(lat), dst: unsafe.SliceData(dst), out: unsafe.SliceData(out),
		nq: int64(len(lat)), nv: int64(f / 8),
		b0: s.B0, b1: s.B1, kc: s.B0 + s.B1,
		a: a, a2: a2, a4: a4, a8: a4 * a4,
		pw: [8]float64{a, a2, a3, a4, a4 * a, a4 * a2, a4 * a3, a4 * a4},
		y:  *y, up: *uPrev, lp: *lPrev,
		wsum: w[0], wend: w[1], wprev: w[2],
	}
	if rapid {
		k.rapid = 1
	}
	if add {
		k.add = 1
	}
	sectionAVX512(&k)
	*y, *uPrev, *lPrev = k.y, k.up, k.lp
}

// section512x64 is sectionVector64 on the eight-wide kernel (f a multiple
// of 8, buffers checked by the caller).
func section512x64(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, inflow, dst []float64, lat, out mixedSeries) {
	section512x64Sum(s, f, rapid, w, y, uPrev, lPrev, inflow, nil, nil, dst, lat, out)
}

// section512x64Sum is section512x64 on the inflow inflow + in2 where in2 is
// not nil, storing that sum into usum where usum is not nil.
func section512x64Sum(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, inflow, in2, usum, dst []float64, lat, out mixedSeries) {
	a := s.A1
	a2 := a * a
	a3 := a2 * a
	a4 := a2 * a2
	k := sec8Kernel{
		inflow: (*float32)(unsafe.Pointer(unsafe.SliceData(inflow))), lat: lat.ptr(),
		dst: (*float32)(unsafe.Pointer(unsafe.SliceData(dst))), out: out.ptr(),
		nq: int64(lat.len()), nv: int64(f / 8),
		b0: s.B0, b1: s.B1, kc: s.B0 + s.B1,
		a: a, a2: a2, a4: a4, a8: a4 * a4,
		pw: [8]float64{a, a2, a3, a4, a4 * a, a4 * a2, a4 * a3, a4 * a4},
		y:  *y, up: *uPrev, lp: *lPrev,
		wsum: w[0], wend: w[1], wprev: w[2],
	}
	if rapid {
		k.rapid = 1
	}
	if lat.s64 != nil {
		k.lat64 = 1
	}
	if out.s64 != nil {
		k.step64 = 1
	}
	if in2 != nil {
		k.in2 = (*float32)(unsafe.Pointer(unsafe.SliceData(in2)))
		if usum != nil {
			k.usum = (*float32)(unsafe.Pointer(unsafe.SliceData(usum)))
		}
	}
	sectionAVX512x64(&k)
	*y, *uPrev, *lPrev = k.y, k.up, k.lp
}
