package diffroute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The AVX-512 correlation equals the scalar corrPair to float64 rounding
// for every length of series and kernel (kernels longer than the series,
// zero taps, the four-vector body and the masked tail), and touches
// nothing past acc[:T].
func TestCorrVectorMatchesScalar(t *testing.T) {
	if !haveConvAVX512 {
		t.Skip("no AVX-512 here")
	}
	rng := rand.New(rand.NewPCG(5, 7))
	for _, T := range []int{1, 2, 7, 8, 9, 31, 32, 33, 40, 63, 100, 257} {
		for _, nk := range []int{1, 3, 8, 16, 17, 40, 300} {
			// Values past T that would show if they were read.
			gbuf := make([]float32, T+64)
			for i := range gbuf {
				gbuf[i] = 1e6
			}
			g := gbuf[:T:T]
			for i := range g {
				g[i] = float32(rng.NormFloat64())
			}
			K := make([]float32, nk)
			for i := range K {
				if rng.IntN(4) > 0 {
					K[i] = float32(rng.Float64())
				}
			}
			want := make([]float64, T)
			for i := range want {
				want[i] = rng.Float64()
			}
			got := make([]float64, T+8)
			copy(got, want)
			for i := T; i < len(got); i++ {
				got[i] = 42
			}
			corrPair(want, g, K)
			if !corrVector(got[:T], g, K, make([]float64, nk)) {
				t.Fatal("corrVector did not run")
			}
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
					t.Fatalf("T=%d nk=%d: acc[%d] = %v, scalar %v", T, nk, i, got[i], want[i])
				}
			}
			for i := T; i < len(got); i++ {
				if got[i] != 42 {
					t.Fatalf("T=%d nk=%d: acc[%d] past T written: %v", T, nk, i, got[i])
				}
			}
		}
	}
}
