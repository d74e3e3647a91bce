//go:build cudaemu

package gpu

import (
	"context"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/cu"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// TestDeviceBuildFallsBackWhenOutOfMemory gives the emulated device less
// memory than building a Hayami kernel on it needs, but enough to route:
// the router builds on the CPU instead and still matches the CPU method.
func TestDeviceBuildFallsBackWhenOutOfMemory(t *testing.T) {
	ctx := context.Background()
	c := gputest.SpectralCases(1500, 1, 60, 9)[0]
	ks, err := diffroute.EstimateKernelBytes(c.Net, c.Opts)
	if err != nil {
		t.Fatal(err)
	}
	build, err := BuildBytes(c.Net, c.Opts)
	if err != nil {
		t.Fatal(err)
	}
	if build <= ks.BlockBytes {
		t.Fatalf("device build %d bytes, kernel %d: no room for the test", build, ks.BlockBytes)
	}
	capacity := (ks.BlockBytes + build) / 2
	defer cu.SetCapacity(cu.SetCapacity(capacity))
	free0, _, _ := cu.MemInfo()
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		r.Close()
		if free, _, _ := cu.MemInfo(); free != free0 {
			t.Errorf("%d bytes of device memory left allocated after Close", free0-free)
		}
	}()
	if r.BuiltOnDevice() {
		t.Fatal("built on a device without the memory for it")
	}
	got, err := r.Route(ctx, c.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.CPU().Route(ctx, c.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	if pr, _, err := gputest.RelErr(got, want); err != nil || pr > 1e-5 {
		t.Errorf("after the CPU build: %.3g of peak (%v)", pr, err)
	}
	t.Logf("device of %d bytes (device build %d): kernel built on the CPU, routed in %d chunks of %d steps", capacity, build, r.Stats().Chunks, r.Stats().ChunkSteps)
}

// TestDeviceMemoryIsFreed runs routers and a staged backend, device builds
// included, and checks that closing them returns every byte of the
// emulated device's memory.
func TestDeviceMemoryIsFreed(t *testing.T) {
	ctx := context.Background()
	free0, _, _ := cu.MemInfo()
	for _, c := range append(gputest.SpectralCases(300, 1, 40, 3)[:3], gputest.RandomCases(300, 1, 40, 3)[:2]...) {
		r, err := NewRouter(ctx, testDev, c.Net, c.Opts, &RouterOptions{ChunkSteps: 7})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Route(ctx, c.Runoff); err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	_, o, x, cl := hayamiStagedCase(t)
	b, err := NewStagedBackend(testDev, &RouterOptions{ChunkSteps: 9}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := diffroute.NewStagedRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	sr.TimeChunk, sr.KernelBuilder, sr.ClusterRouter = 15, b.KernelBuilder(), b.Factory()
	if _, err := sr.Route(ctx, x, cl); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if free, _, _ := cu.MemInfo(); free != free0 {
		t.Errorf("%d bytes of device memory left allocated", free0-free)
	}
}

// TestDeviceBuildMemoryPrediction: BuildBytes bounds
// what a device build allocates at its peak, within 10 % for folded builds.
func TestDeviceBuildMemoryPrediction(t *testing.T) {
	ctx := context.Background()
	for _, c := range gputest.SpectralCases(1200, 1, 20, 13) {
		build, err := BuildBytes(c.Net, c.Opts)
		if err != nil {
			t.Fatal(err)
		}
		used0 := func() int64 { free, total, _ := cu.MemInfo(); return total - free }()
		cu.ResetPeak()
		r, err := NewRouter(ctx, testDev, c.Net, c.Opts, &RouterOptions{MemoryBudget: 1})
		if err != nil {
			t.Fatal(err)
		}
		peak := cu.Peak() - used0 // the build; routing has not started
		built := r.BuiltOnDevice()
		r.Close()
		if !built {
			t.Fatalf("%s: not built on the device", c.Name)
		}
		ratio := float64(peak) / float64(build)
		t.Logf("%s: device build peak %d bytes, predicted %d (%.2f)", c.Name, peak, build, ratio)
		// Under ReLU the scratch is sized for a large GPU's grid; the
		// emulated device's is smaller, so only the bound is checked there.
		if ratio > 1 || ratio < 0.9 && !c.Opts.ReLU && c.Opts.Compat == "" {
			t.Errorf("%s: device build used %d bytes at its peak, the planner predicts %d", c.Name, peak, build)
		}
	}
}
