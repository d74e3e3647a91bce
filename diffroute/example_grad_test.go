package diffroute_test

import (
	"context"
	"fmt"
	"math"

	"github.com/diffroute-go/route/diffroute"
)

// The gradient of the outlet's discharge during the first four steps of a
// storm with respect to every reach's Muskingum k: how much slower storage
// in each reach would lower the flood's rise at the outlet.
func ExampleGradient() {
	ctx := context.Background()
	net, _ := diffroute.NewNetwork([]int64{1, 2, 3, 4}, []int64{3, 3, 4, 0})
	runoff := diffroute.NewDataTensor(1, net.IDs(), 12)
	for i := 0; i < 2; i++ { // a storm on the two headwaters
		runoff.Set(0, i, 1, 50)
		runoff.Set(0, i, 2, 20)
	}
	opts := diffroute.Options{
		Params:   diffroute.Params{"k": {0.5, 0.8, 0.6, 0.4}, "x": {0.2, 0.2, 0.2, 0.2}}, // k in runoff steps
		SubSteps: 6,
	}
	outlet, _ := net.Index(4)
	sumOutlet := func(y, gy *diffroute.DataTensor) (float64, error) {
		s := 0.0
		for t, v := range y.Series(0, outlet)[:4] {
			s += float64(v)
			gy.Set(0, outlet, t, 1)
		}
		return s, nil
	}
	_, L, g, err := diffroute.Gradient(ctx, net, opts, runoff, sumOutlet)
	if err != nil {
		panic(err)
	}
	fmt.Printf("outlet discharge, steps 0-3: %.2f m³/s·steps\n", L)
	for i, id := range net.IDs() {
		fmt.Printf("reach %d: dL/dk = %6.2f\n", id, g.Params["k"][i])
	}
	// Output:
	// outlet discharge, steps 0-3: 107.59 m³/s·steps
	// reach 1: dL/dk = -19.78
	// reach 2: dL/dk = -19.63
	// reach 3: dL/dk = -47.22
	// reach 4: dL/dk = -46.53
}

// A finite-difference check anyone can run: perturb one reach's k, route
// again, and compare the change of the loss with the gradient.
func ExampleGradient_finiteDifference() {
	ctx := context.Background()
	net, _ := diffroute.NewNetwork([]int64{1, 2, 3}, []int64{3, 3, 0})
	runoff := diffroute.NewDataTensor(1, net.IDs(), 20)
	for t := 0; t < 20; t++ {
		runoff.Set(0, 0, t, float32(10+5*math.Sin(float64(t))))
		runoff.Set(0, 1, t, float32(8+3*math.Cos(float64(t))))
	}
	params := func(k1 float64) diffroute.Options {
		return diffroute.Options{Params: diffroute.Params{"k": {k1, 0.7, 0.5}, "x": {0.1, 0.3, 0.2}}, SubSteps: 4}
	}
	// L = ½ Σ y² over every reach and step
	half := func(y, gy *diffroute.DataTensor) (float64, error) {
		s := 0.0
		for k, v := range y.Data {
			s += 0.5 * float64(v) * float64(v)
			gy.Data[k] = v
		}
		return s, nil
	}
	_, _, g, _ := diffroute.Gradient(ctx, net, params(0.6), runoff, half)
	// Discharge is float32: a step of 1 % keeps its rounding out of the
	// difference.
	h := 0.006
	_, lp, _, _ := diffroute.Gradient(ctx, net, params(0.6+h), runoff, half)
	_, lm, _, _ := diffroute.Gradient(ctx, net, params(0.6-h), runoff, half)
	fmt.Printf("adjoint %.1f, central difference %.1f\n", g.Params["k"][0], (lp-lm)/(2*h))
	// Output:
	// adjoint -295.1, central difference -295.1
}

// The continuous Nash cascade (IRF nash_gamma, the gamma unit hydrograph)
// has gradients with respect to both its storage constant tau and its
// number of reservoirs n, which may be any positive real. Here: how the
// outlet's discharge over the first three steps after a storm changes with
// each reach's n, checked against a central difference of one reach's n.
func Example_nashGammaGradient() {
	ctx := context.Background()
	net, _ := diffroute.NewNetwork([]int64{1, 2, 3}, []int64{3, 3, 0})
	runoff := diffroute.NewDataTensor(1, net.IDs(), 10)
	runoff.Set(0, 0, 0, 40) // a storm on the headwaters
	runoff.Set(0, 1, 0, 25)
	opts := func(n1 float64) diffroute.Options {
		return diffroute.Options{IRF: "nash_gamma", SubSteps: 4, MaxDelay: 10,
			Params: diffroute.Params{"tau": {0.3, 0.5, 0.2}, "n": {n1, 1.5, 2}}} // tau in runoff steps
	}
	outlet, _ := net.Index(3)
	early := func(y, gy *diffroute.DataTensor) (float64, error) {
		s := 0.0
		for t, v := range y.Series(0, outlet)[:3] {
			s += float64(v)
			gy.Set(0, outlet, t, 1)
		}
		return s, nil
	}
	_, L, g, err := diffroute.Gradient(ctx, net, opts(2.5), runoff, early)
	if err != nil {
		panic(err)
	}
	fmt.Printf("outlet discharge, steps 0-2: %.3f\n", L)
	for i, id := range net.IDs() {
		fmt.Printf("reach %d: dL/dn = %6.2f, dL/dtau = %7.2f\n", id, g.Params["n"][i], g.Params["tau"][i])
	}
	h := 0.01
	_, lp, _, _ := diffroute.Gradient(ctx, net, opts(2.5+h), runoff, early)
	_, lm, _, _ := diffroute.Gradient(ctx, net, opts(2.5-h), runoff, early)
	fmt.Printf("reach 1: central difference in n: %6.2f\n", (lp-lm)/(2*h))
	// Output:
	// outlet discharge, steps 0-2: 62.569
	// reach 1: dL/dn =  -1.30, dL/dtau =  -15.60
	// reach 2: dL/dn =  -1.84, dL/dtau =   -7.95
	// reach 3: dL/dn =  -1.27, dL/dtau =  -16.18
	// reach 1: central difference in n:  -1.30
}

// A few steps of gradient descent on every reach's k that keep the
// discharge and gradient tensors from one gradient to the next, as a
// calibration loop does: RouteGradTo writes into them instead of
// allocating new ones.
func ExampleRecursiveRouter_RouteGradTo() {
	ctx := context.Background()
	net, _ := diffroute.NewNetwork([]int64{1, 2, 3}, []int64{3, 3, 0})
	runoff := diffroute.NewDataTensor(1, net.IDs(), 24)
	for t := 0; t < 24; t++ {
		runoff.Set(0, 0, t, float32(10+8*math.Sin(float64(t)/3)))
		runoff.Set(0, 1, t, 6)
	}
	outlet, _ := net.Index(3)
	peak := func(y, gy *diffroute.DataTensor) (float64, error) { // Σ y² at the outlet: a flood's weight
		s := 0.0
		for t, v := range y.Series(0, outlet) {
			s += float64(v) * float64(v)
			gy.Set(0, outlet, t, 2*v)
		}
		return s, nil
	}
	k := []float64{0.5, 0.5, 0.5}
	y := diffroute.NewDataTensor(1, net.IDs(), 24)
	g := &diffroute.Gradients{Runoff: diffroute.NewDataTensor(1, runoff.IDs, 24)}
	for it := 0; it < 3; it++ {
		rr, err := diffroute.NewRecursiveRouter(ctx, net, diffroute.Options{Params: diffroute.Params{"k": k, "x": {0.2, 0.2, 0.2}}, SubSteps: 4})
		if err != nil {
			panic(err)
		}
		L, err := rr.RouteGradTo(ctx, y, g, runoff, peak)
		if err != nil {
			panic(err)
		}
		fmt.Printf("k = %.3f %.3f %.3f: L = %.1f\n", k[0], k[1], k[2], L)
		for i := range k {
			k[i] -= 1e-5 * g.Params["k"][i] // more storage lowers the flood
		}
	}
	// Output:
	// k = 0.500 0.500 0.500: L = 6940.0
	// k = 0.504 0.501 0.506: L = 6933.9
	// k = 0.509 0.502 0.513: L = 6927.8
}
