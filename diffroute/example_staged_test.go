package diffroute_test

import (
	"context"
	"fmt"

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
