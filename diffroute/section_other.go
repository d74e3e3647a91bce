//go:build !amd64

package diffroute

// sectionVector has no vector kernel on this architecture: callers use the
// scalar loop.
func sectionVector(s Section, f int, rapid, add bool, w [3]float64, y, uPrev, lPrev *float64, inflow, lat, dst, out []float32) bool {
	return false
}

func haveSectionVector() bool { return false }

func prefetch32(s []float32) {}
func prefetch64(p *float64)  {}

func convDenseVector(rev, e, y []float64) bool { return false }

func convLoadVector(in []float64, inflow, lat []float32, f int) bool { return false }

func convStoreVector(dst []float32, y []float64, add bool) bool { return false }

func convStepVector(p reachParams, y []float64, dst, out []float32, add bool, yLast *float64) bool {
	return false
}

// convFFTCrossover is the tap count from which overlap-save beats the plain
// Go direct kernel (measured on amd64 without vectors).
func convFFTCrossover() int { return 384 }

func cascadeVector(secs []Section, f int, rapid, add bool, w [3]float64, ys []float64, uPrev, lPrev *float64, inflow, lat, dst, out []float32, mid []float64, step, zero []float32) bool {
	return false
}

func sectionVector64(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, inflow, dst []float64, lat, out mixedSeries) bool {
	return false
}

func noOutVector64(f int) bool { return false }

func sumVector64(f int) bool { return false }

func sectionSum64(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, in1, in2, usum, dst []float64, lat, out mixedSeries) bool {
	return false
}

// cascadeScratch is the scratch of the amd64 one-pass cascade kernel: none.
func cascadeScratch(nsec, f int) int { return 0 }

func corrVector(acc []float64, g []float32, K []float32, k64 []float64) bool { return false }

// useChunks is false: the chunked kernels are AVX-512 assembly.
var useChunks = false

func chunkForward(s Section, f, L int, aL, y0, up0 float64, u, u2, usum, y, c []float64, lat32 []float32, out []float64, out32 []float32, w [3]float64) {
	panic("diffroute: no chunked kernels on this architecture")
}

func chunkAdjoint(s Section, f, L int, aL, lamAfter, y0, up0 float64, ubd, y, u, lam, cs, es, sumL, firstL []float64,
	gy32 []float32, w0 float64, dx32, lat32 []float32) (du, dup, dy, lam0, dl float64) {
	panic("diffroute: no chunked kernels on this architecture")
}
