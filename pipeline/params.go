package pipeline

import (
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

func fmtBytes(b int64) string { return humanize.IBytes(uint64(max(b, 0))) }

// options completes the routing options for the network and step: the
// sub-steps and the IRF parameters (RAPID's k and x for Muskingum unless
// given; Config.Params for every reach; Config.ParamsFile per reach).
func (r *run) options(rapid *data.RAPID, step time.Duration, f int) (diffroute.Options, error) {
	c := &r.cfg
	o := c.Options
	o.SubSteps = f
	name := irfName(o)
	irf, err := diffroute.LookupIRF(name)
	if err != nil {
		return o, err
	}
	net := rapid.Network
	p := diffroute.Params{}
	if name == "muskingum" && len(c.Params) == 0 && c.ParamsFile == "" && o.Params == nil && c.ParamsMap == nil {
		if p, err = rapid.Muskingum(step); err != nil {
			return o, err
		}
	}
	if c.ParamsFrom != "" {
		if err := data.ReadParamsFrom(c.ParamsFrom, name, rapid, step, p); err != nil {
			return o, err
		}
	}
	if c.ParamsMap != nil {
		mp, err := c.ParamsMap(net, step)
		if err != nil {
			return o, err
		}
		for k, v := range mp {
			p[k] = v
		}
	}
	for k, v := range o.Params { // given by a library caller, per reach
		p[k] = v
	}
	for k, v := range c.Params {
		p[k] = diffroute.Constant(net.Len(), map[string]float64{k: v})[k]
	}
	if c.ParamsFile != "" {
		if err := data.ReadParamsCSV(c.ParamsFile, net, p); err != nil {
			return o, err
		}
	}
	for k := range p {
		if !slices.Contains(irf.Params, k) {
			src := "--param " + k
			if _, flag := c.Params[k]; !flag {
				src = c.ParamsFile + " column " + k
			}
			return o, configErrorf("%s: IRF %s has no parameter %q (it takes %s)", src, name, k, strings.Join(irf.Params, ", "))
		}
	}
	var missing, give []string
	for _, k := range irf.Params {
		if _, ok := p[k]; !ok {
			if _, def := irf.Defaults[k]; !def {
				missing = append(missing, k)
				give = append(give, "--param "+k+"=VALUE")
			}
		}
	}
	if len(missing) > 0 {
		what := "parameter " + missing[0]
		if len(missing) > 1 {
			what = "parameters " + andList(missing)
		}
		return o, configErrorf("IRF %s needs %s: give %s (times in runoff steps) or --params FILE with columns rivid,%s",
			name, what, strings.Join(give, " "), strings.Join(missing, ","))
	}
	o.Params = p
	if name == "muskingum" {
		r.warnOscillating(net, p, f)
	}
	return o, nil
}

// warnOscillating reports Muskingum reaches whose C2 = (k(1−x) − Δt/2)/den
// is negative: their response alternates in sign from one sub-step to the
// next (RAPID computes the same), which a shorter sub-step avoids.
func (r *run) warnOscillating(net *diffroute.Network, p diffroute.Params, f int) {
	k, x := p["k"], p["x"]
	if len(k) != net.Len() || len(x) != net.Len() {
		return
	}
	h := 1 / float64(f)
	n, first := 0, -1
	for i := range k {
		if k[i]*(1-x[i]) < h/2 {
			if n == 0 {
				first = i
			}
			n++
		}
	}
	if n > 0 {
		r.warn("%d reaches (first: %d) have k(1-x) < substep/2, so Muskingum's C2 < 0 and their response oscillates; a shorter --substep avoids it", n, net.ID(first))
	}
}
