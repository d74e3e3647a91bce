package viz

import (
	"fmt"
	"math"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// LossCurves plots losses against the epoch (1, 2, …), one line per series
// (training and validation, say); NaN values are epochs without a value.
// The value axis is logarithmic when every value is positive.
//
// Options: Title, Subtitle, Size.
func LossCurves(curves []Series, o ...Option) *Chart {
	cfg := newConfig(o)
	if len(curves) == 0 {
		return errChart("loss curves", fmt.Errorf("no curves"))
	}
	if cfg.title == "" {
		cfg.title = "Loss per epoch"
	}
	logAxis := true
	for _, c := range curves {
		for _, v := range c.Values {
			if !math.IsNaN(v) && !(v > 0) {
				logAxis = false
			}
		}
	}
	yType := "value"
	if logAxis {
		yType = "log"
	}
	id := newID()
	line := charts.NewLine()
	line.SetGlobalOptions(append(base(cfg, id),
		charts.WithXAxisOpts(opts.XAxis{Type: "value", Name: "epoch", NameLocation: "middle", NameGap: 28, Min: "dataMin", Max: "dataMax",
			SplitLine: &opts.SplitLine{Show: opts.Bool(false)}}),
		charts.WithYAxisOpts(opts.YAxis{Type: yType, Name: "loss", AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithGridOpts(opts.Grid{Left: "60", Right: "30", Top: "60", Bottom: "70"}),
	)...)
	epochs := 0
	for k, c := range curves {
		var data [][2]any
		for e, v := range c.Values {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				data = append(data, [2]any{e + 1, v})
			}
		}
		epochs = max(epochs, len(c.Values))
		color := palette[k%len(palette)]
		line.AddSeries(c.Name, nil, charts.WithSeriesOpts(func(s *charts.SingleSeries) {
			s.Data = data
			s.ShowSymbol = opts.Bool(len(data) <= 40)
			s.Color = color
			s.SymbolSize = 4
		}), charts.WithLineStyleOpts(opts.LineStyle{Width: 1.5, Color: color}))
	}
	return newChart(line, cfg, id, fmt.Sprintf("Loss curves: %d series over %d epochs", len(curves), epochs), nil)
}

// Compare plots several series against the same time labels at one place:
// observed discharge against routing before and after calibration, say.
// The first series is the reference, drawn in black; NaN values are gaps.
// The x axis shows dates when every label parses as one, else the step.
//
// Options: Title, Subtitle, Size, Units.
func Compare(labels []string, series []Series, o ...Option) *Chart {
	cfg := newConfig(o)
	if len(series) == 0 {
		return errChart("compare", fmt.Errorf("no series"))
	}
	for _, s := range series {
		if len(s.Values) != len(labels) {
			return errChart("compare", fmt.Errorf("series %q has %d values for %d time labels", s.Name, len(s.Values), len(labels)))
		}
	}
	times := ParseTimes(labels)
	x := make([]any, len(labels))
	for t := range x {
		if times != nil {
			x[t] = times[t].Format("2006-01-02T15:04:05")
		} else {
			x[t] = t
		}
	}
	xAxis := opts.XAxis{Type: "value", Name: "step", NameLocation: "middle", NameGap: 28, Min: "dataMin", Max: "dataMax",
		SplitLine: &opts.SplitLine{Show: opts.Bool(false)}}
	if times != nil {
		xAxis = opts.XAxis{Type: "time", SplitLine: &opts.SplitLine{Show: opts.Bool(false)}}
	}
	id := newID()
	line := charts.NewLine()
	gopts := append(base(cfg, id),
		charts.WithXAxisOpts(xAxis),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Name: cfg.units, AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithGridOpts(opts.Grid{Left: "60", Right: "30", Top: "60", Bottom: "70"}),
	)
	if len(labels) > 200 {
		gopts = append(gopts, charts.WithDataZoomOpts(opts.DataZoom{Type: "inside"}))
	}
	line.SetGlobalOptions(gopts...)
	var patch []any
	for k, s := range series {
		data := make([][2]any, len(s.Values))
		for t, v := range s.Values {
			data[t] = [2]any{x[t], jsNum(v)}
		}
		color := "#222222"
		if k > 0 {
			color = palette[(k-1)%len(palette)]
		}
		line.AddSeries(s.Name, nil, charts.WithSeriesOpts(func(ss *charts.SingleSeries) {
			ss.Data = data
			ss.ShowSymbol = opts.Bool(len(labels) <= 60)
			ss.Color = color
		}), charts.WithLineStyleOpts(opts.LineStyle{Width: 1.5, Color: color}))
		patch = append(patch, map[string]any{"sampling": "lttb"})
	}
	return newChart(line, cfg, id, fmt.Sprintf("Compare: %d series over %d steps", len(series), len(labels)), map[string]any{"series": patch})
}

// Scatter plots y against x as points (true against calibrated parameters,
// say) with the 1:1 line.
//
// Options: Title, Subtitle, Size, Units (both axes).
func Scatter(name string, x, y []float64, xName, yName string, o ...Option) *Chart {
	cfg := newConfig(o)
	if len(x) != len(y) || len(x) == 0 {
		return errChart("scatter", fmt.Errorf("%d x values for %d y values", len(x), len(y)))
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	pts := make([]opts.ScatterData, 0, len(x))
	for i := range x {
		if math.IsNaN(x[i]) || math.IsNaN(y[i]) {
			continue
		}
		lo, hi = min(lo, x[i], y[i]), max(hi, x[i], y[i])
		pts = append(pts, opts.ScatterData{Value: []any{x[i], y[i]}, SymbolSize: 4})
	}
	id := newID()
	sc := charts.NewScatter()
	sc.SetGlobalOptions(append(base(cfg, id),
		charts.WithXAxisOpts(opts.XAxis{Type: "value", Name: xName, NameLocation: "middle", NameGap: 28, Min: lo, Max: hi}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Name: yName, Min: lo, Max: hi}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithGridOpts(opts.Grid{Left: "70", Right: "30", Top: "60", Bottom: "70"}),
	)...)
	sc.AddSeries(name, pts, charts.WithItemStyleOpts(opts.ItemStyle{Color: palette[0], Opacity: opts.Float(0.6)}))
	diag := charts.NewLine()
	diag.AddSeries("1:1", []opts.LineData{{Value: []any{lo, lo}}, {Value: []any{hi, hi}}},
		charts.WithLineStyleOpts(opts.LineStyle{Color: "#888", Type: "dashed", Width: 1}), charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)}))
	sc.Overlap(diag)
	return newChart(sc, cfg, id, fmt.Sprintf("Scatter: %d points of %s", len(pts), name), nil)
}
