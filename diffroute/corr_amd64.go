package diffroute

import "unsafe"

//go:noescape
func corrPairAVX512(acc *float64, gy *float32, taps *float64, n, nk int)

// corrVector runs corrPair on the AVX-512 kernel, the taps in float64 in
// k64 (len(K) values), and reports whether it could.
func corrVector(acc []float64, g []float32, K []float32, k64 []float64) bool {
	if !haveConvAVX512 || len(g) == 0 || len(K) == 0 {
		return false
	}
	if len(acc) < len(g) || len(k64) < len(K) {
		panic("diffroute: corrVector buffers too short")
	}
	nk := min(len(K), len(g)) // taps at or past T reach no output
	for k, a := range K[:nk] {
		k64[k] = float64(a)
	}
	corrPairAVX512(unsafe.SliceData(acc), unsafe.SliceData(g), unsafe.SliceData(k64), len(g), nk)
	return true
}
