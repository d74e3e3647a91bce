package viz

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// MemoryPart is one component of a strategy's peak memory (kernel, runoff
// chunk, output chunk, transfer buffers, build batch, …).
type MemoryPart struct {
	Name  string
	Bytes int64
}

// MemoryStrategy is a routing strategy's predicted peak memory, by part.
type MemoryStrategy struct {
	Name   string
	Parts  []MemoryPart
	Chosen bool // the plan's choice, marked in the chart
}

// Total returns the sum of the parts.
func (s MemoryStrategy) Total() int64 {
	var t int64
	for _, p := range s.Parts {
		t += p.Bytes
	}
	return t
}

// byteUnit picks a binary unit for values up to max.
func byteUnit(max float64) (string, float64) {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	scale := 1.0
	k := 0
	for k < len(units)-1 && max/scale >= 1024 {
		scale *= 1024
		k++
	}
	return units[k], scale
}

// MemoryPlan draws the predicted peak memory of each strategy as a
// horizontal stacked bar (one colour per part name) with the budget as a
// vertical line; strategies over the budget are easy to spot, the chosen one
// is marked with ✔. A budget ≤ 0 draws no line.
//
// Options: Title, Subtitle, Size.
func MemoryPlan(strategies []MemoryStrategy, budget int64, o ...Option) *Chart {
	cfg := newConfig(o)
	if len(strategies) == 0 {
		return errChart("memory plan", fmt.Errorf("no strategies"))
	}
	peak := float64(max(budget, 1))
	var partNames []string
	seen := map[string]bool{}
	for _, s := range strategies {
		for _, p := range s.Parts {
			if p.Bytes < 0 {
				return errChart("memory plan", fmt.Errorf("strategy %q: part %q has negative size", s.Name, p.Name))
			}
			if !seen[p.Name] {
				seen[p.Name] = true
				partNames = append(partNames, p.Name)
			}
		}
		peak = math.Max(peak, float64(s.Total()))
	}
	unit, scale := byteUnit(peak)
	labels := make([]string, len(strategies))
	for i, s := range strategies {
		labels[i] = s.Name
		if s.Chosen {
			labels[i] = "✔ " + s.Name
		}
	}
	id := newID()
	if cfg.title == "" {
		cfg.title = "Memory plan"
	}
	if cfg.subtitle == "" && budget > 0 {
		cfg.subtitle = "budget " + humanize.IBytes(uint64(budget))
	}
	if cfg.height == "420px" {
		cfg.height = fmt.Sprintf("%dpx", 170+40*len(strategies))
	}
	bar := charts.NewBar()
	bar.SetGlobalOptions(append(base(cfg, id),
		charts.WithXAxisOpts(opts.XAxis{Type: "value", Name: unit, AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}}),
		charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: labels, AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom", Type: "scroll"}),
		charts.WithGridOpts(opts.Grid{Left: "20", Right: "60", Top: "60", Bottom: "50", ContainLabel: opts.Bool(true)}),
	)...)
	bar.XYReversal()
	bar.SetXAxis(labels)
	for k, name := range partNames {
		data := make([]opts.BarData, len(strategies))
		for i, s := range strategies {
			var v int64
			for _, p := range s.Parts {
				if p.Name == name {
					v += p.Bytes
				}
			}
			data[i] = opts.BarData{Value: roundTo(float64(v)/scale, 4)}
		}
		sopts := []charts.SeriesOpts{charts.WithBarChartOpts(opts.BarChart{Stack: "total"}),
			charts.WithItemStyleOpts(opts.ItemStyle{Color: colorOf(k)})}
		if k == 0 && budget > 0 {
			b := roundTo(float64(budget)/scale, 4)
			sopts = append(sopts,
				charts.WithMarkLineNameXAxisItemOpts(opts.MarkLineNameXAxisItem{Name: "budget", XAxis: b}),
				charts.WithMarkLineStyleOpts(opts.MarkLineStyle{Symbol: []string{"none", "none"},
					LineStyle: &opts.LineStyle{Color: "#d00", Width: 2, Type: "dashed"},
					Label:     &opts.Label{Show: opts.Bool(true), Formatter: "budget"}}))
		}
		bar.AddSeries(name, data, sopts...)
	}
	summary := fmt.Sprintf("MemoryPlan: %d strategies, budget %s", len(strategies), humanize.IBytes(uint64(max(budget, 0))))
	return newChart(bar, cfg, id, summary, nil)
}

func roundTo(v float64, digits int) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, float64(digits)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

// ClusterStat describes one cluster of a staged schedule, in run order.
type ClusterStat struct {
	Cluster    int   // cluster id
	Generation int   // dependency generation (0 = no upstream cluster)
	Reaches    int   // reaches in the cluster
	Pairs      int64 // kernel closure pairs
	Transfers  int   // cut edges flowing into the cluster
	Bytes      int64 // predicted kernel (or peak) memory
}

// ClusterSchedule charts a staged schedule, one group per cluster in run
// order (labelled "id·g<generation>"): reaches, closure pairs and incoming
// transfers as bars on a logarithmic count axis, memory as a line on a
// second axis.
//
// Options: Title, Subtitle, Size.
func ClusterSchedule(stats []ClusterStat, o ...Option) *Chart {
	cfg := newConfig(o)
	if len(stats) == 0 {
		return errChart("cluster schedule", fmt.Errorf("no clusters"))
	}
	peak := 1.0
	var reaches, pairs int64
	for _, s := range stats {
		peak = math.Max(peak, float64(s.Bytes))
		reaches += int64(s.Reaches)
		pairs += s.Pairs
	}
	unit, scale := byteUnit(peak)
	labels := make([]string, len(stats))
	for i, s := range stats {
		labels[i] = fmt.Sprintf("%d·g%d", s.Cluster, s.Generation)
	}
	id := newID()
	if cfg.title == "" {
		cfg.title = "Cluster schedule"
	}
	if cfg.subtitle == "" {
		cfg.subtitle = fmt.Sprintf("%d clusters, %s reaches, %s pairs", len(stats), humanize.Comma(reaches), humanize.Comma(pairs))
	}
	// Zero counts have no place on a log axis: leave them out.
	count := func(v int64) opts.BarData {
		if v <= 0 {
			return opts.BarData{Value: "-"}
		}
		return opts.BarData{Value: v}
	}
	bar := charts.NewBar()
	bar.SetGlobalOptions(append(base(cfg, id),
		charts.WithXAxisOpts(opts.XAxis{Type: "category", Name: "cluster·generation", NameLocation: "middle", NameGap: 28,
			AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}}),
		charts.WithYAxisOpts(opts.YAxis{Type: "log", Name: "count", AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithGridOpts(opts.Grid{Left: "60", Right: "70", Top: "60", Bottom: "80"}),
	)...)
	bar.ExtendYAxis(opts.YAxis{Type: "value", Name: unit, Position: "right",
		AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}, SplitLine: &opts.SplitLine{Show: opts.Bool(false)}})
	// Bars on a log axis rise from the axis's bottom, 1: a count of 1 would
	// have no height, so every bar is at least 3 pixels high.
	minHeight := map[string]any{"barMinHeight": 3}
	patch := map[string]any{"series": []map[string]any{minHeight, minHeight, minHeight}}
	if len(stats) > 40 {
		bar.SetGlobalOptions(charts.WithDataZoomOpts(opts.DataZoom{Type: "slider", Start: 0, End: float32(min(100, 4000/len(stats)))}),
			charts.WithGridOpts(opts.Grid{Left: "60", Right: "70", Top: "60", Bottom: "120"}))
		// The slider sits above the legend, not on it.
		patch["dataZoom"] = []map[string]any{{"top": "auto", "bottom": 44, "height": 20}}
		patch["legend"] = map[string]any{"top": "auto", "bottom": 6}
		patch["grid"] = map[string]any{"bottom": 112}
	}
	bar.SetXAxis(labels)
	r, p, t := make([]opts.BarData, len(stats)), make([]opts.BarData, len(stats)), make([]opts.BarData, len(stats))
	mem := make([]opts.LineData, len(stats))
	for i, s := range stats {
		r[i], p[i], t[i] = count(int64(s.Reaches)), count(s.Pairs), count(int64(s.Transfers))
		mem[i] = opts.LineData{Value: roundTo(float64(s.Bytes)/scale, 4)}
	}
	bar.AddSeries("reaches", r, charts.WithItemStyleOpts(opts.ItemStyle{Color: palette[0]}))
	bar.AddSeries("pairs", p, charts.WithItemStyleOpts(opts.ItemStyle{Color: palette[1]}))
	bar.AddSeries("transfers in", t, charts.WithItemStyleOpts(opts.ItemStyle{Color: palette[2]}))
	line := charts.NewLine()
	line.AddSeries("memory", mem, charts.WithSeriesOpts(func(s *charts.SingleSeries) {
		s.YAxisIndex = 1
		s.Color = palette[3]
	}), charts.WithLineStyleOpts(opts.LineStyle{Color: palette[3], Width: 2}))
	bar.Overlap(line)
	summary := fmt.Sprintf("ClusterSchedule: %d clusters, %d reaches, %d pairs, peak %s", len(stats), reaches, pairs, humanize.IBytes(uint64(peak)))
	return newChart(bar, cfg, id, summary, patch)
}
