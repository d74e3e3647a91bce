package viz

import (
	"fmt"
	"time"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// Series is a named sequence of values, e.g. the taps of one kernel.
type Series struct {
	Name   string
	Values []float64
}

// IRF plots impulse responses or path kernels: tap value against time since
// the impulse (tap k at k·dt, in hours, or the tap index when dt is 0). The
// legend shows each kernel's sum (its mass, 1 for a kernel that keeps all of
// the volume within its taps).
//
// Options: Title, Subtitle, Size, Units (for the value axis).
func IRF(dt time.Duration, kernels []Series, o ...Option) *Chart {
	cfg := newConfig(o)
	if len(kernels) == 0 {
		return errChart("IRF", fmt.Errorf("no kernels"))
	}
	if dt < 0 {
		return errChart("IRF", fmt.Errorf("negative time step %v", dt))
	}
	xName := "tap"
	if dt > 0 {
		xName = "hours after impulse"
	}
	id := newID()
	if cfg.title == "" {
		cfg.title = "Impulse response"
	}
	line := charts.NewLine()
	line.SetGlobalOptions(append(base(cfg, id),
		charts.WithXAxisOpts(opts.XAxis{Type: "value", Name: xName, NameLocation: "middle", NameGap: 28,
			Min: "dataMin", Max: "dataMax", SplitLine: &opts.SplitLine{Show: opts.Bool(false)}}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Name: cfg.units, AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom", Type: "scroll"}),
		charts.WithGridOpts(opts.Grid{Left: "60", Right: "30", Top: "60", Bottom: "70"}),
	)...)
	taps := 0
	for k, s := range kernels {
		sum := 0.0
		data := make([][2]any, len(s.Values))
		for j, v := range s.Values {
			x := any(j)
			if dt > 0 {
				x = float64(j) * dt.Hours()
			}
			data[j] = [2]any{x, jsNum(v)}
			if v == v {
				sum += v
			}
		}
		taps = max(taps, len(s.Values))
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("kernel %d", k)
		}
		color := colorOf(k)
		line.AddSeries(fmt.Sprintf("%s (Σ=%.4g)", name, sum), nil, charts.WithSeriesOpts(func(ss *charts.SingleSeries) {
			ss.Data = data
			ss.ShowSymbol = opts.Bool(len(s.Values) <= 60)
			ss.Color = color
			ss.SymbolSize = 4
		}), charts.WithLineStyleOpts(opts.LineStyle{Width: 1.5, Color: color}))
	}
	summary := fmt.Sprintf("IRF: %d kernels, up to %d taps", len(kernels), taps)
	if dt > 0 {
		summary += fmt.Sprintf(" of %v", dt)
	}
	return newChart(line, cfg, id, summary, nil)
}
