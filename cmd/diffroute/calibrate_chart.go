package main

import (
	"fmt"
	"math"
	"slices"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"

	"github.com/diffroute-go/diffroute/calibrate"
	"github.com/diffroute-go/diffroute/viz"
)

// writeCalibrationHTML writes calibration.html: the loss curves, then
// observed discharge against the prior's and the calibrated routing at the
// worst, median and best gauge (ranked by NSE after calibration, in the
// validation period when there is one), for the calibrated basin and the
// other basin when one validated a learned map.
func writeCalibrationHTML(path string, j *calJob, h []calibrate.Epoch, rep, vrep *calReport) error {
	items := []any{lossChart(h, j.loss)}
	items = append(items, gaugeCharts(rep, "")...)
	if vrep != nil {
		items = append(items, gaugeCharts(vrep, "other basin, ")...)
	}
	return viz.WriteHTML(path, fmt.Sprintf("Calibration of %s (%s map, %s loss)", j.rf.irf, j.mapKind, j.loss), items...)
}

func lossChart(h []calibrate.Epoch, l calibrate.Loss) *viz.Chart {
	line := charts.NewLine()
	line.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: "Loss per epoch", Subtitle: fmt.Sprintf("%s loss; training on the epoch's window, validation on the held-out period or basin", l)}),
		charts.WithInitializationOpts(opts.Initialization{Width: "900px", Height: "360px"}),
		charts.WithXAxisOpts(opts.XAxis{Type: "value", Name: "epoch", NameLocation: "middle", NameGap: 28}),
		charts.WithYAxisOpts(opts.YAxis{Type: "log", Name: "loss"}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
	)
	var train, valid []opts.LineData
	for k, e := range h {
		x := k + 1 // sequential runs concatenate the clusters' epochs
		if v := e.Train; v > 0 && !math.IsInf(v, 0) {
			train = append(train, opts.LineData{Value: []any{x, v}})
		}
		if v := e.Valid; v > 0 && !math.IsNaN(v) {
			valid = append(valid, opts.LineData{Value: []any{x, v}})
		}
	}
	line.AddSeries("train", train, charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)}))
	if len(valid) > 0 {
		line.AddSeries("validation", valid, charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)}))
	}
	return viz.Wrap(line)
}

// gaugeCharts plots the worst, median and best gauge.
func gaugeCharts(r *calReport, prefix string) []any {
	_, after := r.scores()
	order := make([]int, 0, len(after))
	for k, v := range after {
		if !math.IsNaN(v) {
			order = append(order, k)
		}
	}
	if len(order) == 0 {
		return nil
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case after[a] < after[b]:
			return -1
		case after[a] > after[b]:
			return 1
		}
		return 0
	})
	picks := []struct {
		what string
		k    int
	}{{"worst", order[0]}, {"median", order[len(order)/2]}, {"best", order[len(order)-1]}}
	var out []any
	seen := map[int]bool{}
	for _, p := range picks {
		if seen[p.k] {
			continue
		}
		seen[p.k] = true
		out = append(out, gaugeChart(r, p.k, prefix+p.what+" gauge"))
	}
	return out
}

func gaugeChart(r *calReport, k int, what string) *viz.Chart {
	before, after := r.scores()
	period := "training"
	if r.hasValid {
		period = "validation"
	}
	line := charts.NewLine()
	line.SetGlobalOptions(
		charts.WithTitleOpts(opts.Title{Title: fmt.Sprintf("%s: reach %d", what, r.ids[k]),
			Subtitle: fmt.Sprintf("%s NSE %.4f before, %.4f after calibration", period, before[k], after[k])}),
		charts.WithInitializationOpts(opts.Initialization{Width: "900px", Height: "360px"}),
		charts.WithXAxisOpts(opts.XAxis{Type: "time"}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Name: "m3/s"}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom"}),
		charts.WithDataZoomOpts(opts.DataZoom{Type: "inside"}),
	)
	x := func(t int) string { return r.times[t].Format("2006-01-02T15:04:05") }
	var obs []opts.LineData
	for t, v := range r.obs[k] {
		if !math.IsNaN(v) {
			obs = append(obs, opts.LineData{Value: []any{x(t), v}})
		}
	}
	series := func(s []float32) []opts.LineData {
		d := make([]opts.LineData, len(s))
		for t, v := range s {
			d[t] = opts.LineData{Value: []any{x(t), float64(v)}}
		}
		return d
	}
	noSym := charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(false)})
	line.AddSeries("observed", obs, noSym, charts.WithLineStyleOpts(opts.LineStyle{Color: "#222", Width: 1.5}))
	line.AddSeries("before (prior)", series(r.before[k]), noSym, charts.WithLineStyleOpts(opts.LineStyle{Color: "#d62728", Width: 1, Type: "dashed"}))
	line.AddSeries("after (calibrated)", series(r.after[k]), noSym, charts.WithLineStyleOpts(opts.LineStyle{Color: "#1f77b4", Width: 1.5}))
	return viz.Wrap(line)
}
