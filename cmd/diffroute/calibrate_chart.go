package main

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/diffroute-go/route/calibrate"
	"github.com/diffroute-go/route/viz"
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
	train, valid := make([]float64, len(h)), make([]float64, len(h))
	hasValid := false
	for k, e := range h { // sequential runs concatenate the clusters' epochs
		train[k], valid[k] = e.Train, e.Valid
		hasValid = hasValid || !math.IsNaN(e.Valid)
	}
	curves := []viz.Series{{Name: "training", Values: train}}
	if hasValid {
		curves = append(curves, viz.Series{Name: "validation", Values: valid})
	}
	return viz.LossCurves(curves, viz.Title("Loss per epoch"), viz.Size("100%", "360px"),
		viz.Subtitle(fmt.Sprintf("%s loss; training on the epoch's window, validation on the held-out period or basin", l)))
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
	labels := make([]string, len(r.times))
	for t, v := range r.times {
		labels[t] = v.Format(time.RFC3339)
	}
	f64 := func(s []float32) []float64 {
		d := make([]float64, len(s))
		for t, v := range s {
			d[t] = float64(v)
		}
		return d
	}
	return viz.Compare(labels, []viz.Series{{Name: "observed", Values: r.obs[k]}, {Name: "before (prior)", Values: f64(r.before[k])},
		{Name: "after (calibrated)", Values: f64(r.after[k])}},
		viz.Title(fmt.Sprintf("%s: reach %d", what, r.ids[k])), viz.Units("m3/s"), viz.Size("100%", "360px"),
		viz.Subtitle(fmt.Sprintf("%s NSE %.4f before, %.4f after calibration", period, before[k], after[k])))
}
