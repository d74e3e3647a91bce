package diffroute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// SumOfSquares against one plain running sum, on sizes around its split
// into parts and its four partial sums.
func TestSumOfSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 3, 4, 7, 1 << 16, 2<<16 + 5, 300001} {
		y := &DataTensor{B: 1, N: 1, T: n, Data: make([]float32, n)}
		gy := &DataTensor{B: 1, N: 1, T: n, Data: make([]float32, n)}
		for k := range y.Data {
			y.Data[k] = float32(rng.NormFloat64() * 100)
		}
		L, err := SumOfSquares(y, gy)
		if err != nil {
			t.Fatal(err)
		}
		want := 0.0
		for k, v := range y.Data {
			want += float64(v) * float64(v)
			if gy.Data[k] != 2*v {
				t.Fatalf("n=%d: gy[%d] = %g, want %g", n, k, gy.Data[k], 2*v)
			}
		}
		if math.Abs(L-want) > 1e-12*want {
			t.Fatalf("n=%d: loss %.17g, want %.17g", n, L, want)
		}
	}
}
