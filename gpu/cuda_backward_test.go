//go:build cuda || cudaemu

package gpu

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// backwardVsRef runs the device's ∂L/∂runoff for a random ∂L/∂y and
// compares it with the pair loop of gputest.AdjointRef, the runoff given
// with its rows reversed (the gradient comes back in the runoff's layout).
func backwardVsRef(t *testing.T, c gputest.Case, ro *RouterOptions, seed uint64) float64 {
	t.Helper()
	ctx := context.Background()
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	x := gputest.Shuffled(c.Runoff)
	gy := gputest.RandomGy(c.Net, x.B, x.T, seed)
	got, err := r.BackwardRunoff(ctx, x, gy)
	if err != nil {
		t.Fatal(err)
	}
	if got.N != x.N || got.IDs[0] != x.IDs[0] || got.T != x.T || got.B != x.B {
		t.Fatalf("∂L/∂runoff has dims (%d, %d, %d) and first id %d, the runoff (%d, %d, %d), %d", got.B, got.N, got.T, got.IDs[0], x.B, x.N, x.T, x.IDs[0])
	}
	got, err = got.SelectIDs(c.Net.IDs())
	if err != nil {
		t.Fatal(err)
	}
	want := gputest.AdjointRef(r.CPU(), gy)
	pr, er, err := gputest.RelErr(got, want)
	if err != nil {
		t.Fatal(err)
	}
	st := r.BackwardStats()
	t.Logf("%s: %d chunks of %d steps, adjoint %.3g ms: device ∂L/∂runoff vs pair loop %.2g of peak, %.2g elementwise", c.Name, st.Chunks, st.ChunkSteps, st.ConvSeconds*1e3, pr, er)
	return pr
}

func TestGPUBackwardRunoffMatchesCPU(t *testing.T) {
	for j, c := range gputest.RandomCases(500, 2, 64, 43) {
		for _, ro := range []*RouterOptions{nil, {ChunkSteps: 7, Threads: 96}} {
			if pr := backwardVsRef(t, c, ro, uint64(j)); pr > 1e-5 {
				t.Errorf("%s (%+v): device ∂L/∂runoff differs from the pair loop by %.3g of peak", c.Name, ro, pr)
			}
		}
	}
}

func TestGPUBackwardRunoffXX9(t *testing.T) {
	dir, err := gputest.XX9Dir()
	if err != nil {
		t.Skip(err)
	}
	c, _, err := gputest.XX9(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []*RouterOptions{nil, {ChunkSteps: 5}} {
		if pr := backwardVsRef(t, c, ro, 77); pr > 1e-5 {
			t.Errorf("rapid_xx9 (%+v): device ∂L/∂runoff differs from the pair loop by %.3g of peak", ro, pr)
		}
	}
}

// TestGPUBackwardRunoffRefusesBadGy: ∂L/∂y with other dims, another row
// order or a NaN is refused with a message naming the problem.
func TestGPUBackwardRunoffRefusesBadGy(t *testing.T) {
	ctx := context.Background()
	c := gputest.RandomCases(60, 1, 12, 5)[0]
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	good := gputest.RandomGy(c.Net, 1, 12, 1)
	short := gputest.RandomGy(c.Net, 1, 11, 1)
	shuffled := gputest.Shuffled(good)
	nan := good.Clone()
	nan.Data[17] = float32(math.NaN())
	for _, tc := range []struct {
		gy   *diffroute.DataTensor
		want string
	}{{nil, "no dL/dy"}, {short, "dims"}, {shuffled, "network order"}, {nan, "NaN"}} {
		_, err := r.BackwardRunoff(ctx, c.Runoff, tc.gy)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("∂L/∂y (%s): error %v, want one mentioning %q", tc.want, err, tc.want)
			continue
		}
		t.Log(err)
	}
	if _, err := r.BackwardRunoff(ctx, c.Runoff, good); err != nil {
		t.Errorf("a good ∂L/∂y after bad ones: %v", err)
	}
}

// sse is Σ (y − obs)² with obs = 0.9·y + 1, written so that a test can
// check the whole gradient; gy = 2(y − obs).
func sse(y, gy *diffroute.DataTensor) (float64, error) {
	var L float64
	for i, v := range y.Data {
		e := 0.1*float64(v) - 1
		L += e * e
		gy.Data[i] = float32(2 * e)
	}
	return L, nil
}

// TestGPURouteGradMatchesCPU: the device's RouteGrad equals the CPU kernel
// method's (discharge and runoff gradient to 1e-5 of peak, the CPU's
// parameter and initial-discharge gradients as they are) for an SSE loss.
func TestGPURouteGradMatchesCPU(t *testing.T) {
	ctx := context.Background()
	for _, c := range gputest.RandomCases(400, 2, 60, 47) {
		t.Run(c.Name, func(t *testing.T) {
			r, err := NewRouter(ctx, testDev, c.Net, c.Opts, &RouterOptions{ChunkSteps: 11})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			x := gputest.Shuffled(c.Runoff)
			y, L, g, err := r.RouteGrad(ctx, x, sse)
			if err != nil {
				t.Fatal(err)
			}
			wy, wL, wg, err := r.CPU().RouteGrad(ctx, x, sse)
			if err != nil {
				t.Fatal(err)
			}
			py, _, err := gputest.RelErr(y, wy)
			if err != nil {
				t.Fatal(err)
			}
			px, ex, err := gputest.RelErr(g.Runoff, wg.Runoff)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("loss %.9g (CPU %.9g); discharge %.2g, ∂L/∂runoff %.2g of peak (%.2g elementwise); %d parameter gradients",
				L, wL, py, px, ex, len(g.Params))
			if py > 1e-5 || px > 1e-5 || math.Abs(L-wL) > 1e-5*math.Abs(wL) {
				t.Errorf("device vs CPU: discharge %.3g, ∂L/∂runoff %.3g of peak, loss %.9g vs %.9g", py, px, L, wL)
			}
			if g.Runoff.Units != wg.Runoff.Units || g.Runoff.IDs[0] != wg.Runoff.IDs[0] {
				t.Errorf("∂L/∂runoff labelled %q, first id %d; the CPU's %q, %d", g.Runoff.Units, g.Runoff.IDs[0], wg.Runoff.Units, wg.Runoff.IDs[0])
			}
			if len(g.Params) != len(wg.Params) || len(g.InitialQ) != len(wg.InitialQ) {
				t.Fatalf("%d parameter gradients and %d initial-discharge ones, the CPU %d and %d", len(g.Params), len(g.InitialQ), len(wg.Params), len(wg.InitialQ))
			}
			// The device's ∂L/∂y comes from its own discharge: parameter
			// gradients agree to the discharge's float32 rounding.
			for name, w := range wg.Params {
				if pr := relMax(g.Params[name], w); pr > 1e-5 {
					t.Errorf("∂L/∂%s: %.3g of the largest", name, pr)
				}
			}
			if pr := relMax(g.InitialQ, wg.InitialQ); pr > 1e-5 {
				t.Errorf("∂L/∂q0: %.3g of the largest", pr)
			}
		})
	}
}

// relMax is max |a − b| / max |b|.
func relMax(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst, peak := 0.0, 1e-300
	for i := range b {
		worst = max(worst, math.Abs(a[i]-b[i]))
		peak = max(peak, math.Abs(b[i]))
	}
	return worst / peak
}

// BenchmarkGPUBackward times the device's ∂L/∂runoff (BackwardRunoff)
// against the forward convolution (Route) on the BenchmarkGPUConv problem
// (flags -gpu.n, -gpu.taps, -gpu.T, -gpu.B, -gpu.f), both in the same run.
func BenchmarkGPUBackward(b *testing.B) {
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(*benchN, 1)
	c := gputest.RandomCases(10, 1, 1, 1)[0]
	o := c.Opts
	o.Params = gputest.RandomParams(gputest.NewRand(7), "muskingum", net.Len())
	o.MaxDelay, o.SubSteps = *benchTaps, *benchF
	r, err := NewRouter(ctx, testDev, net, o, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	x := diffroute.SyntheticRunoff(net, *benchB, *benchT, 3)
	gy := gputest.RandomGy(net, *benchB, *benchT, 5)
	ks := r.CPU().Stats()
	info := testDev.Info()
	b.ResetTimer()
	var fwd, back, fwdTotal, backTotal float64
	var st RouteStats
	for range b.N {
		if _, err := r.Route(ctx, x); err != nil {
			b.Fatal(err)
		}
		fs := r.Stats()
		if _, err := r.BackwardRunoff(ctx, x, gy); err != nil {
			b.Fatal(err)
		}
		st = r.BackwardStats()
		fwd += fs.ConvSeconds
		fwdTotal += fs.TotalSeconds
		back += st.ConvSeconds
		backTotal += st.TotalSeconds
	}
	b.StopTimer()
	n := float64(b.N)
	st.ConvSeconds = back / n
	ach, att, frac := st.Roofline(info)
	b.ReportMetric(ach/1e9, "GFLOP/s")
	b.ReportMetric(frac, "roofline")
	b.ReportMetric(back/fwd, "adjoint/forward")
	b.ReportMetric(float64(ks.Pairs)*float64(*benchB)*float64(*benchT)/st.ConvSeconds/1e9, "Gpair-steps/s")
	b.Logf("%s\n%d reaches, %d pairs, %d taps, batch %d × %d steps: %d chunks of %d steps; adjoint kernel %.3g ms (forward %.3g ms: %.2f×; %.1f GFLOP/s of %.1f attainable, %.1f%% of roofline), whole BackwardRunoff %.3g ms (Route %.3g ms)",
		info, net.Len(), ks.Pairs, ks.Taps, *benchB, *benchT, st.Chunks, st.ChunkSteps, back/n*1e3, fwd/n*1e3, back/fwd,
		ach/1e9, att/1e9, 100*frac, backTotal/n*1e3, fwdTotal/n*1e3)
}

// TestGPUBackwardRunoffLayout: a runoff row the network does not route gets
// a zero gradient, the gradient carries the runoff's labels, and a series
// shorter than the kernel (lookahead past its end) still matches the pair
// loop.
func TestGPUBackwardRunoffLayout(t *testing.T) {
	ctx := context.Background()
	c := gputest.RandomCases(80, 2, 3, 23)[1] // 13 taps, 3 steps
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ids := append([]int64{-42}, c.Runoff.IDs...)
	x := diffroute.NewDataTensor(c.Runoff.B, ids, c.Runoff.T)
	for b := 0; b < x.B; b++ {
		x.Series(b, 0)[1] = 5
		for i := range c.Runoff.IDs {
			copy(x.Series(b, i+1), c.Runoff.Series(b, i))
		}
	}
	x.Units, x.Times = "m3/s", []string{"t0", "t1", "t2"}
	gy := gputest.RandomGy(c.Net, x.B, x.T, 3)
	got, err := r.BackwardRunoff(ctx, x, gy)
	if err != nil {
		t.Fatal(err)
	}
	if got.Units != "1/(m3/s)" || len(got.Times) != 3 || got.IDs[0] != -42 {
		t.Errorf("gradient labelled %q, times %v, first id %d", got.Units, got.Times, got.IDs[0])
	}
	for b := 0; b < x.B; b++ {
		for _, v := range got.Series(b, 0) {
			if v != 0 {
				t.Fatalf("the unrouted runoff row has gradient %v", got.Series(b, 0))
			}
		}
	}
	routed, err := got.SelectIDs(c.Net.IDs())
	if err != nil {
		t.Fatal(err)
	}
	pr, _, err := gputest.RelErr(routed, gputest.AdjointRef(r.CPU(), gy))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d steps, %d taps: %.2g of peak", x.T, r.CPU().Stats().Taps, pr)
	if pr > 1e-5 {
		t.Errorf("%d steps with %d taps: %.3g of peak from the pair loop", x.T, r.CPU().Stats().Taps, pr)
	}
}

// TestGPUKernelTapGradMatchesCPU: the device's ∂L/∂ taps (dr_tapgrad over
// time chunks) equal the CPU's KernelTapGrad to 1e-5 of peak, and the
// parameter gradients of kernels built from spectra (convolution IRFs,
// ReLU, renormalisation, excluded self pairs), chained on the host from
// them, equal the CPU kernel method's Backward.
func TestGPUKernelTapGradMatchesCPU(t *testing.T) {
	ctx := context.Background()
	cases := append(gputest.SpectralCases(150, 2, 40, 61), gputest.RandomCases(150, 2, 40, 67)[4]) // the last: Muskingum under Compat
	for j, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			r, err := NewRouter(ctx, testDev, c.Net, c.Opts, &RouterOptions{MemoryBudget: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			x := gputest.Shuffled(c.Runoff)
			gy := gputest.RandomGy(c.Net, x.B, x.T, uint64(70+j))
			got, err := r.KernelTapGrad(ctx, x, gy)
			if err != nil {
				t.Fatal(err)
			}
			want, err := r.CPU().KernelTapGrad(ctx, x, gy)
			if err != nil {
				t.Fatal(err)
			}
			pk := relMax(got, want)
			if pk > 1e-5 {
				t.Errorf("device vs CPU: ∂L/∂ taps %.3g of peak (tolerance 1e-5)", pk)
			}
			if c.Opts.IRF == "pure_lag" { // no parameter gradient
				return
			}
			g, err := r.Backward(ctx, x, gy)
			if err != nil {
				t.Fatal(err)
			}
			wg, err := r.CPU().Backward(ctx, x, gy)
			if err != nil {
				t.Fatal(err)
			}
			if !r.CPU().ParamGradsFromBuild() || len(g.Params) == 0 || len(g.Params) != len(wg.Params) {
				t.Fatalf("%d parameter gradients, the CPU %d (from the build: %v)", len(g.Params), len(wg.Params), r.CPU().ParamGradsFromBuild())
			}
			worst := 0.0
			for name, w := range wg.Params {
				worst = max(worst, relMax(g.Params[name], w))
			}
			t.Logf("∂L/∂ taps %.2g of peak; parameter gradients %.2g of the largest", pk, worst)
			if worst > 1e-5 {
				t.Errorf("device vs CPU: parameter gradients %.3g of the largest (tolerance 1e-5)", worst)
			}
		})
	}
}
