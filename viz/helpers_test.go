package viz

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// testNetwork is a small branching network: 1 ← 2 ← {4, 5}, 1 ← 3 ← {6, 7 ← 8}, and a second outlet 9 ← 10.
func testNetwork(t testing.TB) *diffroute.Network {
	t.Helper()
	ids := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	down := []int64{0, 1, 1, 2, 2, 3, 3, 7, -1, 9}
	net, err := diffroute.NewNetwork(ids, down)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// bigNetwork is a deterministic random tree of n reaches.
func bigNetwork(t testing.TB, n int) *diffroute.Network {
	t.Helper()
	ids := make([]int64, n)
	down := make([]int64, n)
	seed := uint64(12345)
	for i := range ids {
		ids[i] = int64(i + 1)
		if i == 0 {
			continue
		}
		seed = seed*6364136223846793005 + 1442695040888963407
		// Attach to one of the last 30 reaches: branching, moderately deep.
		back := 1 + int(seed>>33)%min(i, 30)
		down[i] = int64(i + 1 - back)
	}
	net, err := diffroute.NewNetwork(ids, down)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// testTensor is a smooth discharge-like tensor with daily date labels.
func testTensor(ids []int64, steps int, dates bool) *diffroute.DataTensor {
	x := diffroute.NewDataTensor(1, ids, steps)
	x.Units = "m3/s"
	x.Step = 24 * time.Hour
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if dates {
		for t := 0; t < steps; t++ {
			x.Times = append(x.Times, t0.AddDate(0, 0, t).Format("2006-01-02"))
		}
	}
	for i := range ids {
		for t := 0; t < steps; t++ {
			v := 10*float64(i+1) + 5*math.Sin(float64(t)/7+float64(i)) + 20*math.Exp(-math.Pow(float64(t-30-5*i)/6, 2))
			x.Set(0, i, t, float32(v))
		}
	}
	return x
}

func muskingumIRF(k, x float64, f, taps int) []float64 {
	r := 1 / float64(f)
	den := k*(1-x) + r/2
	c0, c1, c2 := (r/2-k*x)/den, (r/2+k*x)/den, (k*(1-x)-r/2)/den
	h := make([]float64, taps)
	h[0] = c0
	for j := 1; j < taps; j++ {
		h[j] = (c1 + c2*c0) * math.Pow(c2, float64(j-1))
	}
	return h
}

func samplePlan() ([]MemoryStrategy, int64) {
	return []MemoryStrategy{
		{Name: "kernel, unstaged", Parts: []MemoryPart{{"kernel", 9 << 30}, {"runoff", 2 << 30}, {"discharge", 2 << 30}}},
		{Name: "kernel, 12 clusters", Chosen: true, Parts: []MemoryPart{{"kernel", 900 << 20}, {"runoff", 600 << 20}, {"discharge", 600 << 20}, {"transfers", 300 << 20}}},
		{Name: "recursive", Parts: []MemoryPart{{"runoff", 2 << 30}, {"discharge", 2 << 30}, {"state", 10 << 20}}},
	}, 4 << 30
}

func sampleSchedule() []ClusterStat {
	var s []ClusterStat
	for c := 0; c < 12; c++ {
		s = append(s, ClusterStat{Cluster: c, Generation: c / 4, Reaches: 800 + 97*c%400, Pairs: int64(20000 + 7919*c%15000),
			Transfers: c % 3, Bytes: int64(20000+7919*c%15000) * 40 * 4})
	}
	return s
}

func allCharts(t testing.TB) []*Chart {
	net := testNetwork(t)
	q := testTensor(net.IDs(), 120, true)
	obs := q.Clone()
	for i := range obs.Data {
		obs.Data[i] *= 1.1
	}
	return []*Chart{
		Hydrograph(q, Reaches(1, 2, 9), Observed(obs), Title("Routed vs observed")),
		IRF(time.Hour, []Series{{"k=0.5 d, x=0.2", muskingumIRF(0.5, 0.2, 24, 96)}, {"k=1 d, x=0.1", muskingumIRF(1, 0.1, 24, 96)}}),
		NetworkGraph(bigNetwork(t, 600)),
		MemoryPlan(samplePlan()),
		ClusterSchedule(sampleSchedule()),
		NetworkGraph(net, Categories("cluster", []int{0, 0, 1, 0, 0, 1, 1, 1, 2, 2}), Title("Clusters")),
	}
}

var _ = fmt.Sprint
