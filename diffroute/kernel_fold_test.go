package diffroute

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// TestKernelFoldMatchesInverseFFT builds FFT-path kernels twice, with taps
// folded straight from the spectra and through the inverse FFT and the fine
// kernel, over every coarsening variant (averaging start/end, mean/sample,
// whole-step responses under the rapid lateral rule, ExcludeSelf, FFT
// padding, odd sub-step counts, log-prefix spectra), and requires the same
// taps to float32 rounding.
func TestKernelFoldMatchesInverseFFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	net := kRandomNetwork(t, rng, 150, 2)
	ctx := context.Background()
	defer func(v bool) { kernelFold = v }(kernelFold)
	defer func(v bool) { kernelForceFFT = v }(kernelForceFFT)
	defer func(v bool) { kernelLogPrefix = v }(kernelLogPrefix)
	type variant struct {
		o         Options
		forceFFT  bool
		logPrefix bool
	}
	var cases []variant
	for _, irf := range []string{"hayami", "pure_lag", "nash_fractional"} {
		for _, avg := range []Average{AverageStart, AverageEnd} {
			for _, smp := range []Sampling{SampleAvg, SampleLast} {
				cases = append(cases, variant{o: Options{IRF: irf, Average: avg, Sampling: smp, SubSteps: 4, MaxDelay: 12}})
			}
		}
	}
	cases = append(cases,
		variant{o: Options{IRF: "muskingum", Lateral: LateralRAPID, SubSteps: 5, MaxDelay: 9}, forceFFT: true}, // boxed sources
		variant{o: Options{IRF: "muskingum", Lateral: LateralRAPID, Sampling: SampleLast, Average: AverageEnd, SubSteps: 3, MaxDelay: 10}, forceFFT: true},
		variant{o: Options{IRF: "nash_cascade", Lateral: LateralLTI, ExcludeSelf: true, SubSteps: 6, MaxDelay: 8}, forceFFT: true},
		variant{o: Options{IRF: "hayami", Compat: "diffroute", ExcludeSelf: true, SubSteps: 4, MaxDelay: 16}},
		variant{o: Options{IRF: "hayami", FFTPad: 1, SubSteps: 7, MaxDelay: 5}},
		variant{o: Options{IRF: "hayami", FFTPad: 3, SubSteps: 3, MaxDelay: 7}},
		variant{o: Options{IRF: "pure_lag", SubSteps: 1, MaxDelay: 6}},
		variant{o: Options{IRF: "hayami", SubSteps: 4, MaxDelay: 12}, logPrefix: true},
		variant{o: Options{IRF: "muskingum", Lateral: LateralRAPID, SubSteps: 4, MaxDelay: 12}, forceFFT: true, logPrefix: true},
	)
	for _, c := range cases {
		paramIRF := c.o.IRF
		c.o.Params = kRandomParams(rng, paramIRF, net.Len())
		if paramIRF == "nash_fractional" {
			c.o.IRF = "nash_cascade"
		}
		kernelForceFFT, kernelLogPrefix = c.forceFFT, c.logPrefix
		var vals [2][]float32
		var stats [2]KernelStats
		for m, fold := range []bool{false, true} {
			kernelFold = fold
			kr, err := NewKernelRouter(ctx, net, c.o)
			if err != nil {
				t.Fatal(err)
			}
			if kr.Stats().FFTLen == 0 {
				t.Fatalf("%+v: not an FFT build", c.o)
			}
			vals[m], stats[m] = kr.BlockSparse().Vals, kr.Stats()
		}
		worst, peak := 0.0, 0.0
		for i := range vals[0] {
			worst = max(worst, math.Abs(float64(vals[0][i]-vals[1][i])))
			peak = max(peak, math.Abs(float64(vals[0][i])))
		}
		t.Logf("%s avg=%v sample=%v lateral=%s f=%d pad=%d exclude=%v log=%v: max tap difference %.3g (peak %.3g)",
			paramIRF, c.o.Average, c.o.Sampling, c.o.Lateral, c.o.SubSteps, c.o.FFTPad, c.o.ExcludeSelf, c.logPrefix, worst, peak)
		if worst > 2e-7*max(peak, 1) || peak == 0 {
			t.Errorf("%s %+v: folded taps differ from the inverse FFT's by %.3g (peak %.3g)", paramIRF, c.o, worst, peak)
		}
		if d := math.Abs(stats[0].TruncatedMassMax - stats[1].TruncatedMassMax); d > 1e-6 {
			t.Errorf("%s: truncated mass %.6g vs %.6g", paramIRF, stats[0].TruncatedMassMax, stats[1].TruncatedMassMax)
		}
	}
}

// BenchmarkKernelBuildHayami20k builds a Hayami kernel (FFT path: no
// recursive form) on the 20k-reach benchmark network with DiffRoute-like
// settings (24 sub-steps, 16 taps). KERNEL_FOLD=0 takes the inverse-FFT
// route instead of the fold, for comparison; KERNEL_BENCH_N sets the size.
func BenchmarkKernelBuildHayami20k(b *testing.B) {
	net := SyntheticNetwork(benchKernelN, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	o := Options{IRF: "hayami", Params: kRandomParams(rng, "hayami", net.Len()), SubSteps: 24, MaxDelay: 16}
	if os.Getenv("KERNEL_FOLD") == "0" {
		defer func(v bool) { kernelFold = v }(kernelFold)
		kernelFold = false
	}
	var pairs int64
	for range b.N {
		kr, err := NewKernelRouter(b.Context(), net, o)
		if err != nil {
			b.Fatal(err)
		}
		pairs = kr.Stats().Pairs
	}
	b.ReportMetric(float64(pairs)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpairs/s")
}
