package calibrate

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

// Upstream area is the sum of local areas over the upstream closure, and
// the law stays inside its clamps and follows its formula.
func TestSyntheticAttributesAndLaw(t *testing.T) {
	net := diffroute.SyntheticNetwork(300, 4)
	a := SyntheticAttributes(net, 4)
	local := make([]float64, net.Len())
	for i := range local {
		local[i] = a.Values[i][1]
		for _, u := range net.Upstream(i) {
			local[i] -= a.Values[u][1]
		}
		if !(local[i] > 0) {
			t.Fatalf("reach %d: local area %v", net.ID(i), local[i])
		}
	}
	for i := range net.Len() {
		closure, err := net.UpstreamClosure([]int64{net.ID(i)})
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, j := range closure {
			sum += local[j]
		}
		if math.Abs(sum-a.Values[i][1]) > 1e-9*sum {
			t.Fatalf("reach %d: area %v, closure sum %v", net.ID(i), a.Values[i][1], sum)
		}
	}
	k, x := MuskingumLaw(a, 0, 1)
	for i, row := range a.Values {
		c := 0.8 * math.Pow(row[1]/1000, 0.15) * math.Pow(row[2]/0.001, 0.2)
		want := min(max(row[0]/c, 3600), 72000)
		if math.Abs(k[i]-want) > 1e-9*want || x[i] < 0.05 || x[i] > 0.4 {
			t.Fatalf("reach %d: k %v (want %v), x %v", i, k[i], want, x[i])
		}
	}
	kn, _ := MuskingumLaw(a, 0.1, 1)
	if slices.Equal(k, kn) {
		t.Error("noise changed nothing")
	}
	if sk := slices.Clone(k); slices.Min(sk) == slices.Max(sk) {
		t.Error("k is constant")
	}
}

// The twin's observations are the truth routed (no noise here): the
// selection routing used for gauges agrees with routing the whole basin.
func TestNewTwin(t *testing.T) {
	tw, err := NewTwin(context.Background(), TwinSpec{Reaches: 200, Days: 30, Gauges: 5, SubSteps: 4, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	o := tw.Options
	o.Params = tw.Truth
	rt, err := diffroute.NewRouter(context.Background(), tw.Net, o)
	if err != nil {
		t.Fatal(err)
	}
	y, err := rt.Route(context.Background(), tw.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	if len(tw.Gauges.IDs) != 5 {
		t.Fatalf("%d gauges", len(tw.Gauges.IDs))
	}
	for g, id := range tw.Gauges.IDs {
		i, _ := tw.Net.Index(id)
		for k, v := range y.Series(0, i) {
			if d := math.Abs(float64(v) - tw.Gauges.Obs[g][k]); d > 1e-5*math.Abs(float64(v))+1e-6 {
				t.Fatalf("gauge %d step %d: observed %v, routed %v", id, k, tw.Gauges.Obs[g][k], v)
			}
		}
	}
}
