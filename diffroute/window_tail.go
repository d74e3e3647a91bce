package diffroute

import (
	"fmt"
	"math"
)

// WindowTail returns what RecursiveRouter.WindowTail returns for a router
// of net and opts, without preparing one (nor its taps): staged and
// time-chunked runs build their routers cluster by cluster, where a
// reach's cut response would go unreported.
func WindowTail(net *Network, opts Options) (ratio float64, reach int64, err error) {
	if net == nil {
		return 0, 0, fmt.Errorf("diffroute: no network")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return 0, 0, err
	}
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return 0, 0, err
	}
	tab, err := newIRFTable(irf, o.Params, net, o.SubSteps, o.MaxDelay*o.SubSteps)
	if err != nil {
		return 0, 0, err
	}
	worst := -1
	for i := range net.Len() {
		if irf.Sections != nil {
			s, err := irf.Sections(nil, tab.params[i], tab.r)
			if err != nil {
				return 0, 0, reachIRFError(net.ID(i), irf.Name, err)
			}
			if s != nil {
				continue // routed by sections: no window
			}
		}
		ri, err := tab.reach(i, net, false)
		if err != nil {
			return 0, 0, err
		}
		peak := 0.0
		for _, c := range ri.taps {
			peak = max(peak, math.Abs(c))
		}
		if l := len(ri.taps); l > 0 && peak > 0 {
			if tr := math.Abs(ri.taps[l-1]) / peak; tr > ratio {
				ratio, worst = tr, i
			}
		}
	}
	if worst < 0 {
		return 0, 0, nil
	}
	return ratio, net.ID(worst), nil
}
