package calibrate

import (
	"context"
	"fmt"

	"github.com/diffroute-go/route/diffroute"
)

// StagedGradient returns a Gradient that runs the core's reverse mode
// cluster by cluster (diffroute.StagedGrad over cl, cut from the basin's
// network): the forward pass visits the clusters from headwaters to
// outlets keeping only the transfers between them, the backward pass
// visits them in reverse handing each transfer's adjoint upstream. Only one
// cluster's routing state is in memory at a time, besides the runoff and
// the transfers, so a whole basin that does not fit a memory budget is
// still calibrated with its exact gradient: every reach's parameters,
// upstream of a gauge's cluster or not, feel that gauge. The discharge it
// returns holds the gauges' rows only.
func StagedGradient(cl *diffroute.Clusters) Gradient {
	return func(ctx context.Context, b *Basin, p diffroute.Params, runoff *diffroute.DataTensor, in diffroute.FineFlows, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, diffroute.Params, error) {
		if in != nil {
			return nil, 0, nil, fmt.Errorf("calibrate: staged gradients take no upstream inflow")
		}
		if cl.Net != b.Net {
			return nil, 0, nil, fmt.Errorf("calibrate: the clusters were cut from another network")
		}
		if runoff.B != 1 {
			return nil, 0, nil, fmt.Errorf("calibrate: runoff has %d batch members; calibration takes one", runoff.B)
		}
		o := b.Options
		o.Params = p
		sg, err := diffroute.NewStagedGrad(cl, o)
		if err != nil {
			return nil, 0, nil, err
		}
		ids := b.Gauges.IDs
		row := make(map[int64]int, len(ids))
		for k, id := range ids {
			row[id] = k
		}
		T := runoff.T
		clusterRunoff := func(k int) (*diffroute.DataTensor, error) {
			return runoff.SelectIDs(cl.Clusters[k].Net.IDs())
		}
		runoffs := func(yield func(diffroute.ClusterRunoff, error) bool) {
			for k := range cl.Clusters {
				x, err := clusterRunoff(k)
				if !yield(diffroute.ClusterRunoff{Cluster: k, Runoff: x}, err) || err != nil {
					return
				}
			}
		}
		y := diffroute.NewDataTensor(1, ids, T)
		for d, err := range sg.Forward(ctx, runoffs) {
			if err != nil {
				return nil, 0, nil, err
			}
			for j, id := range d.Discharge.IDs {
				if r, ok := row[id]; ok {
					copy(y.Series(0, r), d.Discharge.Series(0, j))
				}
			}
		}
		gy := diffroute.NewDataTensor(1, ids, T)
		l, err := loss(y, gy)
		if err != nil {
			return nil, 0, nil, err
		}
		adjoints := func(yield func(diffroute.ClusterAdjoint, error) bool) {
			for k := cl.Len() - 1; k >= 0; k-- {
				x, err := clusterRunoff(k)
				var cgy *diffroute.DataTensor
				if err == nil {
					cgy = diffroute.NewDataTensor(1, x.IDs, T)
					for j, id := range x.IDs {
						if r, ok := row[id]; ok {
							copy(cgy.Series(0, j), gy.Series(0, r))
						}
					}
				}
				if !yield(diffroute.ClusterAdjoint{Cluster: k, Runoff: x, Gy: cgy}, err) || err != nil {
					return
				}
			}
		}
		n := b.Net.Len()
		g := diffroute.Params{}
		for cg, err := range sg.Backward(ctx, adjoints) {
			if err != nil {
				return nil, 0, nil, err
			}
			for name, v := range cg.Params {
				if g[name] == nil {
					g[name] = make([]float64, n)
				}
				for j, i := range cg.Reaches {
					g[name][i] = v[j]
				}
			}
		}
		return y, l, g, nil
	}
}

// GaugeForward is a Forward that routes only the reaches draining to the
// basin's gauges (diffroute.Select) and returns the gauges' discharge:
// validating a large basin costs the gauges' upstream area, not the basin.
func GaugeForward(ctx context.Context, b *Basin, p diffroute.Params, runoff *diffroute.DataTensor, in diffroute.FineFlows) (*diffroute.DataTensor, error) {
	if in != nil {
		return CoreForward(ctx, b, p, runoff, in)
	}
	o := b.Options
	o.Params = p
	sel, err := diffroute.Select(b.Net, o, b.Gauges.IDs)
	if err != nil {
		return nil, err
	}
	return sel.Route(ctx, runoff)
}

// Restrict returns the space over some of its reaches (network indices,
// in the order of a diffroute.Network.Subnetwork of them): a per-reach map
// gets one variable per kept reach, a group, log-linear or MLP map keeps
// its free variables, so that z of the restricted space is z of the whole.
func (s *Space) Restrict(reaches []int32) (*Space, error) {
	var m Map
	if pr, ok := s.Map.(PerReach); ok {
		m = PerReach{P: pr.P, N: len(reaches)}
	} else {
		var err error
		if m, err = restrictMap(s.Map, reaches); err != nil {
			return nil, err
		}
	}
	return NewSpace(s.Names, s.Transforms, m, len(reaches), s.Fixed.Subset(reaches))
}
