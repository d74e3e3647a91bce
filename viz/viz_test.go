package viz

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/progress"
)

const scriptMark = `data-viz="echarts-`

func TestPageInlinesScriptOncePerPage(t *testing.T) {
	cs := allCharts(t)
	items := []any{"a note", testTensor([]int64{1, 2}, 10, true)}
	for _, c := range cs {
		if c.Err() != nil {
			t.Fatalf("%s: %v", c, c.Err())
		}
		items = append(items, c)
	}
	page := NewPage("all charts", items...).HTML()
	if n := strings.Count(page, scriptMark); n != 1 {
		t.Errorf("page holds the echarts script %d times, want 1", n)
	}
	if n := strings.Count(page, `if (typeof echarts === "undefined") {`); n != 1 {
		t.Errorf("page has %d guards, want 1", n)
	}
	if n := strings.Count(page, `class="viz-chart"`); n != len(cs) {
		t.Errorf("page has %d chart divs, want %d", n, len(cs))
	}
	for _, c := range cs {
		if !strings.Contains(page, `id="`+c.ID()+`"`) {
			t.Errorf("chart %s has no div", c.ID())
		}
	}
	for _, c := range cs {
		if !strings.Contains(c.Echarts().RenderSnippet().Option, `"animation":false`) {
			t.Errorf("%s: animation not disabled", c)
		}
	}
	if strings.Contains(page, "https://") && strings.Contains(page, "go-echarts-assets") {
		t.Error("page refers to the online assets host")
	}
	if strings.Index(page, scriptMark) > strings.Index(page, `class="viz-chart"`) {
		t.Error("the script comes after the first chart")
	}
}

func TestFragmentIsSelfContained(t *testing.T) {
	c := Hydrograph(testTensor([]int64{5, 6}, 30, false))
	h := c.HTML()
	if strings.Count(h, scriptMark) != 1 || strings.Count(h, `class="viz-chart"`) != 1 {
		t.Errorf("fragment: %d scripts, %d charts; want 1 and 1", strings.Count(h, scriptMark), strings.Count(h, `class="viz-chart"`))
	}
	// Values without charts carry no script.
	if strings.Contains(HTML(testTensor([]int64{5}, 3, false)), scriptMark) {
		t.Error("tensor HTML carries the echarts script")
	}
}

func TestNotebookScriptOncePerSession(t *testing.T) {
	t.Setenv("GONB_TMP_DIR", t.TempDir())
	scriptSentHere = false
	defer func() { scriptSentHere = false }()
	c := IRF(time.Hour, []Series{{"a", []float64{0.5, 0.3, 0.2}}})
	first := notebookHTML(c)
	// A new cell is a new process: only the marker file remembers.
	scriptSentHere = false
	second := notebookHTML(IRF(0, []Series{{"b", []float64{1}}}))
	if strings.Count(first, scriptMark) != 1 || strings.Contains(second, scriptMark) {
		t.Errorf("first cell has %d scripts (want 1), second %d (want 0)", strings.Count(first, scriptMark), strings.Count(second, scriptMark))
	}
	if strings.Contains(notebookHTML("text"), scriptMark) {
		t.Error("text output carries the script")
	}
	ResendScript()
	if !strings.Contains(notebookHTML(c), scriptMark) {
		t.Error("no script after ResendScript")
	}
}

func TestDisplayFallsBackToText(t *testing.T) {
	if InNotebook() {
		t.Skip("running inside GoNB")
	}
	var buf bytes.Buffer
	stdout = &buf
	defer func() { stdout = nil }()
	net := testNetwork(t)
	Display(net)
	Display(testTensor(net.IDs(), 40, true))
	Display(Hydrograph(testTensor(net.IDs(), 40, true), Reaches(1, 9)))
	Display(errors.New("boom"))
	Display(42)
	out := buf.String()
	for _, want := range []string{"reaches                    10", "closure pairs", "DataTensor (batch=1, spatial=10, time=40) m3/s",
		"2020-01-01", "⋮", "Hydrograph: 2 reaches [1 9], 2020-01-01 .. 2020-02-09, m3/s", "error: boom", "42"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "<") {
		t.Errorf("text output holds HTML:\n%s", out)
	}
}

type custom struct{}

func (custom) HTML() string   { return "<b>custom</b>" }
func (custom) String() string { return "custom text" }

func TestHTMLerAndStringer(t *testing.T) {
	if got := HTML(custom{}); got != "<b>custom</b>" {
		t.Errorf("HTMLer: %q", got)
	}
	if got := Text(custom{}); got != "custom text" {
		t.Errorf("Stringer: %q", got)
	}
	if got := HTML(time.Second); got != "<pre>1s</pre>\n" {
		t.Errorf("Stringer HTML: %q", got)
	}
	if got := HTML("<x>"); !strings.Contains(got, "&lt;x&gt;") {
		t.Errorf("string not escaped: %q", got)
	}
}

func TestChartErrors(t *testing.T) {
	q := testTensor([]int64{1, 2}, 10, false)
	net := testNetwork(t)
	for name, c := range map[string]*Chart{
		"unknown reach": Hydrograph(q, Reaches(3)),
		"bad batch":     Hydrograph(q, Batch(1)),
		"nil tensor":    Hydrograph(nil),
		"no kernels":    IRF(time.Hour, nil),
		"colour length": NetworkGraph(net, ColorBy("q", []float64{1})),
		"no strategies": MemoryPlan(nil, 0),
		"no clusters":   ClusterSchedule(nil),
	} {
		if c.Err() == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		h := c.HTML()
		if !strings.Contains(h, "viz-error") || strings.Contains(h, `class="viz-chart"`) {
			t.Errorf("%s: HTML %q", name, h)
		}
	}
}

func TestParseTimes(t *testing.T) {
	for _, tc := range []struct {
		labels []string
		ok     bool
	}{
		{[]string{"2020-01-01", "2020-01-02"}, true},
		{[]string{"2020-01-01T03:00:00Z", "2020-01-01T06:00:00Z"}, true},
		{[]string{"2020-01-01 03:00", "2020-01-01 06:00:00"}, true},
		{[]string{"2020-01-01", "tomorrow"}, false},
		{[]string{"0", "1"}, false},
		{nil, false},
	} {
		if got := ParseTimes(tc.labels) != nil; got != tc.ok {
			t.Errorf("ParseTimes(%q) ok = %v, want %v", tc.labels, got, tc.ok)
		}
	}
	// Dates show as written, whatever the zone.
	q := testTensor([]int64{1}, 2, false)
	q.Times = []string{"2020-01-01T00:00:00+05:00", "2020-01-01T03:00:00+05:00"}
	if s := Hydrograph(q).Echarts().RenderSnippet().Option; !strings.Contains(s, `"2020-01-01T03:00:00"`) {
		t.Errorf("time label not kept as written: %.300s", s)
	}
}

func TestTensorTable(t *testing.T) {
	ids := make([]int64, 50)
	for i := range ids {
		ids[i] = int64(1000 + i)
	}
	h := HTML(testTensor(ids, 365, true))
	for _, want := range []string{"DataTensor (batch=1, spatial=50, time=365) m3/s", "<th", ">1000<", ">1004<", ">1049<", "2020-01-01", "2020-12-30", "…", "⋮"} {
		if !strings.Contains(h, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(h, ">1010<") || strings.Contains(h, "2020-03-01") {
		t.Error("table shows middle rows or steps")
	}
	if n := strings.Count(h, "<tr>"); n != headRows+tailRows+2 {
		t.Errorf("%d table rows, want %d", n, headRows+tailRows+2)
	}
}

func TestNetworkGraphCapsNodes(t *testing.T) {
	net := bigNetwork(t, 3000)
	c := NetworkGraph(net, MaxNodes(500))
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	opt := c.Echarts().RenderSnippet().Option
	if n := strings.Count(opt, `"symbolSize"`); n == 0 || n > 500 {
		t.Errorf("%d nodes drawn, want 1..500", n)
	}
	if !strings.Contains(opt, "showing") {
		t.Error("subtitle does not say the network is pruned")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chart.html")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := IRF(0, []Series{{"k", []float64{1, 0}}}).WriteHTML(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "<!DOCTYPE html>") || strings.Count(string(b), scriptMark) != 1 {
		t.Errorf("page not written: %.80q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := WriteHTML(filepath.Join(dir, "missing", "x.html"), "x"); err == nil {
		t.Error("no error writing into a missing directory")
	}
}

func TestProgress(t *testing.T) {
	if NewProgress(true) != progress.Quiet {
		t.Error("quiet progress is not Quiet")
	}
	var buf bytes.Buffer
	p := NewProgress(false, Bytes(), ProgressWriter(&buf))
	if _, ok := p.(*TerminalProgress); !ok {
		t.Fatalf("outside a notebook got %T", p)
	}
	p.Start("download", 4<<20)
	p.Update(1 << 20)
	p.Update(4 << 20)
	p.Done(nil)
	p.Start("again", -1)
	p.Update(10)
	p.Done(errors.New("network down"))
	out := buf.String()
	for _, want := range []string{"download", "✔ download: 4.0 MiB", "✘ again failed", "network down"} {
		if !strings.Contains(out, want) {
			t.Errorf("terminal output lacks %q:\n%s", want, out)
		}
	}

	np := NewNotebookProgress(false)
	var updates []string
	var ids []string
	var shown []string
	np.update = func(id, h string) { ids, updates = append(ids, id), append(updates, h) }
	np.display = func(h string) { shown = append(shown, h) }
	np.interval = time.Hour // only the first and last updates get through
	np.Start("staging", 100)
	for i := int64(1); i <= 100; i++ {
		np.Update(i)
	}
	np.Done(nil)
	if len(updates) != 3 || updates[2] != "" {
		t.Fatalf("updates: %q", updates)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] || !strings.HasPrefix(ids[0], "viz_progress_") {
		t.Errorf("transient ids %q", ids)
	}
	if !strings.Contains(updates[0], "0%") || !strings.Contains(updates[1], "100% · 100 / 100") {
		t.Errorf("bar HTML: %q", updates[:2])
	}
	if len(shown) != 1 || !strings.Contains(shown[0], "✔ staging: 100") {
		t.Errorf("final line: %q", shown)
	}
}
