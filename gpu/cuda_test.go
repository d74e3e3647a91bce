//go:build cuda || cudaemu

package gpu

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// These tests need an NVIDIA GPU (build with -tags cuda; see
// scripts/gpu-run-device.sh). They compare the GPU router with the CPU
// kernel method it is built from.

var (
	testDev *Device

	benchN    = flag.Int("gpu.n", 20000, "benchmark: reaches of the synthetic network")
	benchTaps = flag.Int("gpu.taps", 32, "benchmark: kernel taps (MaxDelay)")
	benchT    = flag.Int("gpu.T", 2048, "benchmark: runoff steps")
	benchB    = flag.Int("gpu.B", 1, "benchmark: batch members")
	benchF    = flag.Int("gpu.f", 4, "benchmark: sub-steps per runoff step")
)

func TestMain(m *testing.M) {
	flag.Parse()
	d, err := Open(0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	testDev = d
	fmt.Println(d.Info())
	code := m.Run()
	d.Close()
	os.Exit(code)
}

func gpuVsCPU(t *testing.T, c gputest.Case, ro *RouterOptions) (*diffroute.DataTensor, float64) {
	t.Helper()
	ctx := context.Background()
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Route(ctx, c.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.CPU().Route(ctx, c.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	pr, er, err := gputest.RelErr(got, want)
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	t.Logf("%s: %d chunks of %d steps, conv %.3g ms: GPU vs CPU %.2g of peak, %.2g elementwise", c.Name, st.Chunks, st.ChunkSteps, st.ConvSeconds*1e3, pr, er)
	return got, pr
}

// emuReaches is the size of the random cases: the race run (-short) takes
// every case on a smaller network, since the emulated device under -race
// spends minutes on the full size.
func emuReaches() int {
	if testing.Short() {
		return 600
	}
	return 3000
}

func TestGPUMatchesCPU(t *testing.T) {
	for _, c := range gputest.RandomCases(emuReaches(), 2, 300, 41) {
		for _, ro := range []*RouterOptions{nil, {ChunkSteps: 7, Threads: 96}} {
			if _, pr := gpuVsCPU(t, c, ro); pr > 1e-5 {
				t.Errorf("%s (%+v): GPU differs from the CPU kernel method by %.3g of peak", c.Name, ro, pr)
			}
		}
	}
}

func TestGPUXX9(t *testing.T) {
	dir, err := gputest.XX9Dir()
	if err != nil {
		t.Skip(err)
	}
	c, qout, err := gputest.XX9(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, pr := gpuVsCPU(t, c, &RouterOptions{ChunkSteps: 5})
	rapid := 0.0
	for i, id := range got.IDs {
		peak := 1e-30
		for _, v := range qout[id] {
			peak = max(peak, math.Abs(v))
		}
		for q, v := range qout[id] {
			rapid = max(rapid, math.Abs(float64(got.At(0, i, q))-v)/peak)
		}
	}
	t.Logf("rapid_xx9: GPU vs CPU %.2g, vs RAPID's Qout %.2g of peak", pr, rapid)
	if pr > 1e-5 || rapid > 1e-5 {
		t.Errorf("rapid_xx9: GPU vs CPU %.3g, vs RAPID %.3g (tolerance 1e-5)", pr, rapid)
	}
}

func TestGPUOutOfMemoryMessage(t *testing.T) {
	c := gputest.RandomCases(500, 1, 50, 3)[0]
	r, err := NewRouter(context.Background(), testDev, c.Net, c.Opts, &RouterOptions{MemoryBudget: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Route(context.Background(), c.Runoff)
	if err == nil || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("route with a 1000-byte budget: %v, want an out-of-memory error", err)
	}
	t.Log(err)
}

// TestGPUSpectralBuildMatchesCPU builds FFT-path kernels on the device
// (pair enumeration, prefix sums, folded taps) and compares the taps and
// the routed discharge with the CPU build.
func TestGPUSpectralBuildMatchesCPU(t *testing.T) {
	ctx := context.Background()
	for _, c := range gputest.SpectralCases(emuReaches(), 2, 200, 41) {
		t.Run(c.Name, func(t *testing.T) {
			r, err := NewRouter(ctx, testDev, c.Net, c.Opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if !r.BuiltOnDevice() {
				t.Fatal("the kernel was not built on the device")
			}
			want, err := diffroute.NewKernelRouter(ctx, c.Net, c.Opts)
			if err != nil {
				t.Fatal(err)
			}
			gv, wv := r.CPU().BlockSparse().Vals, want.BlockSparse().Vals
			worst, peak := 0.0, 0.0
			for i := range wv {
				worst = max(worst, math.Abs(float64(gv[i]-wv[i])))
				peak = max(peak, math.Abs(float64(wv[i])))
			}
			got, err := r.Route(ctx, c.Runoff)
			if err != nil {
				t.Fatal(err)
			}
			q, err := want.Route(ctx, c.Runoff)
			if err != nil {
				t.Fatal(err)
			}
			pr, er, err := gputest.RelErr(got, q)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d pairs built in %v: taps differ by %.3g (peak %.3g); discharge %.2g of peak, %.2g elementwise",
				r.CPU().Stats().Pairs, r.CPU().Stats().BuildTime, worst, peak, pr, er)
			if worst > 1e-6*peak || pr > 1e-4 {
				t.Errorf("device build: taps %.3g, discharge %.3g of peak (tolerances 1e-6 of peak, 1e-4)", worst, pr)
			}
		})
	}
	c := gputest.SpectralCases(100, 1, 10, 5)[0]
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, &RouterOptions{CPUBuild: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.BuiltOnDevice() {
		t.Error("CPUBuild: the kernel was built on the device")
	}
}

// BenchmarkGPUSpectralBuild builds a Hayami kernel on the device (the
// benchmark network, f = 24, 16 taps) and reports pairs per second, the
// CPU build's figure being in BENCHMARKS.md.
func BenchmarkGPUSpectralBuild(b *testing.B) {
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(*benchN, 1)
	o := diffroute.Options{IRF: "hayami", Params: gputest.RandomParams(gputest.NewRand(3), "hayami", net.Len()),
		SubSteps: 24, MaxDelay: 16, Method: diffroute.Kernel}
	var pairs int64
	for range b.N {
		r, err := NewRouter(ctx, testDev, net, o, nil)
		if err != nil {
			b.Fatal(err)
		}
		if !r.BuiltOnDevice() {
			b.Fatal("not built on the device")
		}
		pairs = r.CPU().Stats().Pairs
		r.Close()
	}
	b.ReportMetric(float64(pairs)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpairs/s")
}

// TestGPUCopiesOverlapKernels routes a network in many time chunks and
// checks, from the CUDA events, that host↔device copies of one slot ran
// while the other slot's convolution did: the point of the two streams.
func TestGPUCopiesOverlapKernels(t *testing.T) {
	if testDev.Info().Emulated {
		t.Skip("the emulated device runs its streams in call order (emu_async_test.go checks the pipeline's overlap)")
	}
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(20000, 1)
	c := gputest.RandomCases(10, 1, 1, 1)[0]
	o := c.Opts
	o.Params = gputest.RandomParams(gputest.NewRand(11), "muskingum", net.Len())
	o.MaxDelay, o.SubSteps = 32, 4
	r, err := NewRouter(ctx, testDev, net, o, &RouterOptions{ChunkSteps: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	x := diffroute.SyntheticRunoff(net, 1, 4096, 5)
	if _, err := r.Route(ctx, x); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	t.Logf("%d chunks of %d steps: %s; whole Route %.3g ms", st.Chunks, st.ChunkSteps, st.Timing, st.TotalSeconds*1e3)
	if st.Chunks < 8 || st.ConvSeconds <= 0 || st.CopySeconds <= 0 {
		t.Fatalf("stats %+v: want ≥ 8 chunks with timed copies and convolutions", st)
	}
	if st.OverlapSeconds <= 0 {
		t.Errorf("no copy ran during a kernel over %d chunks: the two streams do not overlap (%s)", st.Chunks, st.Timing)
	}
	if st.BusySeconds > st.SpanSeconds*(1+1e-9) || st.OverlapSeconds > st.CopySeconds {
		t.Errorf("inconsistent timing %+v", st.Timing)
	}
}

func BenchmarkGPUConv(b *testing.B) {
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(*benchN, 1)
	c := gputest.RandomCases(10, 1, 1, 1)[0] // parameters drawn below
	rng := gputest.NewRand(7)
	o := c.Opts
	o.Params = gputest.RandomParams(rng, "muskingum", net.Len())
	o.MaxDelay, o.SubSteps = *benchTaps, *benchF
	r, err := NewRouter(ctx, testDev, net, o, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	x := diffroute.SyntheticRunoff(net, *benchB, *benchT, 3)
	ks := r.CPU().Stats()
	b.Logf("%s", ks)
	info := testDev.Info()
	b.ResetTimer()
	var conv, total float64
	var st RouteStats
	for range b.N {
		if _, err := r.Route(ctx, x); err != nil {
			b.Fatal(err)
		}
		st = r.Stats()
		conv += st.ConvSeconds
		total += st.TotalSeconds
	}
	b.StopTimer()
	st.ConvSeconds = conv / float64(b.N)
	ach, att, frac := st.Roofline(info)
	b.ReportMetric(ach/1e9, "GFLOP/s")
	b.ReportMetric(frac, "roofline")
	b.ReportMetric(float64(ks.Pairs)*float64(*benchB)*float64(*benchT)/st.ConvSeconds/1e9, "Gpair-steps/s")
	b.Logf("last Route: %s", st.Timing)
	b.Logf("%s\n%d reaches, %d pairs, %d taps, batch %d × %d steps: %d chunks of %d steps; convolution %.3g ms (%.1f GFLOP/s of %.1f attainable: %.1f%% of roofline; AI %.2f FLOP/B), whole Route %.3g ms",
		info, net.Len(), ks.Pairs, ks.Taps, *benchB, *benchT, st.Chunks, st.ChunkSteps, st.ConvSeconds*1e3,
		ach/1e9, att/1e9, 100*frac, 2*float64(st.FMAs)/float64(st.Bytes), total/float64(b.N)*1e3)
}
