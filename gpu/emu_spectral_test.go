//go:build !cuda

package gpu

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
	"github.com/diffroute-go/route/gpu/kernels"
)

// emuSpectralBuild builds a spectral kernel the way the CUDA backend does,
// with the emulated kernels: prefix sums by pointer jumping, pair
// enumeration, then the taps of every pair.
func emuSpectralBuild(t *testing.T, sk *diffroute.SpectralKernel) (*diffroute.KernelRouter, []float64) {
	t.Helper()
	g := kernels.DefaultGrid
	P, _ := kernels.PrefixSums(g, sk.L, sk.DownPos, 2*sk.NF, sk.MaxDepth)
	np := sk.Pairs()
	pairD, pairS := make([]int32, np), make([]int32, np)
	kernels.PairEnum(g, pairD, pairS, sk.PairStart, sk.DownPos)
	bs := sk.Layout
	vals := make([]float32, bs.RowTiles[len(bs.RowTiles)-1]*int64(bs.B*bs.B*bs.Taps))
	sums := make([]float64, np)
	tabs := kernels.PairTables{
		Vals: vals, Sums: sums, PairD: pairD, PairS: pairS, P: P, Src: sk.Src, Boxed: sk.Boxed,
		DownPos: sk.DownPos, RowTiles: bs.RowTiles, SelfTaps: sk.SelfTaps,
		NF: sk.NF, Taps: sk.Taps, B: bs.B, Mode: sk.Mode, Normalize: sk.Normalize,
	}
	if sk.ReLU {
		kernels.PairTapsFine(g, &kernels.PairTapsFineArgs{PairTables: tabs, Trig: sk.Trig, M: sk.M, F: sk.F, Shift: sk.Shift, Sample: sk.Sample})
	} else {
		kernels.PairTaps(g, &kernels.PairTapsArgs{PairTables: tabs, Fold: sk.Fold, M: sk.M, MP: sk.FoldBins})
	}
	kr, err := sk.Finish(vals, sums)
	if err != nil {
		t.Fatal(err)
	}
	return kr, sums
}

// TestEmulatedSpectralBuildMatchesCPU builds FFT-path kernels with the
// device kernels (emulated) and compares taps, truncation record and routed
// discharge with the CPU build.
func TestEmulatedSpectralBuildMatchesCPU(t *testing.T) {
	ctx := context.Background()
	for _, c := range gputest.SpectralCases(120, 2, 60, 31) {
		t.Run(c.Name, func(t *testing.T) {
			want, err := diffroute.NewKernelRouter(ctx, c.Net, c.Opts)
			if err != nil {
				t.Fatal(err)
			}
			if want.Stats().FFTLen == 0 {
				t.Fatal("the CPU built this kernel in the time domain: not a spectral case")
			}
			sk, err := diffroute.NewSpectralKernel(ctx, c.Net, c.Opts)
			if err != nil {
				t.Fatal(err)
			}
			if sk.Pairs() != c.Net.Pairs() {
				t.Fatalf("%d pairs enumerated, the network has %d", sk.Pairs(), c.Net.Pairs())
			}
			boxed := 0
			for _, b := range sk.Boxed {
				boxed += int(b)
			}
			t.Logf("source mode %d, %d of %d sources boxed, ReLU %v", sk.Mode, boxed, c.Net.Len(), sk.ReLU)
			got, _ := emuSpectralBuild(t, sk)
			gv, wv := got.BlockSparse().Vals, want.BlockSparse().Vals
			if len(gv) != len(wv) {
				t.Fatalf("%d taps, CPU %d", len(gv), len(wv))
			}
			worst, peak := 0.0, 0.0
			for i := range gv {
				worst = max(worst, math.Abs(float64(gv[i]-wv[i])))
				peak = max(peak, math.Abs(float64(wv[i])))
			}
			gs, ws := got.Stats(), want.Stats()
			t.Logf("%d pairs: max tap difference %.3g (peak %.3g); truncated mass max %.3g vs %.3g, median %.3g vs %.3g",
				gs.Pairs, worst, peak, gs.TruncatedMassMax, ws.TruncatedMassMax, gs.TruncatedMassMedian, ws.TruncatedMassMedian)
			if worst > 1e-6*peak {
				t.Errorf("device-built taps differ from the CPU's by %.3g (peak %.3g)", worst, peak)
			}
			if math.Abs(gs.TruncatedMassMax-ws.TruncatedMassMax) > 1e-6 || gs.WorstPair != ws.WorstPair && math.Abs(gs.TruncatedMassMax-ws.TruncatedMassMax) > 1e-12 {
				t.Errorf("truncated mass %.6g at %v, CPU %.6g at %v", gs.TruncatedMassMax, gs.WorstPair, ws.TruncatedMassMax, ws.WorstPair)
			}
			qg, err := got.Route(ctx, c.Runoff)
			if err != nil {
				t.Fatal(err)
			}
			qw, err := want.Route(ctx, c.Runoff)
			if err != nil {
				t.Fatal(err)
			}
			pr, _, err := gputest.RelErr(qg, qw)
			if err != nil {
				t.Fatal(err)
			}
			if pr > 1e-5 {
				t.Errorf("discharge through the device-built kernel differs by %.3g of peak", pr)
			}
		})
	}
}

func TestSpectralKernelRefusesTimeDomain(t *testing.T) {
	ctx := context.Background()
	c := gputest.RandomCases(60, 1, 10, 3)[0] // muskingum: recursive form
	if _, err := diffroute.NewSpectralKernel(ctx, c.Net, c.Opts); !errors.Is(err, diffroute.ErrNotSpectral) {
		t.Errorf("muskingum: %v, want ErrNotSpectral", err)
	}
}

func TestPairMaxFoldMatchesKernels(t *testing.T) {
	if pairMaxFold != kernels.MaxFold {
		t.Fatalf("gpu's pairMaxFold %d, kernels.MaxFold (DR_MAX_FOLD) %d", pairMaxFold, kernels.MaxFold)
	}
}

// TestEmulatedStagedSpectralBuild routes a staged Hayami network whose
// cluster kernels the (emulated) device builds, through the emulated staged
// backend, and compares it with the CPU staged kernel method and with the
// plain (unstaged) CPU run.
func TestEmulatedStagedSpectralBuild(t *testing.T) {
	net, o, x, cl := hayamiStagedCase(t)
	builds := 0
	builder := func(ctx context.Context, n *diffroute.Network, opts diffroute.Options) (*diffroute.KernelRouter, error) {
		sk, err := diffroute.NewSpectralKernel(ctx, n, opts)
		if err != nil {
			return nil, err
		}
		builds++
		kr, _ := emuSpectralBuild(t, sk)
		return kr, nil
	}
	want := stagedBuilt(t, o, x, cl, nil, nil)
	got := stagedBuilt(t, o, x, cl, builder, emuCore(newEmuStaged(), nil, 8).factory())
	if builds != cl.Len() {
		t.Errorf("%d kernels built by the builder, %d clusters", builds, cl.Len())
	}
	whole := plainRecursive(t, net, o, x)
	pr, _, err := gputest.RelErr(got, want)
	if err != nil {
		t.Fatal(err)
	}
	pw, _, err := gputest.RelErr(got, whole)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d clusters: device-built staged vs CPU staged %.2g of peak, vs plain %.2g", cl.Len(), pr, pw)
	if pr > 1e-5 || pw > 1e-4 {
		t.Errorf("device-built staged run differs: %.3g from CPU staged, %.3g from plain", pr, pw)
	}
}
