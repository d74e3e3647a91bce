package viz

import (
	"strings"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

func TestDisplayClustersAndPlan(t *testing.T) {
	net := diffroute.SyntheticNetwork(3000, 4)
	cl, err := diffroute.Schedule(net, 4000, 500)
	if err != nil {
		t.Fatal(err)
	}
	stats := ClusterStats(cl, 32)
	total := 0
	for _, s := range stats {
		total += s.Reaches
	}
	if len(stats) != cl.Len() || total != net.Len() {
		t.Fatalf("%d stats covering %d reaches, want %d covering %d", len(stats), total, cl.Len(), net.Len())
	}
	h := HTML(cl)
	if !strings.Contains(h, "clusters") || strings.Count(h, "echarts.init") != 1 {
		t.Errorf("clusters HTML lacks its summary or chart")
	}
	p, err := diffroute.Plan(net, 1000, 1, 64<<20, diffroute.Options{Params: diffroute.Constant(net.Len(), map[string]float64{"k": 0.5, "x": 0.2}), SubSteps: 24})
	if err != nil {
		t.Fatal(err)
	}
	strategies := PlanStrategies(p)
	chosen := 0
	for k, s := range strategies {
		if s.Total() != p.Strategies[k].Peak && s.Total() < p.Strategies[k].Live {
			t.Errorf("strategy %s totals %d, plan says peak %d", s.Name, s.Total(), p.Strategies[k].Peak)
		}
		if s.Chosen {
			chosen++
		}
	}
	if chosen != 1 {
		t.Errorf("%d strategies marked chosen", chosen)
	}
	if h := HTML(p); !strings.Contains(h, "Chosen") || strings.Count(h, "echarts.init") != 1 {
		t.Errorf("plan HTML lacks its explanation or chart")
	}
}
