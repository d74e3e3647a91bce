package diffroute

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// withFFTMinTaps runs f with the direct/FFT crossover set to n taps.
func withFFTMinTaps(n int, f func()) {
	old := convFFTMinTaps
	convFFTMinTaps = n
	defer func() { convFFTMinTaps = old }()
	f()
}

// Overlap-save against the plain loop on random contiguous kernels (lengths
// 1 … 3000 at random offsets in windows up to 4096) and inflows spanning six
// orders of magnitude, for chunks shorter and longer than one FFT block: the
// error is bounded by float64 rounding of the transforms, relative to the
// largest inflow times the kernel's absolute sum.
func TestConvOverlapSaveMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	works := map[int]*convFFTWork{}
	fft := func(m int) *convFFTWork {
		if works[m] == nil {
			works[m] = newConvFFTWork(m)
		}
		return works[m]
	}
	windows := []int{1, 2, 7, 64, 384, 1000, 4096}
	if testing.Short() {
		// The race run (-short): one goroutine's arithmetic, whose
		// reference loop over the long windows took 20 s under -race.
		windows = windows[:5]
	}
	for _, w := range windows {
		for trial := 0; trial < 4; trial++ {
			var r rawTaps
			withFFTMinTaps(1, func() { r = randomTaps(rng, w, true) })
			if r.c.spec == nil {
				t.Fatalf("w=%d: %d contiguous taps have no spectrum", w, len(r.taps))
			}
			if trial == 0 { // the longest kernel the window holds
				r.taps, r.idx = r.taps[:0], r.idx[:0]
				for k := range w {
					r.taps, r.idx = append(r.taps, rng.Float64()), append(r.idx, int32(k))
				}
				withFFTMinTaps(1, func() { r.c = newConvTaps(slices.Clone(r.taps), slices.Clone(r.idx)) })
			}
			h := w - 1
			sumG := 0.0
			for _, c := range r.taps {
				sumG += math.Abs(c)
			}
			for _, fl := range []int{len(r.taps), len(r.taps) + 1, r.c.spec.m, 3*r.c.spec.m + 17, 2400} {
				ext := make([]float64, h+fl)
				maxE := 0.0
				for k := range ext {
					ext[k] = math.Pow(10, 6*rng.Float64()-3) * (rng.Float64() - 0.1)
					maxE = max(maxE, math.Abs(ext[k]))
				}
				y := make([]float64, fl)
				for k := range y {
					y[k] = math.NaN()
				}
				convFine(r.c, ext, h, y, fft)
				for n, v := range y {
					want, _ := refConv(r.taps, r.idx, ext, h, n)
					if !(math.Abs(v-want) <= 1e-13*maxE*sumG) {
						t.Fatalf("w=%d L=%d fl=%d: y[%d] = %.17g, reference %.17g", w, len(r.taps), fl, n, v, want)
					}
				}
			}
		}
	}
}

// The recursive router on Hayami reaches gives the same discharge with
// every reach convolved by FFT as with every reach convolved directly, to
// float32 rounding, whole and resumed from a saved state in the middle.
func TestRecursiveFFTEqualsDirect(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	net := kRandomNetwork(t, rng, 60, 1)
	const T, cut = 40, 17
	o := Options{IRF: "hayami", Params: kRandomParams(rng, "hayami", net.Len()), SubSteps: 24, MaxDelay: 16, Workers: 2}
	x := kRandomRunoff(rng, net, 2, T)
	route := func(minTaps int, split bool) *DataTensor {
		var y *DataTensor
		withFFTMinTaps(minTaps, func() {
			rr, err := NewRecursiveRouter(ctx, net, o)
			if err != nil {
				t.Fatal(err)
			}
			nFFT := 0
			for _, c := range rr.conv {
				if c.spec != nil {
					nFFT++
				}
			}
			if (minTaps == 1) != (nFFT == net.Len()) || (minTaps > 1 && nFFT > 0) {
				t.Fatalf("crossover %d: %d of %d reaches by FFT", minTaps, nFFT, net.Len())
			}
			if !split {
				if y, err = rr.Route(ctx, x); err != nil {
					t.Fatal(err)
				}
				return
			}
			y1, err := rr.Route(ctx, x.SliceTime(0, cut))
			if err != nil {
				t.Fatal(err)
			}
			s, err := rr.State()
			if err != nil {
				t.Fatal(err)
			}
			rr2, err := NewRecursiveRouter(ctx, net, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := rr2.SetState(reversedState(s)); err != nil {
				t.Fatal(err)
			}
			y2, err := rr2.Route(ctx, x.SliceTime(cut, T))
			if err != nil {
				t.Fatal(err)
			}
			y = x.SliceTime(0, T) // same shape; overwritten below
			y = newDischarge(x, net)
			for b := 0; b < x.B; b++ {
				for i := 0; i < net.Len(); i++ {
					s := y.Series(b, i)
					copy(s, y1.Series(b, i))
					copy(s[cut:], y2.Series(b, i))
				}
			}
		})
		return y
	}
	direct := route(math.MaxInt, false)
	for _, split := range []bool{false, true} {
		got := route(1, split)
		worst := 0.0
		for b := 0; b < x.B; b++ {
			for i := 0; i < net.Len(); i++ {
				g, d := got.Series(b, i), direct.Series(b, i)
				for q := range d {
					// float32 rounding of the value, and of the upstream
					// sums it carries (a few ulps of the local scale).
					tol := 4e-7 * (math.Abs(float64(d[q])) + 1e-3)
					e := math.Abs(float64(g[q]) - float64(d[q]))
					worst = max(worst, e/tol)
					if e > tol {
						t.Fatalf("split=%v reach %d batch %d step %d: FFT %.9g, direct %.9g", split, i, b, q, g[q], d[q])
					}
				}
			}
		}
		t.Logf("split=%v: worst difference %.3g of the tolerance", split, worst)
	}
}

// BenchmarkConvDenseVsFFT times one chunk of 2,400 fine outputs (100 steps ×
// 24) for dense kernels of L taps, directly and by overlap-save: the
// crossover convFFTMinTaps is where the two meet.
func BenchmarkConvDenseVsFFT(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range []int{128, 256, 384, 768, 1536, 3072} {
		taps := make([]float64, l)
		idx := make([]int32, l)
		for k := range taps {
			taps[k], idx[k] = rng.Float64(), int32(k)
		}
		var c convTaps
		withFFTMinTaps(1, func() { c = newConvTaps(taps, idx) })
		const fl = 2400
		h := l - 1
		ext := make([]float64, h+fl)
		for k := range ext {
			ext[k] = rng.Float64()
		}
		y := make([]float64, fl)
		w := newConvFFTWork(c.spec.m)
		for _, way := range []string{"direct", "fft"} {
			b.Run(fmt.Sprintf("L=%d/%s", l, way), func(b *testing.B) {
				for b.Loop() {
					if way == "fft" {
						convFine(c, ext, h, y, func(int) *convFFTWork { return w })
					} else {
						convFine(c, ext, h, y, nil)
					}
				}
				b.ReportMetric(float64(fl)*float64(b.N)/b.Elapsed().Seconds()/1e6, "M-outputs/s")
			})
		}
	}
}
