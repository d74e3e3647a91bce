package calibrate

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

// Sequential calibration, cluster by cluster with transfers, fits a twin
// experiment: routing the whole basin unstaged with the parameters it
// returns matches the observations at every gauge, in the validation
// period too, far better than the prior.
func TestSequentialTwin(t *testing.T) {
	tw := newTwin(t, 80, 200, 2, 11)
	// Gauges: every reach draining at least 4 reaches, observed without
	// gaps.
	y, err := CoreForward(context.Background(), &Basin{Net: tw.net, Options: tw.opts}, tw.truth, tw.runoff, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gauges{}
	for i := range tw.net.Len() {
		if tw.net.Size(i) >= 4 {
			g.IDs = append(g.IDs, tw.net.ID(i))
			obs := make([]float64, y.T)
			for k, v := range y.Series(0, i) {
				obs[k] = float64(v)
			}
			g.Obs = append(g.Obs, obs)
		}
	}
	tw.gauges = g
	cl, err := diffroute.Schedule(tw.net, 60, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Len() < 3 || len(cl.Transfers) == 0 {
		t.Fatalf("want several clusters with transfers, got %v", cl)
	}
	c := tw.config(t, PerReach{P: 2, N: tw.net.Len()}, tw.prior(2))
	c.Gradient = nil // the core's reverse mode (RouteGradFine with transfers)
	c.Optimizer, c.Epochs, c.Warmup, c.TrainUntil = "lbfgs", 80, 10, 150
	var calibrated int
	p, res, err := Sequential(context.Background(), c, cl, func(r ClusterResult) {
		if r.Result != nil {
			calibrated++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != cl.Len() || calibrated < 2 {
		t.Fatalf("%d cluster results, %d calibrated", len(res), calibrated)
	}
	score := func(p diffroute.Params) []float64 {
		y, err := CoreForward(context.Background(), &Basin{Net: tw.net, Options: tw.opts}, p, tw.runoff, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := g.Scores(NSE, y, Window{Warmup: 150}, y.T)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before, after := score(tw.prior(2)), score(p)
	t.Logf("validation NSE: prior min %.4f, calibrated min %.4f (%d gauges, %d clusters)", slices.Min(before), slices.Min(after), len(g.IDs), cl.Len())
	if !(slices.Min(after) > 0.995) || !(slices.Min(before) < 0.99) {
		t.Errorf("validation NSE: prior %v, calibrated %v", before, after)
	}
	// Reaches the calibration never sees (no gauge downstream in their
	// cluster) keep the prior exactly.
	for i := range tw.net.Len() {
		if math.IsNaN(p["k"][i]) {
			t.Fatalf("reach %d: k is NaN", tw.net.ID(i))
		}
	}
}
