package diffroute

import (
	"context"
	"math"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time: on a machine shared with
// other work, throughput per CPU-second varies far less than per wall
// second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchRecursive(b *testing.B, n, steps, f, workers int, irf string) {
	benchRecursiveDelay(b, n, steps, f, workers, irf, 16)
}

func benchRecursiveDelay(b *testing.B, n, steps, f, workers int, irf string, maxDelay int) {
	net := SyntheticNetwork(n, 1)
	x := SyntheticRunoff(net, 1, steps, 1)
	p := testParams(irf, n, 1)
	rr, err := NewRecursiveRouter(context.Background(), net, Options{IRF: irf, Params: p, SubSteps: f, Workers: workers, MaxDelay: maxDelay})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	var cpu time.Duration
	for b.Loop() {
		c0 := cpuTime()
		if _, err := rr.Route(ctx, x); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
	}
	work := float64(n*steps*f) * float64(b.N)
	b.ReportMetric(work/b.Elapsed().Seconds()/1e6, "M-reach-substeps/s")
	b.ReportMetric(work/cpu.Seconds()/1e6, "M/cpu-s")
}

func BenchmarkRecursiveMuskingum100k(b *testing.B) {
	benchRecursive(b, 100000, 100, 24, 0, "muskingum")
}
func BenchmarkRecursiveMuskingum100k1(b *testing.B) {
	benchRecursive(b, 100000, 100, 24, 1, "muskingum")
}
func BenchmarkRecursiveNash20k(b *testing.B)    { benchRecursive(b, 20000, 100, 24, 0, "nash_cascade") }
func BenchmarkRecursivePureLag20k(b *testing.B) { benchRecursive(b, 20000, 100, 24, 0, "pure_lag") }

func BenchmarkRecursiveHayami20k(b *testing.B) { benchRecursive(b, 20000, 100, 24, 0, "hayami") }

// BenchmarkRecursiveHayamiLongWindow routes slow, diffusive Hayami reaches
// (long L, low celerity: kernels of thousands of fine taps in a 256-step
// window, W = 6,144) with the direct/FFT choice by tap count (auto) and with
// every reach direct.
func BenchmarkRecursiveHayamiLongWindow(b *testing.B) {
	const n, steps, f = 2000, 400, 24
	net := SyntheticNetwork(n, 1)
	x := SyntheticRunoff(net, 1, steps, 1)
	p := testParams("hayami", n, 1)
	for i := range n {
		p["L"][i] *= 40
		p["c"][i] /= 4
	}
	for _, way := range []string{"auto", "direct"} {
		b.Run(way, func(b *testing.B) {
			if way == "direct" {
				old := convFFTMinTaps
				convFFTMinTaps = math.MaxInt
				defer func() { convFFTMinTaps = old }()
			}
			rr, err := NewRecursiveRouter(context.Background(), net, Options{IRF: "hayami", Params: p, SubSteps: f, MaxDelay: 256})
			if err != nil {
				b.Fatal(err)
			}
			taps, byFFT := 0, 0
			for _, c := range rr.conv {
				taps += len(c.taps)
				if c.spec != nil {
					byFFT++
				}
			}
			var cpu time.Duration
			for b.Loop() {
				c0 := cpuTime()
				if _, err := rr.Route(context.Background(), x); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime() - c0
			}
			work := float64(n*steps*f) * float64(b.N)
			b.ReportMetric(float64(taps)/n, "taps/reach")
			b.ReportMetric(float64(byFFT)/n, "FFT-share")
			b.ReportMetric(work/cpu.Seconds()/1e6, "M/cpu-s")
		})
	}
}

func BenchmarkRecursiveMuskingum20k1(b *testing.B) {
	benchRecursive(b, 20000, 100, 24, 1, "muskingum")
}

// benchRecursiveOrdered is benchRecursive on the network renumbered in the
// router's own order, with runoff rows in that order (as `diffroute route`
// routes), routing into a reused tensor: routing alone.
func benchRecursiveOrdered(b *testing.B, n, steps, f, workers int, irf string) {
	net := SyntheticNetwork(n, 1)
	order := RoutingOrder(net, workers)
	onet, err := net.Reorder(order)
	if err != nil {
		b.Fatal(err)
	}
	x := SyntheticRunoff(onet, 1, steps, 1)
	p := testParams(irf, n, 1).Subset(order)
	rr, err := NewRecursiveRouter(context.Background(), onet, Options{IRF: irf, Params: p, SubSteps: f, Workers: workers, MaxDelay: 16})
	if err != nil {
		b.Fatal(err)
	}
	y := newDischarge(x, onet)
	ctx := context.Background()
	b.ResetTimer()
	var cpu time.Duration
	for b.Loop() {
		c0 := cpuTime()
		if err := rr.RouteTo(ctx, y, x); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
	}
	work := float64(n*steps*f) * float64(b.N)
	b.ReportMetric(work/b.Elapsed().Seconds()/1e6, "M-reach-substeps/s")
	b.ReportMetric(work/cpu.Seconds()/1e6, "M/cpu-s")
}

func BenchmarkRecursiveMuskingum100kOrdered(b *testing.B) {
	benchRecursiveOrdered(b, 100000, 100, 24, 0, "muskingum")
}
func BenchmarkRecursiveMuskingum100kOrdered1(b *testing.B) {
	benchRecursiveOrdered(b, 100000, 100, 24, 1, "muskingum")
}

// The GEOGLOWS-size case of `diffroute bench --global` (6.84 M reaches × 30
// daily steps × 24), routing alone; about 2.5 GiB.
func BenchmarkRecursiveMuskingumWorldOrdered(b *testing.B) {
	benchRecursiveOrdered(b, 6840000, 30, 24, 0, "muskingum")
}
func BenchmarkRecursiveMuskingum1MOrdered(b *testing.B) {
	benchRecursiveOrdered(b, 1000000, 30, 24, 0, "muskingum")
}
func BenchmarkRecursiveHayami20kOrdered(b *testing.B) {
	benchRecursiveOrdered(b, 20000, 100, 24, 0, "hayami")
}
