package notebook

import (
	"slices"

	"github.com/diffroute-go/route/diffroute"
)

// LargestOutlet returns the network index of the outlet with the most
// reaches upstream.
func LargestOutlet(net *diffroute.Network) int {
	return slices.MaxFunc(net.Outlets(), func(a, b int) int { return net.Size(a) - net.Size(b) })
}

// MainStem returns gauges on the main stem of the largest outlet: the
// outlet's id, then the id of every every-th reach walking upstream (always
// into the largest tributary), up to hops reaches.
func MainStem(net *diffroute.Network, hops, every int) []int64 {
	v := LargestOutlet(net)
	ids := []int64{net.ID(v)}
	for hop := 1; hop <= hops && len(net.Upstream(v)) > 0; hop++ {
		v = int(slices.MaxFunc(net.Upstream(v), func(a, b int32) int { return net.Size(int(a)) - net.Size(int(b)) }))
		if every > 0 && hop%every == 0 {
			ids = append(ids, net.ID(v))
		}
	}
	return ids
}
