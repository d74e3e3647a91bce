package diffroute

import "unsafe"

// cascade512 is cascadeVector on the eight-wide section kernel (f a multiple
// of 8, buffers checked by the caller): the inflow is widened to float64
// once, each section runs sectionAVX512x64 from one half of mid into the
// other (later sections without runoff, under the lti rule with zero
// runoff, as cascadeVector's), and the last section's fine outflow is
// narrowed into dst.
func cascade512(secs []Section, f int, rapid, add bool, w [3]float64, ys []float64, uPrev, lPrev *float64, inflow, lat, dst, out []float32, mid []float64, step, zero []float32) {
	nq := len(lat)
	fl := nq * f
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
