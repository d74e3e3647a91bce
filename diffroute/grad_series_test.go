package diffroute

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

// The whole-series adjoint of convolution reaches gives the block engine's
// discharge and gradients to float64 rounding: on a network of parallel
// subtrees and a trunk, batches, initial discharge, fine inflow into some
// reaches and ∂L/∂(fine outflow) of the outlets (a staged cluster's).
func TestGradSeriesEqualsBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 5))
	for _, c := range []gradCase{
		{irf: "hayami", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 4, B: 2, T: 13, q0: true, maxDelay: 5},
		{irf: "nash_gamma", lat: LateralLTI, avg: AverageEnd, smp: SampleLast, f: 3, B: 1, T: 11},
	} {
		fx := newGradFixture(t, rng, c, 1500) // > 1024 reaches: parts and a trunk
		lat := fx.lat(t)
		n, TF := fx.net.Len(), c.T*c.f
		in := map[int][]float64{}
		for _, i := range []int{3, n / 2, n - 1} {
			in[i] = make([]float64, c.B*TF)
			for k := range in[i] {
				in[i][k] = rng.Float64()
			}
		}
		var outlets []int
		for i := range n {
			if fx.net.Down(i) < 0 {
				outlets = append(outlets, i)
			}
		}
		gout := make([]float64, c.B*TF)
		for k := range gout {
			gout[k] = rng.NormFloat64()
		}
		run := func(series bool) *gradRun {
			defer func(v bool) { gradSeriesOff = v }(gradSeriesOff)
			gradSeriesOff = !series
			e, err := newGradEngine(fx.net, fx.opts, true)
			if err != nil {
				t.Fatal(err)
			}
			g := e.newRun(lat, c.B, c.T)
			if e.seriesUsable(c.B, TF) != series {
				t.Fatalf("%v: whole-series adjoint runs: %v", c, !series)
			}
			if series && len(e.trunk) == 0 {
				t.Fatalf("%v: no trunk", c)
			}
			for i, v := range in {
				g.in[i] = v
			}
			for _, i := range outlets {
				g.out[i] = make([]float64, c.B*TF)
				g.gout[i] = gout
			}
			err = g.run(context.Background(), func() error {
				g.gy = make([]float64, len(g.y))
				for k, v := range g.y {
					g.gy[k] = fx.w[k] + fx.c[k]*v
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		want, got := run(false), run(true)
		worst := 0.0
		cmp := func(name string, a, b []float64) {
			w0 := 0.0
			for k := range a {
				if e := relErr(b[k], a[k]); e > w0 {
					w0 = e
					if e > 1e-9 {
						t.Logf("%s k %d: %v vs %v", name, k, a[k], b[k])
					}
				}
			}
			worst = max(worst, w0)
		}
		cmp("y", want.y, got.y)
		cmp("dx", want.dx, got.dx)
		cmp("dq0", want.dq0, got.dq0)
		for j := range want.dth {
			cmp("dth", want.dth[j], got.dth[j])
		}
		for i := range in {
			cmp("din", want.din[i], got.din[i])
		}
		for _, i := range outlets {
			cmp("out", want.out[i], got.out[i])
		}
		if worst > 1e-9 {
			t.Errorf("%v: the whole-series adjoint differs from the block engine by %.2g", c, worst)
		}
		t.Logf("%v: worst relative difference %.2g", c, worst)
	}
}

// The adjoint built from the taps the router evaluated has the taps it
// would evaluate itself, reach by reach.
func TestGradEngineSharesRouterTaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 44))
	for _, irf := range []string{"hayami", "nash_gamma", "pure_lag"} {
		c := gradCase{irf: irf, lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 3, B: 1, T: 5, maxDelay: 4}
		fx := newGradFixture(t, rng, c, 200)
		rr, err := NewRecursiveRouter(context.Background(), fx.net, fx.opts)
		if err != nil {
			t.Fatal(err)
		}
		shared := rr.irf.Value()
		if shared == nil {
			t.Fatalf("%s: the router kept no taps", irf)
		}
		got, err := newGradEngineTaps(fx.net, fx.opts, false, shared)
		if err != nil {
			t.Fatal(err)
		}
		want, err := newGradEngine(fx.net, fx.opts, false)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want.taps {
			if !slices.Equal(got.taps[i], want.taps[i]) || !slices.Equal(got.rev[i], want.rev[i]) {
				t.Fatalf("%s: reach %d: shared taps differ", irf, fx.net.ID(i))
			}
		}
	}
}
