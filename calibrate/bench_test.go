package calibrate

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

// benchCase is BENCHMARKS.md's speed case: 20,000 reaches (or
// DIFFROUTE_BENCH_REACHES), 365 daily steps routed hourly, 20 gauges.
func benchCase(b *testing.B) (*diffroute.Network, diffroute.Options, *diffroute.DataTensor, *Gauges) {
	n := 20000
	if v := os.Getenv("DIFFROUTE_BENCH_REACHES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	net := diffroute.SyntheticNetwork(n, 1)
	runoff := diffroute.SyntheticRunoff(net, 1, 365, 1)
	p := diffroute.Constant(n, map[string]float64{"k": 0.25, "x": 0.2})
	opts := diffroute.Options{SubSteps: 24, Params: p}
	g := &Gauges{IDs: ChooseGauges(net, 20, 1)}
	for range g.IDs {
		obs := make([]float64, 365)
		for t := range obs {
			obs[t] = 10 + float64(t%17)
		}
		g.Obs = append(g.Obs, obs)
	}
	return net, opts, runoff, g
}

// BenchmarkForward20k routes the speed case once (recursive method).
//
//	go test ./calibrate -run X -bench 'Forward20k|AdamIteration20k' -benchtime 3x
func BenchmarkForward20k(b *testing.B) {
	net, opts, runoff, _ := benchCase(b)
	rt, err := diffroute.NewRouter(context.Background(), net, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := rt.Route(context.Background(), runoff); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdamIteration20k is one calibration iteration: forward and
// backward through the routing, the loss over 20 gauges, the per-reach
// space's gradient and an Adam step.
func BenchmarkAdamIteration20k(b *testing.B) {
	net, opts, runoff, g := benchCase(b)
	sp, err := NewSpace([]string{"k", "x"}, []Transform{Sigmoid{1800.0 / 86400, 1}, Sigmoid{0, 0.5}}, PerReach{P: 2, N: net.Len()}, net.Len(), nil)
	if err != nil {
		b.Fatal(err)
	}
	c := Config{Basin: Basin{Net: net, Options: opts, Runoff: runoff, Gauges: g, Space: sp}, Warmup: 30}
	if err := c.defaults(); err != nil {
		b.Fatal(err)
	}
	z, err := sp.Init(opts.Params, net)
	if err != nil {
		b.Fatal(err)
	}
	opt := &Adam{}
	b.ResetTimer()
	for range b.N {
		_, gz, err := c.lossGrad(context.Background(), z, 0, runoff.T)
		if err != nil {
			b.Fatal(err)
		}
		opt.Step(z, gz)
	}
}
