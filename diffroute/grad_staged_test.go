package diffroute

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// Staged recursive gradients (cluster by cluster, transfers' adjoints
// handed upstream) equal the plain gradients.
func TestStagedGradientEqualsPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 2))
	ctx := context.Background()
	for _, c := range []gradCase{
		{irf: "muskingum", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 3, B: 2, T: 12, q0: true},
		{irf: "muskingum", lat: LateralLTI, avg: AverageEnd, smp: SampleLast, f: 2, B: 1, T: 10, ckpt: 3},
		{irf: "hayami", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 2, B: 1, T: 9, q0: true, maxDelay: 4},
		{irf: "nash_cascade", lat: LateralLTI, avg: AverageStart, smp: SampleAvg, f: 2, B: 2, T: 8, q0: true},
	} {
		fx := newGradFixture(t, rng, c, 400)
		cl, err := Schedule(fx.net, 600, 90)
		if err != nil {
			t.Fatal(err)
		}
		if cl.Len() < 3 || len(cl.Transfers) == 0 {
			t.Fatalf("want several clusters with transfers, got %d clusters, %d transfers", cl.Len(), len(cl.Transfers))
		}
		loss := func(y, gy *DataTensor) (float64, error) {
			s := 0.0
			for k, v := range y.Data {
				s += fx.w[k]*float64(v) + 0.5*fx.c[k]*float64(v)*float64(v)
				gy.Data[k] = float32(fx.w[k] + fx.c[k]*float64(v))
			}
			return s, nil
		}
		rr, err := NewRecursiveRouter(context.Background(), fx.net, fx.opts)
		if err != nil {
			t.Fatal(err)
		}
		yp, Lp, gp, err := rr.RouteGrad(ctx, fx.x, loss)
		if err != nil {
			t.Fatal(err)
		}
		// (the kernel method's staged gradient differentiates its own
		// staged run: grad_staged_kernel_test.go)
		for _, m := range []Method{Recursive} {
			o := fx.opts
			o.Method = m
			sr, err := NewStagedRouter(o)
			if err != nil {
				t.Fatal(err)
			}
			ys, Ls, gs, err := sr.RouteGrad(ctx, fx.x, cl, loss)
			if err != nil {
				t.Fatal(err)
			}
			if d := stagedRelDiff(t, ys, yp); d > 1e-6 || relErr(Ls, Lp) > 1e-6 {
				t.Errorf("%v %s: staged discharge differs by %.2g, loss %v vs %v", c, m, d, Ls, Lp)
			}
			worst := vecRelDiff(f64(gs.Runoff.Data), f64(gp.Runoff.Data))
			for name, v := range gp.Params {
				worst = max(worst, vecRelDiff(gs.Params[name], v))
			}
			worst = max(worst, vecRelDiff(gs.InitialQ, gp.InitialQ))
			if worst > 1e-6 {
				t.Errorf("%v %s: staged gradients differ from plain by %.2g (rel.)", c, m, worst)
			}
			t.Logf("%v %s: %d clusters, worst rel. difference %.2g", c, m, cl.Len(), worst)
		}
	}
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for k, x := range v {
		out[k] = float64(x)
	}
	return out
}

// vecRelDiff is max |a − b| / max |b|: entries that are zero up to rounding
// (runoff that cannot reach a sampled output, say) do not count as large
// relative errors.
func vecRelDiff(a, b []float64) float64 {
	d, m := 0.0, 0.0
	for k := range b {
		d = max(d, math.Abs(a[k]-b[k]))
		m = max(m, math.Abs(b[k]))
	}
	if d == 0 {
		return 0
	}
	return d / m
}
