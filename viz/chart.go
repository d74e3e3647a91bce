package viz

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/diffroute-go/route/diffroute"
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/go-echarts/go-echarts/v2/render"
)

// Renderer is implemented by every go-echarts chart (*charts.Line,
// *charts.Bar, *charts.Graph, …). Wrap turns one into a Chart.
type Renderer interface {
	RenderSnippet() render.ChartSnippet
}

// Chart is a chart ready to show: a go-echarts chart plus what viz needs to
// render it offline, or the error that kept it from being built.
type Chart struct {
	r       Renderer
	id      string
	width   string
	height  string
	summary string         // plain-text description, for String
	patch   map[string]any // merged into the option by a second setOption
	err     error
}

// Wrap makes any go-echarts chart displayable with Display and writable with
// Page. Its width and height come from its own initialization options.
func Wrap(r Renderer) *Chart {
	return &Chart{r: r, summary: fmt.Sprintf("chart (%T)", r)}
}

// errChart is a chart that failed to build.
func errChart(kind string, err error) *Chart {
	return &Chart{err: fmt.Errorf("viz: %s: %w", kind, err), summary: kind}
}

// Echarts returns the underlying go-echarts chart (nil when Err is not nil)
// for further customisation, e.g. c.Echarts().(*charts.Line).SetGlobalOptions(…).
func (c *Chart) Echarts() Renderer { return c.r }

// Err returns the error that kept the chart from being built, if any.
func (c *Chart) Err() error { return c.err }

// ID returns the id of the chart's <div>.
func (c *Chart) ID() string { return c.id }

// String describes the chart in one line of text.
func (c *Chart) String() string {
	if c.err != nil {
		return c.err.Error()
	}
	return c.summary
}

// HTML returns a self-contained HTML fragment: the guarded ECharts script,
// the chart's <div> and the script that draws it. Several fragments on one
// page evaluate the library once; Page and Display avoid repeating it at
// all.
func (c *Chart) HTML() string { return HTML(c) }

// WriteHTML writes the chart as a standalone HTML page (atomically).
func (c *Chart) WriteHTML(path string) error {
	return NewPage(c.summary, c).WriteFile(path)
}

var idPattern = regexp.MustCompile(`id="([^"]+)"`)

// body renders the chart's element and drawing script, without the library.
func (c *Chart) body() string {
	if c.err != nil {
		return errorHTML(c.err)
	}
	snip := c.r.RenderSnippet()
	id, element := c.id, ""
	if id == "" {
		// A wrapped go-echarts chart: keep its own element.
		m := idPattern.FindStringSubmatch(snip.Element)
		if m == nil {
			return errorHTML(fmt.Errorf("viz: chart element has no id: %q", snip.Element))
		}
		id, element = m[1], snip.Element
	} else {
		element = fmt.Sprintf(`<div class="viz-chart" id="%s" style="width:%s;height:%s;"></div>`,
			id, html.EscapeString(c.width), html.EscapeString(c.height))
	}
	option := strings.TrimSpace(snip.Option)
	option = strings.TrimSuffix(option, ";")
	patch := "null"
	if len(c.patch) > 0 {
		b, err := json.Marshal(c.patch)
		if err != nil {
			return errorHTML(fmt.Errorf("viz: chart options: %w", err))
		}
		patch = string(b)
	}
	var b strings.Builder
	b.WriteString(`<div class="viz-block" style="margin:8px 0 28px 0">`)
	b.WriteString(element)
	b.WriteString("\n<script type=\"text/javascript\">\n(function () {\n")
	fmt.Fprintf(&b, "var id = %q;\nvar option = %s;\nvar patch = %s;\n", id, scriptSafe(option), scriptSafe(patch))
	b.WriteString(drawJS)
	b.WriteString("})();\n</script>\n</div>\n")
	return b.String()
}

// drawJS draws option into the element once it is attached and sized and
// the library is loaded (notebook front-ends may run the script before the
// output is in the document). It gives up after about ten seconds with a
// message in place of the chart.
const drawJS = `function draw(n) {
  var el = document.getElementById(id);
  var ready = el && el.clientWidth > 0 && typeof echarts !== "undefined";
  if (!ready) {
    if (n < 100) { setTimeout(function () { draw(n + 1); }, 100); return; }
    if (el) {
      el.style.height = "auto";
      el.innerHTML = '<p style="color:#a00">' + (typeof echarts === "undefined" ?
        "The ECharts library is not loaded on this page: call viz.ResendScript() in a cell and re-run this one." :
        "The chart element has no width.") + "</p>";
    }
    return;
  }
  var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, {renderer: "canvas"});
  chart.setOption(option);
  if (patch) { chart.setOption(patch); }
  if (window.ResizeObserver) { new ResizeObserver(function () { chart.resize(); }).observe(el); }
}
draw(0);
`

// scriptSafe keeps a JavaScript expression from closing its <script>.
func scriptSafe(s string) string {
	s = strings.ReplaceAll(s, "</", `<\/`)
	return strings.ReplaceAll(s, "<!--", `<\!--`)
}

func errorHTML(err error) string {
	return `<pre class="viz-error" style="color:#a00;white-space:pre-wrap">` + html.EscapeString(err.Error()) + "</pre>\n"
}

// Option configures a chart. Each chart documents the options it reads and
// ignores the others.
type Option func(*config)

type config struct {
	title, subtitle string
	width, height   string
	reaches         []int64
	batch           int
	observed        *diffroute.DataTensor
	observedLabel   string
	colorName       string
	colorValues     []float64
	colorLog        bool
	categories      []int
	maxNodes        int
	units           string
}

func newConfig(o []Option) *config {
	c := &config{width: "100%", height: "420px", maxNodes: 4000}
	for _, f := range o {
		if f != nil {
			f(c)
		}
	}
	return c
}

// Title sets the chart title.
func Title(title string) Option { return func(c *config) { c.title = title } }

// Subtitle sets the line under the title.
func Subtitle(s string) Option { return func(c *config) { c.subtitle = s } }

// Size sets the chart's CSS width and height (defaults "100%" and "420px").
func Size(width, height string) Option {
	return func(c *config) { c.width, c.height = width, height }
}

// Reaches selects the reaches a Hydrograph plots, by id (default: the first
// five rows of the tensor).
func Reaches(ids ...int64) Option { return func(c *config) { c.reaches = ids } }

// Batch selects the batch (ensemble) member a Hydrograph plots (default 0).
func Batch(b int) Option { return func(c *config) { c.batch = b } }

// Observed adds observed series to a Hydrograph: for every plotted reach
// found in obs (by id), its observed series is drawn dashed in the same
// colour as the routed one.
func Observed(obs *diffroute.DataTensor) Option {
	return func(c *config) { c.observed, c.observedLabel = obs, "observed" }
}

// Reference is Observed for a series that is not an observation, such as
// another model's output: label names it in the legend ("RAPID").
func Reference(label string, ref *diffroute.DataTensor) Option {
	return func(c *config) { c.observed, c.observedLabel = ref, label }
}

func (c *config) observedName() string {
	if c.observedLabel == "" {
		return "observed"
	}
	return c.observedLabel
}

// ColorBy colours the reaches of a NetworkGraph by a per-reach value (by
// network index, e.g. discharge), on a linear scale.
func ColorBy(name string, values []float64) Option {
	return func(c *config) { c.colorName, c.colorValues, c.colorLog, c.categories = name, values, false, nil }
}

// ColorByLog is ColorBy on a logarithmic scale, for skewed values such as
// discharge or upstream area. Values ≤ 0 get the lowest colour.
func ColorByLog(name string, values []float64) Option {
	return func(c *config) { c.colorName, c.colorValues, c.colorLog, c.categories = name, values, true, nil }
}

// Categories colours the reaches of a NetworkGraph by a per-reach category
// (by network index), e.g. cluster id; a legend lists up to 20 categories.
// It takes diffroute.Clusters.ClusterOf as it is ([]int32) as well as []int.
func Categories[T ~int | ~int32 | ~int64](name string, values []T) Option {
	cats := make([]int, len(values))
	for i, v := range values {
		cats[i] = int(v)
	}
	return func(c *config) { c.colorName, c.categories, c.colorValues = name, cats, nil }
}

// MaxNodes caps the reaches a NetworkGraph draws (default 4000). Larger
// networks are drawn without their smallest tributaries: only reaches with
// at least some number of upstream reaches, chosen to fit the cap.
func MaxNodes(n int) Option { return func(c *config) { c.maxNodes = n } }

// Units labels the value axis where the data carry no units.
func Units(u string) Option { return func(c *config) { c.units = u } }

// newID returns a fresh element id; ids must not collide across the cell
// processes of one notebook, so they are random.
func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "viz_" + hex.EncodeToString(b[:])
}

// palette is ECharts' default colour cycle.
var palette = []string{"#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"}

// colorOf is the colour of the k-th series or category: ECharts' palette
// first, then hues a golden angle apart (alternating in lightness), so that
// the 10th, 20th or 48th cluster does not take the colour of an earlier one.
func colorOf(k int) string {
	if k < len(palette) {
		return palette[k]
	}
	j := k - len(palette)
	hue := math.Mod(float64(j)*137.508+15, 360)
	light := []float64{0.45, 0.62, 0.35}[j%3]
	return hslHex(hue, 0.65, light)
}

// hslHex converts a colour from hue (degrees), saturation and lightness
// (0–1) to #rrggbb.
func hslHex(h, s, l float64) string {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	to := func(v float64) int { return int(math.Round((v + m) * 255)) }
	return fmt.Sprintf("#%02x%02x%02x", to(r), to(g), to(b))
}

// base applies what every viz chart shares: id, size, title, no animation,
// no assets host.
func base(cfg *config, id string) []charts.GlobalOpts {
	return []charts.GlobalOpts{
		charts.WithInitializationOpts(opts.Initialization{ChartID: id, Width: cfg.width, Height: cfg.height, AssetsHost: "/"}),
		charts.WithAnimation(false),
		charts.WithTitleOpts(opts.Title{Title: cfg.title, Subtitle: cfg.subtitle, Left: "center"}),
	}
}

// newChart finishes a chart built by a constructor.
func newChart(r Renderer, cfg *config, id, summary string, patch map[string]any) *Chart {
	return &Chart{r: r, id: id, width: cfg.width, height: cfg.height, summary: summary, patch: patch}
}

// jsNum turns a float into a JSON value, null where it is not finite.
func jsNum(v float64) any {
	if v != v || v > 1.7e308 || v < -1.7e308 {
		return nil
	}
	return v
}

// jsNum32 turns a float32 into its shortest JSON form, null where it is not
// finite.
func jsNum32(v float32) any {
	f := float64(v)
	if f != f || f > 3.5e38 || f < -3.5e38 {
		return nil
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 32))
}
