package diffroute_test

import (
	"context"
	"fmt"
	"math"

	"github.com/diffroute-go/route/diffroute"
)

// Cut a network into clusters, then route them one at a time with the
// iterator API: each cluster's runoff is produced only when the router needs
// it and each cluster's discharge is handed over as soon as it is computed.
func ExampleStagedRouter_RouteClusters() {
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(2000, 1)
	opts := diffroute.Options{
		Params:   diffroute.Constant(net.Len(), map[string]float64{"k": 0.3, "x": 0.2}),
		SubSteps: 4,
	}
	cl, err := diffroute.Schedule(net, 2000, 400)
	if err != nil {
		panic(err)
	}
	fmt.Println(cl.Len() > 1, len(cl.Transfers) > 0, len(cl.Oversize))

	runoff := diffroute.SyntheticRunoff(net, 1, 48, 1) // or read per cluster from files
	sr, err := diffroute.NewStagedRouter(opts)
	if err != nil {
		panic(err)
	}
	routed := 0
	for d, err := range sr.RouteClusters(ctx, diffroute.ClusterRunoffs(runoff, cl, 0, runoff.T), cl) {
		if err != nil {
			panic(err)
		}
		routed += len(d.Reaches) // d.Discharge holds (batch, cluster reaches, time), labelled by reach id
	}
	fmt.Println(routed == net.Len())
	// Output:
	// true true 0
	// true
}

// The kernel method's gradient staged over clusters: each cluster's kernel
// is built, differentiated and dropped in turn, and the transfers'
// adjoints go upstream. Where the max delay covers the series, staging does
// not change the kernel run, so the staged gradient is the whole one.
func ExampleStagedRouter_RouteGrad() {
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(600, 2)
	opts := diffroute.Options{
		Method:   diffroute.Kernel,
		Params:   diffroute.Constant(net.Len(), map[string]float64{"k": 0.3, "x": 0.2}),
		SubSteps: 4,
		MaxDelay: 24,
	}
	runoff := diffroute.SyntheticRunoff(net, 1, 24, 2)
	// L = ½ Σ y² over every reach and step
	half := func(y, gy *diffroute.DataTensor) (float64, error) {
		s := 0.0
		for k, v := range y.Data {
			s += 0.5 * float64(v) * float64(v)
			gy.Data[k] = v
		}
		return s, nil
	}
	cl, err := diffroute.Schedule(net, 400, 0)
	if err != nil {
		panic(err)
	}
	sr, err := diffroute.NewStagedRouter(opts)
	if err != nil {
		panic(err)
	}
	_, _, staged, err := sr.RouteGrad(ctx, runoff, cl, half)
	if err != nil {
		panic(err)
	}
	_, _, whole, err := diffroute.Gradient(ctx, net, opts, runoff, half)
	if err != nil {
		panic(err)
	}
	worst, peak := 0.0, 0.0
	for i, v := range whole.Params["k"] {
		worst = max(worst, math.Abs(staged.Params["k"][i]-v))
		peak = max(peak, math.Abs(v))
	}
	fmt.Println(cl.Len() > 1, len(cl.Transfers) > 0)
	fmt.Println("staged dL/dk equals the whole kernel gradient to 1e-5:", worst <= 1e-5*peak)
	// Output:
	// true true
	// staged dL/dk equals the whole kernel gradient to 1e-5: true
}
