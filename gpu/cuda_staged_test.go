//go:build cuda || cudaemu

package gpu

import (
	"context"
	"math"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// Device tests of staged routing on the GPU (ClusterRouter), resident
// pixels, and buffers kept across Route calls; the same cases run in the
// emulator without the tag (emu_staged_test.go).

func TestGPUStagedMatchesCPU(t *testing.T) {
	net, o, x, cl := stagedCase(t, 2500, 31, 3, 24, 70, 2)
	t.Logf("%d reaches, %d clusters, %d transfers", net.Len(), cl.Len(), len(cl.Transfers))
	plain := plainRecursive(t, net, o, x)
	for _, tc := range []struct {
		time, dev int
		keep      bool
	}{{0, 0, false}, {0, 9, true}, {17, 5, false}, {30, 64, true}} {
		want := stagedRoute(t, o, x, cl, tc.time, tc.keep, nil)
		b, err := NewStagedBackend(testDev, &RouterOptions{ChunkSteps: tc.dev, Threads: 128}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := stagedRoute(t, o, x, cl, tc.time, tc.keep, b.Factory())
		pr, er, err := gputest.RelErr(got, want)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("time chunks %d, device chunks %d, keep %v: GPU staged vs CPU staged %.2g of peak, %.2g elementwise; %s",
			tc.time, tc.dev, tc.keep, pr, er, b.Timing())
		if pr > 1e-5 {
			t.Errorf("time chunks %d, device chunks %d: GPU staged differs from the CPU staged kernel method by %.3g of peak", tc.time, tc.dev, pr)
		}
		if pp, _, err := gputest.RelErr(got, plain); err != nil || pp > 1e-4 {
			t.Errorf("time chunks %d, device chunks %d: GPU staged differs from the plain run by %.3g of peak (%v)", tc.time, tc.dev, pp, err)
		}
		if b.conv.slots != nil && b.conv.slots.grows > 2 {
			t.Errorf("slot buffers reallocated %d times: not kept", b.conv.slots.grows)
		}
		b.Close()
	}
}

func TestGPUInterpolationMatchesCPU(t *testing.T) {
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(3000, 3)
	w, src, err := pixelCase(net, 500, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	in, err := diffroute.NewInterpolator(w, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	dp, err := NewDevicePixels(testDev, w, src, PixelOptions{First: 10, End: 190})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	got, err := dp.Interpolate(ctx, net.IDs(), 20, 180)
	if err != nil {
		t.Fatal(err)
	}
	want, err := in.Interpolate(ctx, net.IDs(), 30, 190)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range net.IDs() {
		g, wv := got.Series(0, i), want.Series(0, i)
		peak := 1e-30
		for _, v := range wv {
			peak = max(peak, math.Abs(float64(v)))
		}
		for k := range wv {
			worst = max(worst, math.Abs(float64(g[k])-float64(wv[k]))/peak)
		}
	}
	t.Logf("%d rivers × 160 steps from %s of resident pixels: GPU vs diffroute.Interpolator %.2g of peak", net.Len(), mib(dp.Bytes()), worst)
	if worst > 1e-6 {
		t.Errorf("GPU interpolation differs by %.3g of peak", worst)
	}
}

func TestGPUStagedFromResidentPixels(t *testing.T) {
	o, cl, w, src, x := pixelStagedCase(t)
	dp, err := NewDevicePixels(testDev, w, src, PixelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	for _, tc := range []struct {
		time, dev int
		keep      bool
	}{{0, 0, false}, {13, 6, true}} {
		want := stagedRoute(t, o, x, cl, tc.time, tc.keep, nil)
		b, err := NewStagedBackend(testDev, &RouterOptions{ChunkSteps: tc.dev}, dp)
		if err != nil {
			t.Fatal(err)
		}
		got := stagedRouteSources(t, o, x, cl, tc.time, tc.keep, b.Factory())
		pr, er, err := gputest.RelErr(got, want)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("time chunks %d, device chunks %d: GPU staged from resident pixels vs CPU %.2g of peak, %.2g elementwise", tc.time, tc.dev, pr, er)
		if pr > 1e-5 {
			t.Errorf("time chunks %d: differs by %.3g of peak", tc.time, pr)
		}
		b.Close()
	}
}

func TestGPURouterKeepsBuffers(t *testing.T) {
	c := gputest.RandomCases(2000, 2, 200, 5)[0]
	ctx := context.Background()
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, &RouterOptions{ChunkSteps: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want, err := r.CPU().Route(ctx, c.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, err := r.Route(ctx, c.Runoff)
		if err != nil {
			t.Fatal(err)
		}
		if pr, _, _ := gputest.RelErr(got, want); pr > 1e-5 {
			t.Errorf("call %d differs by %.3g", i, pr)
		}
	}
	if g := r.conv.slots.grows; g != 2 {
		t.Errorf("slot buffers allocated %d times over 3 calls, want 2 (once per slot)", g)
	}
}

// TestGPUStagedSpectralBuild routes a staged Hayami network whose cluster
// kernels the device builds (StagedBackend.KernelBuilder), and compares it
// with the CPU staged kernel method and the plain recursive method.
func TestGPUStagedSpectralBuild(t *testing.T) {
	net, o, x, cl := hayamiStagedCase(t)
	b, err := NewStagedBackend(testDev, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := stagedBuilt(t, o, x, cl, b.KernelBuilder(), b.Factory())
	want := stagedBuilt(t, o, x, cl, nil, nil)
	whole := plainRecursive(t, net, o, x)
	pr, _, err := gputest.RelErr(got, want)
	if err != nil {
		t.Fatal(err)
	}
	pw, _, err := gputest.RelErr(got, whole)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clusters: GPU-built staged vs CPU staged %.2g of peak, vs plain recursive %.2g; %s", cl.Len(), pr, pw, b.Timing())
	if pr > 1e-5 || pw > 1e-4 {
		t.Errorf("GPU-built staged run differs: %.3g from CPU staged, %.3g from plain", pr, pw)
	}
}
