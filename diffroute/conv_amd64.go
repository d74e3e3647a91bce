package diffroute

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// haveConvAVX512 reports whether convDenseAVX512 can run here.
var haveConvAVX512 = haveSectionAVX2 && cpu.X86.HasAVX512F

//go:noescape
func convDenseAVX2(rev *float64, nt int, e *float64, y *float64, ny int)

//go:noescape
func convDenseAVX512(rev *float64, nt int, e *float64, y *float64, ny int)

//go:noescape
func convDenseTab512(tab *float64, nd int, e *float64, y *float64, ny int)

func fmaPeak512(n int) float64

//go:noescape
func convTabRows512(tab *float64, pad *float64, nd int)

//go:noescape
func convLoad512(dst *float64, inflow *float32, lat *float32, nq int, f int)

//go:noescape
func convStore512(dst *float32, y *float64, n int, add bool)

// convLoadVector sets in[q·f+j] = float64(inflow[q·f+j]) + float64(lat[q])
// on the vector kernel; it reports false, doing nothing, where there is none.
func convLoadVector(in []float64, inflow, lat []float32, f int) bool {
	if !haveConvAVX512 || f%8 != 0 || len(lat) == 0 {
		return false
	}
	if fl := len(lat) * f; len(in) < fl || len(inflow) < fl {
		panic("diffroute: convLoadVector buffers too short")
	}
	convLoad512(unsafe.SliceData(in), unsafe.SliceData(inflow), unsafe.SliceData(lat), len(lat), f)
	return true
}

// convStepArgs is the argument block of convStep512 (the assembly reads it
// by offset: keep the field order).
type convStepArgs struct {
	y                 *float64
	dst, out          *float32
	nq, f, add        int64
	wsum, wend, wprev float64
	yLast             float64
}

//go:noescape
func convStep512(k *convStepArgs)

// convStepVector stores (with add, adds) the fine outflows y of len(out)
// steps into dst (none when dst is nil) and writes each step's value into
// out as the section kernels do (stepWeights), from and into *yLast, the
// last outflow before the chunk and after it. It reports false, doing
// nothing, where there is no vector kernel or the rule needs the
// second-to-last sub-step.
func convStepVector(p reachParams, y []float64, dst, out []float32, add bool, yLast *float64) bool {
	f, nq := p.f, len(out)
	if !haveConvAVX512 || f%8 != 0 || nq == 0 || (p.sample && p.start) {
		return false
	}
	if len(y) < nq*f || (dst != nil && len(dst) < nq*f) {
		panic("diffroute: convStepVector buffers too short")
	}
	w := stepWeights(p)
	k := convStepArgs{y: unsafe.SliceData(y), out: unsafe.SliceData(out), nq: int64(nq), f: int64(f),
		wsum: w[0], wend: w[1], wprev: w[2], yLast: *yLast}
	if dst != nil {
		k.dst = unsafe.SliceData(dst)
	}
	if add {
		k.add = 1
	}
	convStep512(&k)
	*yLast = k.yLast
	return true
}

// convStoreVector stores (or with add, adds) float32(y) into dst on the
// vector kernel; it reports false, doing nothing, where there is none.
func convStoreVector(dst []float32, y []float64, add bool) bool {
	if !haveConvAVX512 || len(dst)%8 != 0 || len(dst) == 0 {
		return false
	}
	if len(y) < len(dst) {
		panic("diffroute: convStoreVector buffers too short")
	}
	convStore512(unsafe.SliceData(dst), unsafe.SliceData(y), len(dst), add)
	return true
}

// convTabMinTaps is the kernel length from which convDenseTab512 (with its
// seven extra rows per pass) beats convDenseAVX512.
const convTabMinTaps = 16

// convTabPool holds the lane-shifted tap tables of convDenseTab512: one per
// call, (taps+7)·64 bytes, rebuilt each time (8 stores per tap against
// thousands of multiply-adds per tap).
var convTabPool = sync.Pool{New: func() any { return new([]float64) }}

// convTab fills buf (grown as needed) with the lane-shifted table of rev,
// tab[d][i] = rev[d−i] for d < len(rev)+7, aligned to 64 bytes.
func convTab(buf *[]float64, rev []float64) []float64 {
	l := len(rev)
	nd := l + 7
	if need := nd*8 + 8 + l + 14; cap(*buf) < need {
		*buf = make([]float64, need)
	}
	b := (*buf)[:cap(*buf)]
	off := int((64 - uintptr(unsafe.Pointer(&b[0]))%64) % 64 / 8)
	tab := b[off : off+nd*8]
	// pad[7+k] = rev[l−1−k] between seven zeros each side: row d is
	// pad[l+6−d : l+14−d].
	pad := b[off+nd*8 : off+nd*8+l+14]
	clear(pad[:7])
	clear(pad[l+7:])
	for k, v := range rev {
		pad[7+l-1-k] = v
	}
	convTabRows512(unsafe.SliceData(tab), unsafe.SliceData(pad), nd)
	return tab
}

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
	if haveConvAVX512 && len(rev) >= convTabMinTaps {
		// Blocks of 8 outputs; the rest below, with the same FMAs.
		n = len(y) &^ 7
		if n > 0 {
			buf := convTabPool.Get().(*[]float64)
			tab := convTab(buf, rev)
			// Short tails run on fewer chains than the FMA units need: the
			// last 64 or 128 outputs are rather recomputed by one full
			// block, which writes the same values where it overlaps.
			nd := len(rev) + 7
			m, k := n, 0
			switch r := n % 128; {
			case n > 128 && r != 0 && r <= 64:
				m, k = n&^127, 64
			case n > 128 && r != 0:
				m, k = n&^127, 128
			case n > 64 && n < 128:
				m, k = 64, 64
			}
			convDenseTab512(unsafe.SliceData(tab), nd, unsafe.SliceData(e), unsafe.SliceData(y), m)
			if k > 0 && m < n {
				convDenseTab512(unsafe.SliceData(tab), nd, &e[n-k], &y[n-k], k)
			}
			convTabPool.Put(buf)
		}
	} else if haveConvAVX512 {
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
// kernel that runs here (measured on 2,400-output chunks; on AVX-512 with
// BenchmarkRecursiveHayamiLongWindow, where 5,191-tap kernels ran at the
// same speed either way).
func convFFTCrossover() int {
	switch {
	case haveConvAVX512:
		return 5120
	case haveSectionAVX2:
		return 1024
	default:
		return 384
	}
}
