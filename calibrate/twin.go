package calibrate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// TwinSpec describes a twin experiment: a generated basin whose true
// Muskingum parameters follow MuskingumLaw, and "observed" discharge that
// is the truth routed and perturbed.
type TwinSpec struct {
	Reaches, Days, Gauges int
	// SubSteps per daily runoff step for routing (24: hourly).
	SubSteps int
	// LawNoise scatters the true k and x around the law (log-normal
	// deviation); ObsNoise is the relative Gaussian noise on observations.
	LawNoise, ObsNoise float64
	Seed               uint64
}

// Twin is a generated basin with known parameters and observed discharge.
type Twin struct {
	Net     *diffroute.Network
	Attrs   *Attributes
	Truth   diffroute.Params // k in runoff steps (days), x
	Runoff  *diffroute.DataTensor
	Gauges  *Gauges
	Options diffroute.Options // routing options of the truth, without Params
}

// NewTwin generates a twin experiment: diffroute.SyntheticNetwork and
// SyntheticRunoff (daily, from 2000-01-01), SyntheticAttributes, the truth
// from MuskingumLaw, gauges from ChooseGauges, observations routed with the
// truth (RAPID's conventions) times 1 + ObsNoise·N(0, 1), floored at zero.
func NewTwin(ctx context.Context, s TwinSpec) (*Twin, error) {
	if s.Reaches < 1 || s.Days < 2 || s.Gauges < 1 || s.Gauges > s.Reaches {
		return nil, fmt.Errorf("calibrate: twin needs reaches ≥ 1, days ≥ 2 and 1 to %d gauges", s.Reaches)
	}
	net := diffroute.SyntheticNetwork(s.Reaches, s.Seed)
	attrs := SyntheticAttributes(net, s.Seed)
	kSec, x := MuskingumLaw(attrs, s.LawNoise, s.Seed)
	k := make([]float64, len(kSec))
	for i, v := range kSec {
		k[i] = v / 86400
	}
	runoff := diffroute.SyntheticRunoff(net, 1, s.Days, s.Seed)
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	runoff.Times = make([]string, s.Days)
	for t := range runoff.Times {
		runoff.Times[t] = start.AddDate(0, 0, t).Format(time.RFC3339)
	}
	runoff.Step = 24 * time.Hour
	runoff.Units = "m3/s"
	tw := &Twin{Net: net, Attrs: attrs, Truth: diffroute.Params{"k": k, "x": x}, Runoff: runoff, Options: diffroute.Options{SubSteps: max(s.SubSteps, 1)}}
	ids := ChooseGauges(net, s.Gauges, s.Seed)
	o := tw.Options
	o.Params = tw.Truth
	sel, err := diffroute.Select(net, o, ids)
	if err != nil {
		return nil, err
	}
	q, err := sel.Route(ctx, runoff)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x0b5))
	tw.Gauges = &Gauges{IDs: ids, Obs: make([][]float64, len(ids))}
	for g := range ids {
		obs := make([]float64, q.T)
		for t, v := range q.Series(0, g) {
			obs[t] = max(0, float64(v)*(1+s.ObsNoise*rng.NormFloat64()))
		}
		tw.Gauges.Obs[g] = obs
	}
	return tw, nil
}

// ChooseGauges picks n reaches spread over a basin's larger rivers: at
// random among the reaches that drain at least 1 % of the largest river
// (and at least 3 reaches), then the largest others when too few; sorted
// by network index.
func ChooseGauges(net *diffroute.Network, n int, seed uint64) []int64 {
	top := 0
	for i := range net.Len() {
		top = max(top, net.Size(i))
	}
	var cand, rest []int
	for i := range net.Len() {
		if net.Size(i) >= max(3, top/100) {
			cand = append(cand, i)
		} else {
			rest = append(rest, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x9a))
	rng.Shuffle(len(cand), func(a, b int) { cand[a], cand[b] = cand[b], cand[a] })
	sort.SliceStable(rest, func(a, b int) bool { return net.Size(rest[a]) > net.Size(rest[b]) })
	pick := append(cand, rest...)[:min(n, net.Len())]
	sort.Ints(pick)
	ids := make([]int64, len(pick))
	for k, i := range pick {
		ids[k] = net.ID(i)
	}
	return ids
}
