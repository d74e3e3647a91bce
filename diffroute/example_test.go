package diffroute_test

import (
	"context"
	"fmt"
	"math"

	"github.com/diffroute-go/route/diffroute"
)

// Route a pulse of runoff down a chain of three reaches, each delaying its
// inflow by exactly one runoff step.
func ExampleNewRouter() {
	net, err := diffroute.NewNetwork([]int64{101, 102, 103}, []int64{102, 103, 0})
	if err != nil {
		panic(err)
	}
	runoff := diffroute.NewDataTensor(1, []int64{101, 102, 103}, 5)
	runoff.Set(0, 0, 0, 10) // 10 m³/s into the headwater during the first step

	opts := diffroute.Options{
		IRF:     "pure_lag",
		Params:  diffroute.Constant(net.Len(), map[string]float64{"delay": 1}),
		Average: diffroute.AverageEnd,
	}
	router, err := diffroute.NewRouter(context.Background(), net, opts)
	if err != nil {
		panic(err)
	}
	q, err := router.Route(context.Background(), runoff)
	if err != nil {
		panic(err)
	}
	for i, id := range q.IDs {
		fmt.Println(id, q.Series(0, i))
	}
	// Output:
	// 101 [0 10 0 0 0]
	// 102 [0 0 10 0 0]
	// 103 [0 0 0 10 0]
}

// The same network routed by the kernel method: DiffRoute's transitive
// closure holds one path kernel per (downstream, source) pair.
func ExampleNewKernelRouter() {
	net, _ := diffroute.NewNetwork([]int64{101, 102, 103}, []int64{102, 103, 0})
	opts := diffroute.Options{
		IRF:      "pure_lag",
		Params:   diffroute.Constant(net.Len(), map[string]float64{"delay": 1}),
		Average:  diffroute.AverageEnd,
		MaxDelay: 4,
	}
	kr, err := diffroute.NewKernelRouter(context.Background(), net, opts)
	if err != nil {
		panic(err)
	}
	fmt.Println(net)
	fmt.Println("pairs:", kr.Stats().Pairs)
	// Output:
	// Network: 3 reaches, 1 outlets, max depth 3, 6 closure pairs
	// pairs: 6
}

// CheckFinite finds the first missing or infinite value, by reach and step:
// routers propagate NaN (and overflow to Inf) as arithmetic does, so check
// inputs and outputs where that must be an error.
func ExampleDataTensor_CheckFinite() {
	x := diffroute.NewDataTensor(1, []int64{101, 102}, 3)
	x.Times = []string{"2000-01-01", "2000-01-02", "2000-01-03"}
	x.Set(0, 1, 2, float32(math.NaN()))
	fmt.Println(x.CheckFinite())
	// Output:
	// reach 102 at time 2000-01-03 is NaN
}
