package diffroute

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// haveConvAVX512 reports whether convDenseAVX512 can run here.
var haveConvAVX512 = haveSectionAVX2 && cpu.X86.HasAVX512F

//go:noescape
func convDenseAVX2(rev *float64, nt int, e *float64, y *float64, ny int)

//go:noescape
func convDenseAVX512(rev *float64, nt int, e *float64, y *float64, ny int)

// convDenseVector is convDense on the vector kernel; it reports false,
// doing nothing, where there is none.
func convDenseVector(rev, e, y []float64) bool {
	if !haveSectionAVX2 || len(rev) == 0 || len(y) == 0 {
		return false
	}
	if len(e) < len(y)+len(rev)-1 {
		panic("diffroute: convDenseVector inflow window too short")
	}
	n := 0
	if haveConvAVX512 {
		// Blocks of 64 outputs; the rest below. Lanes of either width do
		// the same FMAs, so outputs do not depend on which block they fall in.
		n = len(y) &^ 63
		if n > 0 {
			convDenseAVX512(unsafe.SliceData(rev), len(rev), unsafe.SliceData(e), unsafe.SliceData(y), n)
		}
	}
	if n < len(y) {
		convDenseAVX2(unsafe.SliceData(rev), len(rev), &e[n], &y[n], len(y)-n)
	}
	return true
}

// convFFTCrossover is the tap count from which overlap-save beats the direct
// kernel that runs here (measured on 2,400-output chunks).
func convFFTCrossover() int {
	switch {
	case haveConvAVX512:
		return 2048
	case haveSectionAVX2:
		return 1024
	default:
		return 384
	}
}
