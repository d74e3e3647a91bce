package diffroute

import (
	"fmt"
	"math"
	"testing"
)

// NSE and KGE against values worked by hand, and their edge cases.
func TestNSEKGEByHand(t *testing.T) {
	obs := []float32{1, 2, 3, 4}
	// mean 2.5, Σ(o−m)² = 5; sim off by 1 at one step: NSE = 1 − 1/5.
	if got := NSE([]float32{1, 2, 3, 5}, obs); math.Abs(got-0.8) > 1e-12 {
		t.Errorf("NSE = %v, want 0.8", got)
	}
	if got := NSE(obs, obs); got != 1 {
		t.Errorf("NSE of a perfect match = %v", got)
	}
	// sim = 2·obs: r = 1, α = 2, β = 2 → KGE = 1 − √2.
	if got := KGE([]float32{2, 4, 6, 8}, obs); math.Abs(got-(1-math.Sqrt2)) > 1e-12 {
		t.Errorf("KGE = %v, want %v", got, 1-math.Sqrt2)
	}
	// A NaN observation drops that step from both.
	nan := float32(math.NaN())
	if a, b := NSE([]float32{1, 2, 3, 9}, []float32{1, 2, 3, nan}), NSE([]float32{1, 2, 3}, []float32{1, 2, 3}); a != b {
		t.Errorf("NSE with a NaN observation %v, without the step %v", a, b)
	}
	for _, v := range []float64{NSE([]float32{1, 1}, []float32{2, 2}), KGE([]float32{1}, []float32{1}), NSE(nil, nil)} {
		if !math.IsNaN(v) {
			t.Errorf("degenerate series gave %v, want NaN", v)
		}
	}
}

func TestStatsAndSeriesOf(t *testing.T) {
	x := NewDataTensor(1, []int64{7, 9}, 4)
	copy(x.Series(0, 1), []float32{1, 5, 5, float32(math.NaN())})
	s, err := x.SeriesOf(0, 9)
	if err != nil {
		t.Fatal(err)
	}
	st := Stats(s)
	if st.Peak != 5 || st.PeakStep != 1 || st.Sum != 11 || st.Count != 3 || math.Abs(st.Mean-11.0/3) > 1e-12 {
		t.Errorf("stats %+v", st)
	}
	if _, err := x.SeriesOf(0, 8); err == nil {
		t.Error("reach 8 found")
	}
}

func ExampleNSE() {
	obs := []float32{1, 2, 3, 4}
	sim := []float32{1, 2, 3, 5}
	fmt.Printf("NSE %.2f, KGE %.2f\n", NSE(sim, obs), KGE(sim, obs))
	// Output: NSE 0.80, KGE 0.66
}
