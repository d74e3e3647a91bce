package viz

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"slices"
	"strings"

	"github.com/diffroute-go/route/diffroute"
	"github.com/dustin/go-humanize"
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// viridis stops for continuous colour scales.
var viridis = []string{"#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"}

// graphNode is a Graph series data item; go-echarts' GraphNode drops zero
// coordinates (omitempty), so viz writes its own.
type graphNode struct {
	Name       string  `json:"name"`
	X          float64 `json:"x"`
	Y          float64 `json:"y"`
	Value      any     `json:"value,omitempty"`
	Raw        string  `json:"raw,omitempty"`
	Depth      int     `json:"depth"`
	Size       int     `json:"size"`
	Category   *int    `json:"category,omitempty"`
	SymbolSize float64 `json:"symbolSize"`
}

type graphLink struct {
	Source    int            `json:"source"`
	Target    int            `json:"target"`
	LineStyle map[string]any `json:"lineStyle,omitempty"`
}

// NetworkGraph draws a river network as a tree: outlets on the right,
// headwaters on the left (x = distance to the outlet in reaches), each
// subtree in its own band (y = position among the headwaters in DFS
// pre-order, parents centred on their tributaries). Node and line sizes grow
// with the number of upstream reaches. Reaches are coloured by the number of
// upstream reaches unless ColorBy, ColorByLog or Categories says otherwise.
//
// Options: ColorBy, ColorByLog, Categories, MaxNodes, Title, Subtitle, Size.
func NetworkGraph(net *diffroute.Network, o ...Option) *Chart {
	cfg := newConfig(o)
	if net == nil {
		return errChart("network graph", fmt.Errorf("no network"))
	}
	n := net.Len()
	if n == 0 {
		return errChart("network graph", fmt.Errorf("empty network"))
	}
	if cfg.colorValues != nil && len(cfg.colorValues) != n {
		return errChart("network graph", fmt.Errorf("%d colour values for %d reaches", len(cfg.colorValues), n))
	}
	if cfg.categories != nil && len(cfg.categories) != n {
		return errChart("network graph", fmt.Errorf("%d categories for %d reaches", len(cfg.categories), n))
	}
	if cfg.colorValues == nil && cfg.categories == nil {
		sizes := make([]float64, n)
		for i := range sizes {
			sizes[i] = float64(net.Size(i))
		}
		cfg.colorName, cfg.colorValues, cfg.colorLog = "upstream reaches", sizes, true
	}

	// Which reaches to draw: all, or those with at least minSize upstream
	// reaches. Size grows downstream, so the kept set is closed downstream.
	minSize := 1
	if cfg.maxNodes > 0 && n > cfg.maxNodes {
		sizes := make([]int, n)
		for i := range sizes {
			sizes[i] = net.Size(i)
		}
		slices.Sort(sizes)
		slices.Reverse(sizes)
		minSize = sizes[cfg.maxNodes] + 1
	}
	kept := func(i int) bool { return net.Size(i) >= minSize }

	// Layout.
	order := net.PreOrder()
	pos := make([]int, n) // node number of each kept reach, -1 otherwise
	ys := make([]float64, n)
	lo, hi := make([]float64, n), make([]float64, n)
	slot, count, maxDepth, maxSize := 0.0, 0, 1, 1
	for _, v32 := range order {
		v := int(v32)
		pos[v] = -1
		if !kept(v) {
			continue
		}
		pos[v] = count
		count++
		maxDepth = max(maxDepth, net.Depth(v))
		maxSize = max(maxSize, net.Size(v))
		lo[v], hi[v] = math.Inf(1), math.Inf(-1)
		if net.Down(v) < 0 && slot > 0 {
			slot++ // a gap between trees
		}
		leaf := true
		for _, u := range net.Upstream(v) {
			if kept(int(u)) {
				leaf = false
				break
			}
		}
		if leaf {
			ys[v] = slot
			slot++
		}
	}
	for k := len(order) - 1; k >= 0; k-- {
		v := int(order[k])
		if pos[v] < 0 {
			continue
		}
		if !math.IsInf(lo[v], 1) {
			ys[v] = (lo[v] + hi[v]) / 2
		}
		if d := net.Down(v); d >= 0 {
			lo[d], hi[d] = min(lo[d], ys[v]), max(hi[d], ys[v])
		}
	}
	ymax := max(slot-1, 1)

	// Colours.
	var cats []int
	catIndex := map[int]int{}
	if cfg.categories != nil {
		for _, c := range cfg.categories {
			if _, ok := catIndex[c]; !ok {
				catIndex[c] = 0
				cats = append(cats, c)
			}
		}
		slices.Sort(cats)
		for k, c := range cats {
			catIndex[c] = k
		}
	}
	cmin, cmax := math.Inf(1), math.Inf(-1)
	mapped := func(v float64) float64 {
		if cfg.colorLog {
			if v <= 0 {
				return math.NaN()
			}
			return math.Log10(v)
		}
		return v
	}
	if cfg.colorValues != nil {
		for i, v := range cfg.colorValues {
			if m := mapped(v); pos[i] >= 0 && !math.IsNaN(m) && !math.IsInf(m, 0) {
				cmin, cmax = min(cmin, m), max(cmax, m)
			}
		}
		if math.IsInf(cmin, 1) {
			cmin, cmax = 0, 1
		}
		if cmax == cmin {
			cmax = cmin + 1
		}
	}

	nodes := make([]graphNode, count)
	links := make([]graphLink, 0, count)
	// Marker size: from minSym for a headwater to minSym+symbol at the
	// outlet of the largest basin.
	minSym, symbol := 8.0, 14.0
	switch {
	case count > 2000:
		minSym, symbol = 2, 8
	case count > 200:
		minSym, symbol = 3, 10
	}
	for _, v32 := range order {
		v := int(v32)
		p := pos[v]
		if p < 0 {
			continue
		}
		frac := math.Sqrt(float64(net.Size(v)) / float64(maxSize))
		nd := graphNode{
			Name:       fmt.Sprintf("reach %d", net.ID(v)),
			X:          float64(maxDepth-net.Depth(v)) / float64(max(maxDepth-1, 1)) * 1600,
			Y:          ys[v] / ymax * 800,
			Depth:      net.Depth(v),
			Size:       net.Size(v),
			SymbolSize: minSym + symbol*frac,
		}
		if cfg.categories != nil {
			k := catIndex[cfg.categories[v]]
			nd.Category = &k
			nd.Raw = fmt.Sprint(cfg.categories[v])
		} else {
			raw := cfg.colorValues[v]
			nd.Raw = humanize.FtoaWithDigits(raw, 4)
			if m := mapped(raw); !math.IsNaN(m) && !math.IsInf(m, 0) {
				nd.Value = m
			} else {
				nd.Value = cmin
			}
		}
		nodes[p] = nd
		if d := net.Down(v); d >= 0 {
			links = append(links, graphLink{Source: p, Target: pos[d],
				LineStyle: map[string]any{"width": 0.6 + 3.5*frac}})
		}
	}

	id := newID()
	if cfg.title == "" {
		cfg.title = "River network"
	}
	if cfg.subtitle == "" {
		cfg.subtitle = fmt.Sprintf("%s reaches, %d outlets, max depth %d", humanize.Comma(int64(n)), len(net.Outlets()), net.MaxDepth())
		if count < n {
			cfg.subtitle += fmt.Sprintf(" — showing %s reaches with ≥ %d upstream reaches", humanize.Comma(int64(count)), minSize)
		}
	}
	label, _ := json.Marshal(cfg.colorName)
	tooltip := `function (p) { if (p.dataType !== "node") { return ""; } var d = p.data;
  return d.name + "<br/>" + ` + string(label) + ` + ": " + d.raw + "<br/>depth " + d.depth + ", upstream reaches " + d.size; }`

	g := charts.NewGraph()
	gopts := append(base(cfg, id),
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Formatter: opts.FuncOpts(tooltip)}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(cfg.categories != nil && len(cats) <= 20), Top: "bottom", Type: "scroll"}),
	)
	patch := map[string]any{}
	if cfg.colorValues != nil {
		text := cfg.colorName
		if cfg.colorLog {
			text += " (log₁₀)"
		}
		vm := opts.VisualMap{Type: "continuous", Min: float32(cmin), Max: float32(cmax), Calculable: opts.Bool(false),
			Text: []string{text, ""}, InRange: &opts.VisualMapInRange{Color: viridis}}
		gopts = append(gopts, charts.WithVisualMapOpts(vm))
		patch["visualMap"] = map[string]any{"min": cmin, "max": cmax, "orient": "horizontal", "left": "center", "bottom": 0, "seriesIndex": 0, "precision": 1}
	}
	g.SetGlobalOptions(gopts...)
	var categories []opts.GraphCategory
	for k, c := range cats {
		categories = append(categories, opts.GraphCategory{Name: fmt.Sprintf("%s %d", cfg.colorName, c), ItemStyle: &opts.ItemStyle{Color: colorOf(k)}})
	}
	g.AddSeries("network", nil, nil, charts.WithSeriesOpts(func(s *charts.SingleSeries) {
		s.Data = nodes
		s.Links = links
		s.Layout = "none"
		s.Roam = opts.Bool(false)
		if categories != nil {
			s.Categories = categories
		}
		s.LineStyle = &opts.LineStyle{Color: "#8a9bb0", Opacity: opts.Float(0.9)}
		s.Top, s.Bottom, s.Left, s.Right = "70", "70", "40", "40"
	}))
	summary := fmt.Sprintf("NetworkGraph: %d of %d reaches, coloured by %s", count, n, cfg.colorName)
	return newChart(g, cfg, id, summary, patch)
}

// networkStats are the numbers a network summary shows.
func networkStats(net *diffroute.Network) [][2]string {
	n := net.Len()
	outlets := net.Outlets()
	leaves, largest, sumDepth := 0, 0, 0
	for i := 0; i < n; i++ {
		if len(net.Upstream(i)) == 0 {
			leaves++
		}
		sumDepth += net.Depth(i)
	}
	for _, o := range outlets {
		largest = max(largest, net.Size(o))
	}
	mean := 0.0
	if n > 0 {
		mean = float64(sumDepth) / float64(n)
	}
	return [][2]string{
		{"reaches", humanize.Comma(int64(n))},
		{"outlets", humanize.Comma(int64(len(outlets)))},
		{"headwater reaches", humanize.Comma(int64(leaves))},
		{"largest basin", humanize.Comma(int64(largest)) + " reaches"},
		{"max depth", fmt.Sprint(net.MaxDepth())},
		{"mean depth", fmt.Sprintf("%.1f", mean)},
		{"closure pairs", humanize.Comma(net.Pairs())},
		{"kernel per tap (float32)", humanize.IBytes(uint64(net.Pairs()) * 4)},
	}
}

func networkHTML(net *diffroute.Network) string {
	var b strings.Builder
	b.WriteString(`<div class="viz-network" style="font-family:sans-serif;font-size:12px"><b>Network</b>` +
		`<table style="border-collapse:collapse;margin:4px 0">`)
	for _, kv := range networkStats(net) {
		fmt.Fprintf(&b, `<tr><td style="padding:1px 12px 1px 0">%s</td><td style="text-align:right">%s</td></tr>`,
			html.EscapeString(kv[0]), html.EscapeString(kv[1]))
	}
	b.WriteString("</table></div>\n")
	return b.String()
}

func networkText(net *diffroute.Network) string {
	var b strings.Builder
	b.WriteString("Network")
	for _, kv := range networkStats(net) {
		fmt.Fprintf(&b, "\n  %-26s %s", kv[0], kv[1])
	}
	return b.String()
}
