package diffroute

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// kBuildBoth builds opts on the time-domain path and on the FFT path.
func kBuildBoth(t *testing.T, net *Network, opts Options) (td, fft *KernelRouter) {
	t.Helper()
	defer func(v bool) { kernelForceFFT = v }(kernelForceFFT)
	ctx := context.Background()
	var err error
	kernelForceFFT = false
	if td, err = NewKernelRouter(ctx, net, opts); err != nil {
		t.Fatal(err)
	}
	kernelForceFFT = true
	if fft, err = NewKernelRouter(ctx, net, opts); err != nil {
		t.Fatal(err)
	}
	if td.td == nil || td.Stats().FFTLen != 0 {
		t.Fatalf("%+v: time-domain build not taken", opts)
	}
	if fft.td != nil || fft.Stats().FFTLen == 0 {
		t.Fatal("FFT build not forced")
	}
	return td, fft
}

// kRelDiff is max_k |a[k] − b[k]| / max_k |b[k]| (the absolute difference
// when b is all zero).
func kRelDiff(a, b []float32) float64 {
	diff, peak := 0.0, 0.0
	for k := range b {
		diff = max(diff, math.Abs(float64(a[k])-float64(b[k])))
		peak = max(peak, math.Abs(float64(b[k])))
	}
	if peak == 0 {
		return diff
	}
	return diff / peak
}

// TestKernelTimeDomainEqualsFFT checks that the time-domain build gives the
// FFT build's path kernels, tap by tap relative to each pair's peak, with an
// FFT long enough (FFTPad 4, MaxDelay beyond the longest path's response)
// that wrap-around is negligible; likewise the transfer, fine-output and
// fine-inflow kernels.
func TestKernelTimeDomainEqualsFFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	nets := []*Network{kRandomNetwork(t, rng, 160, 3), SyntheticNetwork(600, 3)}
	if testing.Short() {
		// The race run (-short) takes the small network only: the large one
		// has ten times the closure pairs and adds minutes under -race.
		nets = nets[:1]
	}
	for _, net := range nets {
		t.Logf("%v", net)
		kTimeDomainEqualsFFT(t, rng, net)
	}
}

func kTimeDomainEqualsFFT(t *testing.T, rng *rand.Rand, net *Network) {
	const f, md = 3, 96
	type tcase struct {
		irf    string
		params Params
		lat    LateralRule
		smp    Sampling
		avg    Average
		excl   bool
		relu   bool
		norm   bool
	}
	var cases []tcase
	musk := kRandomParams(rng, "muskingum", net.Len())
	for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
		for _, smp := range []Sampling{SampleAvg, SampleLast} {
			for _, avg := range []Average{AverageStart, AverageEnd} {
				for _, excl := range []bool{false, true} {
					cases = append(cases, tcase{irf: "muskingum", params: musk, lat: lat, smp: smp, avg: avg, excl: excl})
				}
			}
		}
	}
	storage := kRandomParams(rng, "linear_storage", net.Len())
	nash3 := kRandomParams(rng, "nash_cascade", net.Len())
	nash2 := kRandomParams(rng, "nash_cascade", net.Len())
	nash2["n"] = Constant(net.Len(), map[string]float64{"n": 2})["n"]
	for _, c := range []struct {
		irf string
		p   Params
	}{{"linear_storage", storage}, {"nash_cascade", nash3}, {"nash_cascade", nash2}} {
		for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
			cases = append(cases,
				tcase{irf: c.irf, params: c.p, lat: lat, smp: SampleAvg, avg: AverageStart},
				tcase{irf: c.irf, params: c.p, lat: lat, smp: SampleLast, avg: AverageEnd, excl: true})
		}
	}
	// DiffRoute's post-processing outside Compat: ReLU on the fine kernel and
	// Normalize, with Muskingum's negative C0 (x = 0.45).
	neg := Params{"k": musk["k"], "x": Constant(net.Len(), map[string]float64{"x": 0.45})["x"]}
	for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
		cases = append(cases,
			tcase{irf: "muskingum", params: neg, lat: lat, smp: SampleAvg, avg: AverageStart, relu: true, norm: true},
			tcase{irf: "muskingum", params: neg, lat: lat, smp: SampleLast, avg: AverageEnd, relu: true, excl: true},
			tcase{irf: "muskingum", params: neg, lat: lat, smp: SampleAvg, avg: AverageEnd, norm: true})
	}
	// Reaches for the transfer and fine-output kernels: a deep one and outlets.
	deep := 0
	for i := 0; i < net.Len(); i++ {
		if net.Depth(i) > net.Depth(deep) {
			deep = i
		}
	}
	var outs []int
	for i := 0; i < net.Len(); i++ {
		if net.Down(i) < 0 {
			outs = append(outs, i)
		}
	}
	for _, c := range cases {
		name := fmt.Sprintf("%s/n=%v/%s/%s/%s/exclude=%v/relu=%v/normalize=%v", c.irf, c.params["n"] != nil, c.lat, c.smp, c.avg, c.excl, c.relu, c.norm)
		opts := Options{IRF: c.irf, Params: c.params, SubSteps: f, MaxDelay: md, FFTPad: 4,
			Lateral: c.lat, Sampling: c.smp, Average: c.avg, ExcludeSelf: c.excl, ReLU: c.relu, Normalize: c.norm}
		td, fft := kBuildBoth(t, net, opts)
		a, b := td.BlockSparse(), fft.BlockSparse()
		worst := 0.0
		for p := 0; p < a.N; p++ {
			for q := p; q < p+int(a.Size[p]); q++ {
				worst = max(worst, kRelDiff(a.entry(p, q), b.entry(p, q)))
			}
		}
		// Transfer kernels (fine input, coarse output), row by row.
		worstTr := 0.0
		for _, v := range []int{deep, net.Down(deep), outs[0]} {
			ta, err := td.transfer(v)
			if err != nil {
				t.Fatal(err)
			}
			tb, err := fft.transfer(v)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ta.rows, tb.rows) {
				t.Fatalf("%s: transfer rows %v vs %v", name, ta.rows, tb.rows)
			}
			wf := md * f
			for r := range ta.rows {
				worstTr = max(worstTr, kRelDiff(ta.vals[r*wf:(r+1)*wf], tb.vals[r*wf:(r+1)*wf]))
			}
		}
		// Fine-output kernels of an outlet (every source of its closure) and
		// the fine-inflow kernel from the deep reach.
		worstFine := 0.0
		u := deep
		for u2 := deep; u2 >= 0; u2 = net.Down(u2) {
			u = u2
		}
		fa, err := td.fineOut(u)
		if err != nil {
			t.Fatal(err)
		}
		fb, err := fft.fineOut(u)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fa.srcs, fb.srcs) {
			t.Fatalf("%s: fine-output sources differ", name)
		}
		w := md * f
		for k := range fa.srcs {
			worstFine = max(worstFine, kRelDiff(fa.vals[k*w:(k+1)*w], fb.vals[k*w:(k+1)*w]))
		}
		ka, _, err := td.fineInflowKernel(fa, u, deep)
		if err != nil {
			t.Fatal(err)
		}
		kb, _, err := fft.fineInflowKernel(fb, u, deep)
		if err != nil {
			t.Fatal(err)
		}
		worstFine = max(worstFine, kRelDiff(ka, kb))
		sa, sb := td.Stats(), fft.Stats()
		t.Logf("%s: max rel tap difference: kernel %.3g, transfer %.3g, fine %.3g; truncated mass max %.3g vs %.3g",
			name, worst, worstTr, worstFine, sa.TruncatedMassMax, sb.TruncatedMassMax)
		if !(worst <= 1e-6) || !(worstTr <= 1e-6) || !(worstFine <= 1e-6) {
			t.Errorf("%s: time-domain and FFT builds differ: kernel %.3g, transfer %.3g, fine %.3g (want ≤ 1e-6)", name, worst, worstTr, worstFine)
		}
		if math.Abs(sa.TruncatedMassMax-sb.TruncatedMassMax) > 1e-6 {
			t.Errorf("%s: truncated mass max %.9g vs FFT %.9g", name, sa.TruncatedMassMax, sb.TruncatedMassMax)
		}
	}
}

// TestKernelTimeDomainWhen checks which IRFs and options take the
// time-domain build.
func TestKernelTimeDomainWhen(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	net := kRandomNetwork(t, rng, 40, 1)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		o    Options
		td   bool
	}{
		{"muskingum", Options{IRF: "muskingum"}, true},
		{"linear_storage", Options{IRF: "linear_storage"}, true},
		{"nash_cascade", Options{IRF: "nash_cascade"}, true},
		{"nash_fractional", Options{IRF: "nash_cascade"}, false},
		{"pure_lag", Options{IRF: "pure_lag"}, false},
		{"hayami", Options{IRF: "hayami"}, false},
		{"muskingum", Options{IRF: "muskingum", Compat: "diffroute"}, false},
	} {
		c.o.Params, c.o.SubSteps, c.o.MaxDelay = kRandomParams(rng, c.name, net.Len()), 2, 20
		kr, err := NewKernelRouter(ctx, net, c.o)
		if err != nil {
			t.Fatal(err)
		}
		est, err := EstimateKernelBytes(net, c.o)
		if err != nil {
			t.Fatal(err)
		}
		st := kr.Stats()
		if (kr.td != nil) != c.td || (st.FFTLen == 0) != c.td || est.FFTLen != st.FFTLen || est.BuildPeakBytes != st.BuildPeakBytes {
			t.Errorf("%s compat=%q: time-domain %v (FFT length %d, estimated %d; build peak %d, estimated %d), want %v",
				c.name, c.o.Compat, kr.td != nil, st.FFTLen, est.FFTLen, st.BuildPeakBytes, est.BuildPeakBytes, c.td)
		}
	}
}

func TestNthFloat32(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, n := range []int{1, 2, 5, 17, 100, 1000, 20000} {
		for trial := range 4 {
			v := make([]float32, n)
			for i := range v {
				switch trial {
				case 0:
					v[i] = rng.Float32()
				case 1:
					v[i] = float32(rng.IntN(3)) // many duplicates
				case 2:
					v[i] = float32(i) // sorted
				default:
					v[i] = float32(n - i)
					if rng.IntN(50) == 0 {
						v[i] = float32(math.NaN())
					}
				}
			}
			want := slices.Clone(v)
			slices.Sort(want)
			for _, k := range []int{0, n / 2, n - 1} {
				w := slices.Clone(v)
				got := nthFloat32(w, k)
				if cmp.Compare(got, want[k]) != 0 {
					t.Fatalf("n=%d trial %d k=%d: got %v, want %v", n, trial, k, got, want[k])
				}
			}
		}
	}
}

// TestKernelTimeDomainExactTaps checks the time-domain path kernels against
// the sequential reference's response to a unit runoff step at each source,
// for short and odd fine windows (W = MaxDelay·f not a multiple of the
// filter's four-sample blocks) where the FFT build would wrap around: the
// time-domain taps are the exact truncated response.
func TestKernelTimeDomainExactTaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	net := kRandomNetwork(t, rng, 50, 2)
	ctx := context.Background()
	for _, c := range []struct {
		irf   string
		f, md int
	}{{"muskingum", 1, 3}, {"muskingum", 5, 7}, {"muskingum", 3, 2}, {"nash_cascade", 2, 5}, {"linear_storage", 7, 3}} {
		params := kRandomParams(rng, c.irf, net.Len())
		for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
			for _, smp := range []Sampling{SampleAvg, SampleLast} {
				for _, avg := range []Average{AverageStart, AverageEnd} {
					for _, excl := range []bool{false, true} {
						name := fmt.Sprintf("%s/f=%d/md=%d/%s/%s/%s/exclude=%v", c.irf, c.f, c.md, lat, smp, avg, excl)
						kr, err := NewKernelRouter(ctx, net, Options{IRF: c.irf, Params: params, SubSteps: c.f, MaxDelay: c.md,
							Lateral: lat, Sampling: smp, Average: avg, ExcludeSelf: excl})
						if err != nil {
							t.Fatal(err)
						}
						if kr.td == nil {
							t.Fatalf("%s: time-domain build not taken", name)
						}
						ro := kRefOpts{irf: c.irf, params: params, f: c.f, window: c.md * c.f,
							lateral: lat, sampling: smp, average: avg, excludeSelf: excl}
						bs := kr.BlockSparse()
						worst := 0.0
						for s := 0; s < net.Len(); s++ {
							unit := make([][]float64, net.Len())
							for i := range unit {
								unit[i] = make([]float64, c.md)
							}
							unit[s][0] = 1
							exact := kRefRoute(t, net, ro, unit, nil)
							for d := s; d >= 0; d = net.Down(d) {
								for q, v := range bs.entry(net.Pre(d), net.Pre(s)) {
									worst = max(worst, math.Abs(float64(v)-exact[d][q]))
								}
							}
						}
						if worst > 1e-6 {
							t.Errorf("%s: time-domain taps off the exact response by %.3g", name, worst)
						}
					}
				}
			}
		}
	}
}
