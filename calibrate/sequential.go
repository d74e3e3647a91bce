package calibrate

import (
	"context"
	"fmt"

	"github.com/diffroute-go/route/diffroute"
)

// ClusterResult is one cluster's outcome in a sequential calibration.
type ClusterResult struct {
	Cluster int
	Reaches int
	Gauges  int
	Result  *Result // nil for clusters without gauges (their prior is kept)
}

// Sequential calibrates a basin cluster by cluster, in the clusters'
// routing order (headwaters first; DiffHydro's train_sequentially): each
// cluster is calibrated per reach against the gauges inside it, with the
// fine-grid inflow its upstream clusters send under their calibrated
// parameters, then routed forward to pass its own outflow downstream. Only
// one cluster's routing state and the pending transfers are in memory at a
// time, besides the runoff. Clusters without gauges keep the prior.
//
// c is the whole basin's configuration: its Space must be per reach
// (PerReach over the whole network); a per-reach space over each cluster is
// made from its names and transforms. onCluster, when set, is called as
// each cluster finishes.
func Sequential(ctx context.Context, c Config, cl *diffroute.Clusters, onCluster func(ClusterResult)) (diffroute.Params, []ClusterResult, error) {
	if _, ok := c.Space.Map.(PerReach); !ok {
		return nil, nil, fmt.Errorf("calibrate: sequential calibration needs a per-reach map, not %s", c.Space.Map.Kind())
	}
	if c.Valid != nil {
		return nil, nil, fmt.Errorf("calibrate: sequential calibration validates in time, not on another basin")
	}
	if cl.Net != c.Net {
		return nil, nil, fmt.Errorf("calibrate: the clusters were cut from another network")
	}
	if err := c.Gauges.Check(c.Net, c.Runoff.T); err != nil {
		return nil, nil, err
	}
	if c.Options.InitialQ != nil {
		return nil, nil, fmt.Errorf("calibrate: sequential calibration starts from zero discharge; drop the initial discharge")
	}
	if c.Runoff.B != 1 {
		return nil, nil, fmt.Errorf("calibrate: runoff has %d batch members; calibration takes one", c.Runoff.B)
	}
	f := subSteps(c.Options)
	nf := c.Runoff.T * f
	out := diffroute.Params{}
	for name, v := range c.Options.Params {
		out[name] = append([]float64(nil), v...)
	}
	bufs := make([][]float32, len(cl.Transfers))
	gaugeAt := map[int64]bool{}
	for _, id := range c.Gauges.IDs {
		gaugeAt[id] = true
	}
	var results []ClusterResult
	for k := range cl.Clusters {
		cc := &cl.Clusters[k]
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		// Inflows from upstream clusters, summed per receiving reach.
		var in diffroute.FineFlows
		for _, slot := range cc.In {
			buf := bufs[slot]
			if buf == nil {
				return nil, nil, fmt.Errorf("calibrate: transfer slot %d into cluster %d was not routed", slot, k)
			}
			bufs[slot] = nil
			if in == nil {
				in = diffroute.FineFlows{}
			}
			v := cl.Transfers[slot].DstLocal
			if have, ok := in[v]; ok {
				for j, q := range buf {
					have[j] += q
				}
			} else {
				in[v] = buf
			}
		}
		opts := c.Options
		opts.Params = out.Subset(cc.Reaches)
		x, err := c.Runoff.SelectIDs(cc.Net.IDs())
		if err != nil {
			return nil, nil, err
		}
		g := c.Gauges.Subset(func(id int64) bool {
			i, _ := c.Net.Index(id)
			return int(cl.ClusterOf[i]) == k
		})
		cr := ClusterResult{Cluster: k, Reaches: len(cc.Reaches), Gauges: len(g.IDs)}
		if len(g.IDs) > 0 {
			res, reaches, err := calibrateCluster(ctx, c, cc, opts, x, in, g)
			if err != nil {
				return nil, nil, fmt.Errorf("calibrate: cluster %d: %w", k, err)
			}
			cr.Result = res
			for _, name := range c.Space.Names {
				for j, i := range reaches {
					out[name][i] = res.Params[name][j]
				}
			}
			opts.Params = out.Subset(cc.Reaches)
		}
		// Route the cluster forward with its final parameters to pass its
		// outflow downstream.
		if len(cc.Out) > 0 {
			rr, err := diffroute.NewRecursiveRouter(context.Background(), cc.Net, opts)
			if err != nil {
				return nil, nil, err
			}
			fo := diffroute.FineFlows{}
			for _, slot := range cc.Out {
				b := make([]float32, nf)
				bufs[slot] = b
				fo[cl.Transfers[slot].SrcLocal] = b
			}
			if _, err := rr.RouteFine(ctx, x, in, fo); err != nil {
				return nil, nil, fmt.Errorf("calibrate: cluster %d: %w", k, err)
			}
		}
		results = append(results, cr)
		if onCluster != nil {
			onCluster(cr)
		}
	}
	return out, results, nil
}

// calibrateCluster calibrates the reaches of one cluster that drain to its
// gauges (the others have no gradient) with the cluster's inflows, and
// returns the result and the full-network index of each calibrated reach.
func calibrateCluster(ctx context.Context, c Config, cc *diffroute.Cluster, opts diffroute.Options, x *diffroute.DataTensor, in diffroute.FineFlows, g *Gauges) (*Result, []int32, error) {
	closure, err := cc.Net.UpstreamClosure(g.IDs)
	if err != nil {
		return nil, nil, err
	}
	net, reaches := cc.Net, cc.Reaches
	if len(closure) < cc.Net.Len() {
		if net, err = cc.Net.Subnetwork(closure); err != nil {
			return nil, nil, err
		}
		local := make(map[int32]int32, len(closure))
		reaches = make([]int32, len(closure))
		for j, v := range closure {
			local[v] = int32(j)
			reaches[j] = cc.Reaches[v]
		}
		var sub diffroute.FineFlows
		for v, buf := range in {
			if lv, ok := local[v]; ok {
				if sub == nil {
					sub = diffroute.FineFlows{}
				}
				sub[lv] = buf
			}
		}
		in = sub
		if x, err = x.SelectIDs(net.IDs()); err != nil {
			return nil, nil, err
		}
		opts.Params = opts.Params.Subset(closure)
	}
	sp, err := NewSpace(c.Space.Names, c.Space.Transforms, PerReach{P: len(c.Space.Names), N: len(reaches)}, len(reaches), nil)
	if err != nil {
		return nil, nil, err
	}
	sub := c
	sub.Basin = Basin{Net: net, Options: opts, Runoff: x, Gauges: g, Space: sp, Inflow: in}
	res, err := Run(ctx, sub)
	return res, reaches, err
}
