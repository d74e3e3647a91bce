package viz

import (
	"fmt"
	"html"

	"github.com/diffroute-go/route/diffroute"
)

// PlanStrategies turns a memory plan's predictions into chart input.
func PlanStrategies(p *diffroute.MemoryPlan) []MemoryStrategy {
	out := make([]MemoryStrategy, len(p.Strategies))
	for k, s := range p.Strategies {
		parts := make([]MemoryPart, len(s.Parts))
		for j, part := range s.Parts {
			parts[j] = MemoryPart{Name: part.Name, Bytes: part.Bytes}
		}
		// The runtime's share makes Peak larger than the listed parts.
		var listed int64
		for _, part := range parts {
			listed += part.Bytes
		}
		if extra := s.Peak - listed; extra > 0 {
			parts = append(parts, MemoryPart{Name: "Go runtime and garbage", Bytes: extra})
		}
		out[k] = MemoryStrategy{Name: s.Name, Parts: parts, Chosen: k == p.Chosen}
	}
	return out
}

// ClusterStats summarises each cluster of a schedule for ClusterSchedule.
// Bytes is the cluster's kernel at maxDelay taps of float32 (COO), the
// memory the kernel method needs for it.
func ClusterStats(cl *diffroute.Clusters, maxDelay int) []ClusterStat {
	out := make([]ClusterStat, len(cl.Clusters))
	for k, c := range cl.Clusters {
		out[k] = ClusterStat{Cluster: c.Index, Generation: c.Generation, Reaches: len(c.Reaches),
			Pairs: c.Pairs, Transfers: len(c.In), Bytes: c.Pairs * int64(maxDelay) * 4}
	}
	return out
}

// renderPlan shows the planner's explanation and its chart.
func renderPlan(p *diffroute.MemoryPlan) (string, bool) {
	c := MemoryPlan(PlanStrategies(p), p.Budget, Title("Predicted peak memory per strategy"))
	return "<pre>" + html.EscapeString(p.String()) + "</pre>\n" + c.body(), c.err == nil
}

// renderClusters shows a schedule's summary and its per-cluster chart.
func renderClusters(cl *diffroute.Clusters) (string, bool) {
	c := ClusterSchedule(ClusterStats(cl, 64), Title(fmt.Sprintf("%d clusters, %d transfers", cl.Len(), len(cl.Transfers))),
		Subtitle("kernel memory at 64 taps"))
	return "<pre>" + html.EscapeString(cl.String()) + "</pre>\n" + c.body(), c.err == nil
}
