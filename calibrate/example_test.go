package calibrate_test

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/diffroute-go/route/calibrate"
	"github.com/diffroute-go/route/diffroute"
)

// A loss per gauge and its gradient with respect to the simulation;
// missing observations (NaN) count for nothing.
func ExampleLoss_Series() {
	obs := []float64{1, 2, 3, math.NaN(), 5}
	sim := []float64{1.5, 2, 2, 100, 6}
	grad := make([]float64, len(sim))
	loss, _ := calibrate.NSE.Series(sim, obs, grad)
	fmt.Printf("1 - NSE = %.4f, NSE = %.4f, KGE = %.4f\n", loss, calibrate.NSE.Score(sim, obs), calibrate.KGE.Score(sim, obs))
	fmt.Printf("gradient %.4f\n", grad)
	// Output:
	// 1 - NSE = 0.2571, NSE = 0.7429, KGE = 0.7542
	// gradient [0.1143 0.0000 -0.2286 0.0000 0.2286]
}

// A twin experiment in a few lines: generate a basin whose observations
// are the truth routed, start from a uniform prior and calibrate every
// reach with L-BFGS, validating on the last third of the series.
func ExampleRun() {
	ctx := context.Background()
	tw, err := calibrate.NewTwin(ctx, calibrate.TwinSpec{Reaches: 150, Days: 120, Gauges: 4, SubSteps: 4, Seed: 1})
	if err != nil {
		panic(err)
	}
	n := tw.Net.Len()
	space, err := calibrate.NewSpace([]string{"k", "x"},
		[]calibrate.Transform{calibrate.Sigmoid{Min: 0.05, Max: 1}, calibrate.Sigmoid{Min: 0, Max: 0.5}},
		calibrate.PerReach{P: 2, N: n}, n, nil)
	if err != nil {
		panic(err)
	}
	opts := tw.Options
	opts.Params = diffroute.Constant(n, map[string]float64{"k": 0.25, "x": 0.2}) // k in days
	res, err := calibrate.Run(ctx, calibrate.Config{
		Basin: calibrate.Basin{Net: tw.Net, Options: opts, Runoff: tw.Runoff, Gauges: tw.Gauges, Space: space},
		Loss:  calibrate.NSE, Warmup: 10, TrainUntil: 80, Optimizer: "lbfgs", Epochs: 40,
	})
	if err != nil {
		panic(err)
	}
	first, kept := res.History[0], res.History[res.Best]
	fmt.Println("validation loss fell tenfold:", kept.Valid < first.Valid/10)
	fmt.Println("every calibrated k within its bounds:", slices.Min(res.Params["k"]) >= 0.05 && slices.Max(res.Params["k"]) <= 1)
	// Output:
	// validation loss fell tenfold: true
	// every calibrated k within its bounds: true
}
