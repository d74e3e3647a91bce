package viz

import (
	"errors"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/diffroute-go/route/diffroute"
	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/protocol"
)

// HTMLer is implemented by values that render themselves as an HTML
// fragment. Display and Page use it before any built-in rendering, so a type
// can control how it looks in a notebook by adding one method.
type HTMLer interface {
	HTML() string
}

// stdout is where Display prints outside a notebook; nil means os.Stdout
// at the time of the call (tests swap it).
var stdout io.Writer

// InNotebook reports whether the program runs inside a GoNB notebook cell.
func InNotebook() bool { return gonbui.IsNotebook }

// Display shows v: in a GoNB notebook as HTML in the cell's output, elsewhere
// as plain text on standard output. It knows *Chart (and any go-echarts
// chart), *Page, *diffroute.DataTensor, *diffroute.Network,
// *diffroute.Clusters, *diffroute.MemoryPlan, errors, HTMLer
// and fmt.Stringer values, and prints anything else with %v.
//
// With $DIFFROUTE_NOTEBOOK_PNG set (see SnapshotEnv), a notebook output that
// holds a chart also carries a PNG snapshot of it, for viewers that do not
// run scripts; without Chromium, or when the snapshot fails, the output is
// HTML only.
func Display(v any) {
	if InNotebook() {
		gonbui.SendData(notebookData(v))
		// Large outputs (the first one carries the 1 MB echarts library) can
		// still be in the pipe when a short cell exits: wait until GoNB has them.
		gonbui.Sync()
		return
	}
	w := stdout
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprintln(w, Text(v))
}

// notebookData builds the display_data message Display sends for v: one
// output holding v's HTML (see notebookHTML) and, when SnapshotEnv asks for
// it and v holds a chart, a PNG snapshot of the same output. A front-end
// shows one of the two: Jupyter (and nbconvert's HTML export) the
// interactive HTML; the image is for viewers that prefer it to HTML whose
// scripts they will not run. A failed snapshot is left out silently.
func notebookData(v any) *protocol.DisplayData {
	body, chart := renderAny(v)
	data := map[protocol.MIMEType]any{protocol.MIMETextHTML: withScript(body, chart)}
	if chart && snapshotsOn() {
		if img, err := snapshotBody(v, body); err == nil {
			data[protocol.MIMEImagePNG] = img
		}
	}
	return &protocol.DisplayData{Data: data}
}

// notebookHTML renders v for a notebook cell, sending the ECharts library
// only if this kernel session has not had it yet.
func notebookHTML(v any) string {
	return withScript(renderAny(v))
}

// withScript prefixes body with the ECharts library when it holds a chart
// and this kernel session has not had the library yet.
func withScript(body string, chart bool) string {
	if chart && !scriptSent() {
		markScriptSent()
		return echartsTag() + body
	}
	return body
}

// HTML renders v as a self-contained HTML fragment, as Display would in a
// notebook, but always including the (guarded) ECharts library when v holds
// a chart.
func HTML(v any) string {
	body, chart := renderAny(v)
	if chart {
		return echartsTag() + body
	}
	return body
}

// Text renders v as plain text, as Display prints it outside a notebook.
func Text(v any) string {
	switch x := v.(type) {
	case nil:
		return "<nil>"
	case *diffroute.DataTensor:
		if x == nil {
			return "<nil DataTensor>"
		}
		return tensorText(x)
	case *diffroute.Network:
		if x == nil {
			return "<nil Network>"
		}
		return networkText(x)
	case *Page:
		var parts []string
		for _, it := range x.items {
			parts = append(parts, Text(it))
		}
		return strings.Join(parts, "\n")
	case Renderer:
		return Wrap(x).String()
	case error:
		return "error: " + x.Error()
	case string:
		return x
	}
	if s, ok := v.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%v", v)
}

// render returns v's HTML without the ECharts library, and whether it holds
// a chart (and so needs the library on the page).
func renderAny(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "<pre>&lt;nil&gt;</pre>\n", false
	case *Chart:
		if x == nil {
			return "<pre>&lt;nil chart&gt;</pre>\n", false
		}
		return x.body(), x.err == nil
	case *Page:
		var b strings.Builder
		chart := false
		for _, it := range x.items {
			s, c := renderAny(it)
			b.WriteString(s)
			chart = chart || c
		}
		return b.String(), chart
	case HTMLer:
		return x.HTML(), false
	case *diffroute.DataTensor:
		if x == nil {
			return "<pre>&lt;nil DataTensor&gt;</pre>\n", false
		}
		return tensorHTML(x), false
	case *diffroute.Network:
		if x == nil {
			return "<pre>&lt;nil Network&gt;</pre>\n", false
		}
		c := NetworkGraph(x)
		return networkHTML(x) + c.body(), c.err == nil
	case *diffroute.MemoryPlan:
		if x == nil {
			return "<pre>&lt;nil MemoryPlan&gt;</pre>\n", false
		}
		return renderPlan(x)
	case *diffroute.Clusters:
		if x == nil {
			return "<pre>&lt;nil Clusters&gt;</pre>\n", false
		}
		return renderClusters(x)
	case Renderer:
		return renderAny(Wrap(x))
	case error:
		return errorHTML(x), false
	case fmt.Stringer:
		return "<pre>" + html.EscapeString(x.String()) + "</pre>\n", false
	case string:
		return "<pre>" + html.EscapeString(x) + "</pre>\n", false
	}
	return "<pre>" + html.EscapeString(fmt.Sprintf("%v", v)) + "</pre>\n", false
}

// In GoNB every cell runs as a new process, so "the library was sent" is
// remembered in a marker file in the kernel session's temporary directory
// ($GONB_TMP_DIR, new for every kernel start). Outside GoNB, or without that
// directory, it is remembered for the process.
var scriptSentHere bool

func scriptMarker() string {
	dir := os.Getenv("GONB_TMP_DIR")
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, ".viz-echarts-"+echartsHash())
}

func scriptSent() bool {
	if scriptSentHere {
		return true
	}
	if m := scriptMarker(); m != "" {
		_, err := os.Stat(m)
		return err == nil
	}
	return false
}

func markScriptSent() {
	scriptSentHere = true
	if m := scriptMarker(); m != "" {
		_ = os.WriteFile(m, []byte(EchartsVersion+"\n"), 0o644)
	}
}

// ResendScript makes the next chart displayed in this notebook session carry
// the ECharts library again — needed after clearing the output of the cell
// that first carried it, or when a chart reports that the library is not
// loaded.
func ResendScript() {
	scriptSentHere = false
	if m := scriptMarker(); m != "" {
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(os.Stderr, "viz:", err)
		}
	}
}
