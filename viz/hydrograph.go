package viz

import (
	"fmt"
	"strings"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// timeLayouts are the time label forms Hydrograph recognises as dates.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04",
	"2006-01-02 15:04",
	"2006-01-02",
	"2006-01-02 15:04:05 -0700 MST",
	"2006-01-02 15:04:05Z07:00",
}

// ParseTimes parses time labels as dates. It returns nil unless every label
// parses with one of the recognised layouts (RFC 3339, "2006-01-02",
// "2006-01-02 15:04[:05]", with T or space).
func ParseTimes(labels []string) []time.Time {
	if len(labels) == 0 {
		return nil
	}
	out := make([]time.Time, len(labels))
	layout := ""
	for i, s := range labels {
		s = strings.TrimSpace(s)
		ok := false
		if layout != "" {
			if t, err := time.Parse(layout, s); err == nil {
				out[i], ok = t, true
			}
		}
		if !ok {
			for _, l := range timeLayouts {
				if t, err := time.Parse(l, s); err == nil {
					out[i], ok, layout = t, true, l
					break
				}
			}
		}
		if !ok {
			return nil
		}
	}
	return out
}

// Hydrograph plots discharge (or runoff) against time for a few reaches of a
// tensor. The x axis shows dates when every time label parses as one (see
// ParseTimes) and the step index otherwise.
//
// Options: Reaches (default: the first five rows), Batch, Observed, Title,
// Subtitle, Size, Units (default: the tensor's).
func Hydrograph(q *diffroute.DataTensor, o ...Option) *Chart {
	cfg := newConfig(o)
	if q == nil {
		return errChart("hydrograph", fmt.Errorf("no data"))
	}
	if err := q.Validate(); err != nil {
		return errChart("hydrograph", err)
	}
	if cfg.batch < 0 || cfg.batch >= max(q.B, 1) || q.B == 0 {
		return errChart("hydrograph", fmt.Errorf("batch member %d out of range [0, %d)", cfg.batch, q.B))
	}
	ids := cfg.reaches
	if len(ids) == 0 {
		ids = q.IDs[:min(5, q.N)]
	}
	rows, err := rowsOf(q, ids)
	if err != nil {
		return errChart("hydrograph", err)
	}
	var obsRows []int
	if cfg.observed != nil {
		if err := cfg.observed.Validate(); err != nil {
			return errChart("hydrograph: observed", err)
		}
		obsRows = make([]int, len(ids))
		pos := indexOf(cfg.observed.IDs)
		for k, id := range ids {
			obsRows[k] = -1
			if i, ok := pos[id]; ok && cfg.observed.B > 0 {
				obsRows[k] = i
			}
		}
	}

	times := ParseTimes(q.Times)
	x := xLabels(q, times)
	var obsX []any
	if cfg.observed != nil {
		obsTimes := ParseTimes(cfg.observed.Times)
		if (times == nil) != (obsTimes == nil) {
			return errChart("hydrograph", fmt.Errorf("routed and observed time labels differ in kind (dates in one only)"))
		}
		obsX = xLabels(cfg.observed, obsTimes)
	}

	id := newID()
	units := q.Units
	if cfg.units != "" {
		units = cfg.units
	}
	if cfg.title == "" {
		cfg.title = "Hydrograph"
	}
	line := charts.NewLine()
	gopts := base(cfg, id)
	xAxis := opts.XAxis{Type: "value", Name: "step", NameLocation: "middle", NameGap: 28,
		SplitLine: &opts.SplitLine{Show: opts.Bool(false)}, Min: "dataMin", Max: "dataMax"}
	if times != nil {
		xAxis = opts.XAxis{Type: "time", SplitLine: &opts.SplitLine{Show: opts.Bool(false)}}
	}
	gopts = append(gopts,
		charts.WithXAxisOpts(xAxis),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Name: units, AxisLabel: &opts.AxisLabel{Show: opts.Bool(true)}}),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Top: "bottom", Type: "scroll"}),
		charts.WithGridOpts(opts.Grid{Left: "60", Right: "30", Top: "60", Bottom: "70"}),
	)
	if q.T > 200 {
		gopts = append(gopts, charts.WithDataZoomOpts(opts.DataZoom{Type: "inside"}))
	}
	line.SetGlobalOptions(gopts...)

	var seriesPatch []any
	showSymbol := q.T <= 60
	for k, rid := range ids {
		color := colorOf(k)
		series := q.Series(cfg.batch, rows[k])
		data := make([][2]any, len(series))
		for t, v := range series {
			data[t] = [2]any{x[t], jsNum32(v)}
		}
		name := fmt.Sprintf("reach %d", rid)
		if cfg.observed != nil {
			name += " routed"
		}
		line.AddSeries(name, nil, charts.WithSeriesOpts(func(s *charts.SingleSeries) {
			s.Data = data
			s.ShowSymbol = opts.Bool(showSymbol)
			s.Color = color
		}), charts.WithLineStyleOpts(opts.LineStyle{Width: 1.5, Color: color}))
		seriesPatch = append(seriesPatch, map[string]any{"sampling": "lttb"})
		if cfg.observed != nil && obsRows[k] >= 0 {
			ob := cfg.observed.Series(min(cfg.batch, cfg.observed.B-1), obsRows[k])
			od := make([][2]any, len(ob))
			for t, v := range ob {
				od[t] = [2]any{obsX[t], jsNum32(v)}
			}
			line.AddSeries(fmt.Sprintf("reach %d %s", rid, cfg.observedName()), nil, charts.WithSeriesOpts(func(s *charts.SingleSeries) {
				s.Data = od
				s.ShowSymbol = opts.Bool(showSymbol)
				s.Color = color
			}), charts.WithLineStyleOpts(opts.LineStyle{Width: 1.5, Color: color, Type: "dashed", Opacity: opts.Float(0.8)}))
			seriesPatch = append(seriesPatch, map[string]any{"sampling": "lttb"})
		}
	}
	span := fmt.Sprintf("%d steps", q.T)
	if times != nil {
		span = fmt.Sprintf("%s .. %s", q.Times[0], q.Times[q.T-1])
	}
	summary := fmt.Sprintf("Hydrograph: %d reaches %v, %s", len(ids), ids, span)
	if units != "" {
		summary += ", " + units
	}
	if cfg.observed != nil {
		summary += ", with " + cfg.observedName()
	}
	return newChart(line, cfg, id, summary, map[string]any{"series": seriesPatch, "xAxis": map[string]any{"axisLabel": map[string]any{"hideOverlap": true}}})
}

// xLabels returns the x value of each step: a date string the browser reads
// as local time (so it shows as written), or the step index.
func xLabels(q *diffroute.DataTensor, times []time.Time) []any {
	x := make([]any, q.T)
	for t := range x {
		if times != nil {
			x[t] = times[t].Format("2006-01-02T15:04:05")
		} else {
			x[t] = t
		}
	}
	return x
}

func indexOf(ids []int64) map[int64]int {
	m := make(map[int64]int, len(ids))
	for i, id := range ids {
		m[id] = i
	}
	return m
}

// rowsOf finds the rows of ids in q, by id.
func rowsOf(q *diffroute.DataTensor, ids []int64) ([]int, error) {
	pos := indexOf(q.IDs)
	rows := make([]int, len(ids))
	for k, id := range ids {
		i, ok := pos[id]
		if !ok {
			return nil, fmt.Errorf("reach %d is not in the tensor", id)
		}
		rows[k] = i
	}
	return rows, nil
}
