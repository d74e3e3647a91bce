package viz

import (
	"fmt"
	"html"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/route/progress"
	"github.com/janpfeifer/gonb/gonbui"
	"github.com/schollz/progressbar/v3"
)

// ProgressOption configures NewProgress.
type ProgressOption func(*progressConfig)

type progressConfig struct {
	bytes bool
	w     io.Writer
}

// Bytes says the units are bytes, shown as KiB, MiB, … and per second.
func Bytes() ProgressOption { return func(c *progressConfig) { c.bytes = true } }

// ProgressWriter sets where a terminal bar is drawn (default standard error).
func ProgressWriter(w io.Writer) ProgressOption { return func(c *progressConfig) { c.w = w } }

// NewProgress returns the progress display that suits where the program
// runs: nothing when quiet, an in-place HTML bar in a GoNB notebook cell,
// a terminal bar otherwise.
func NewProgress(quiet bool, o ...ProgressOption) progress.Reporter {
	cfg := progressConfig{w: os.Stderr}
	for _, f := range o {
		f(&cfg)
	}
	switch {
	case quiet:
		return progress.Quiet
	case InNotebook():
		return NewNotebookProgress(cfg.bytes)
	default:
		return NewTerminalProgress(cfg.w, cfg.bytes)
	}
}

// TerminalProgress draws a text progress bar (schollz/progressbar) on a
// terminal or log.
type TerminalProgress struct {
	mu    sync.Mutex
	w     io.Writer
	bytes bool
	bar   *progressbar.ProgressBar
	name  string
	start time.Time
	done  int64
}

// NewTerminalProgress returns a text progress bar drawn on w.
func NewTerminalProgress(w io.Writer, bytes bool) *TerminalProgress {
	return &TerminalProgress{w: w, bytes: bytes}
}

// Start implements Progress.
func (p *TerminalProgress) Start(name string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if total <= 0 {
		total = -1 // spinner
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetRenderBlankState(true),
	}
	if p.bytes {
		opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true))
	}
	p.bar = progressbar.NewOptions64(total, opts...)
	p.name, p.start, p.done = name, time.Now(), 0
}

// Update implements Progress.
func (p *TerminalProgress) Update(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	p.done = done
	_ = p.bar.Set64(done)
}

// Done implements Progress.
func (p *TerminalProgress) Done(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	if err == nil {
		_ = p.bar.Finish()
	} else {
		_ = p.bar.Exit()
	}
	fmt.Fprintf(p.w, "\n%s\n", doneLine(p.name, p.done, p.bytes, time.Since(p.start), err))
	p.bar = nil
}

func amount(v int64, bytes bool) string {
	if bytes {
		return humanize.IBytes(uint64(max(v, 0)))
	}
	return humanize.Comma(v)
}

func doneLine(name string, done int64, bytes bool, d time.Duration, err error) string {
	if err != nil {
		return fmt.Sprintf("✘ %s failed after %s: %v", name, d.Round(time.Millisecond), err)
	}
	return fmt.Sprintf("✔ %s: %s in %s", name, amount(done, bytes), d.Round(time.Millisecond))
}

// NotebookProgress draws an HTML progress bar in a GoNB cell, updated in
// place (gonbui.UpdateHTML on a transient output) at most ten times a
// second; Done replaces it with a one-line summary.
type NotebookProgress struct {
	mu       sync.Mutex
	bytes    bool
	id       string
	name     string
	total    int64
	done     int64
	start    time.Time
	last     time.Time
	update   func(id, html string) // gonbui.UpdateHTML; tests swap it
	display  func(html string)     // gonbui.DisplayHTML
	interval time.Duration
}

// NewNotebookProgress returns an HTML progress bar for GoNB cells.
func NewNotebookProgress(bytes bool) *NotebookProgress {
	return &NotebookProgress{bytes: bytes, update: gonbui.UpdateHTML, display: gonbui.DisplayHTML,
		interval: 100 * time.Millisecond}
}

// Start implements Progress.
func (p *NotebookProgress) Start(name string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.id = "viz_progress_" + gonbui.UniqueID()
	p.name, p.total, p.done = name, total, 0
	p.start = time.Now()
	p.last = p.start
	p.update(p.id, p.barHTML())
}

// Update implements Progress.
func (p *NotebookProgress) Update(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.id == "" {
		return
	}
	p.done = done
	now := time.Now()
	if now.Sub(p.last) < p.interval && (p.total <= 0 || done < p.total) {
		return
	}
	p.last = now
	p.update(p.id, p.barHTML())
}

// Done implements Progress.
func (p *NotebookProgress) Done(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.id == "" {
		return
	}
	p.update(p.id, "") // erase the transient bar
	color := "#2a7"
	if err != nil {
		color = "#a00"
	}
	p.display(fmt.Sprintf(`<div style="font-family:sans-serif;font-size:12px;color:%s">%s</div>`, color,
		html.EscapeString(doneLine(p.name, p.done, p.bytes, time.Since(p.start), err))))
	p.id = ""
	gonbui.Sync() // flush before a short cell exits
}

// barHTML draws the bar at its current state.
func (p *NotebookProgress) barHTML() string {
	elapsed := time.Since(p.start)
	var b strings.Builder
	b.WriteString(`<div style="font-family:sans-serif;font-size:12px;display:flex;align-items:center;gap:8px">`)
	fmt.Fprintf(&b, `<span>%s</span>`, html.EscapeString(p.name))
	text := amount(p.done, p.bytes)
	if p.total > 0 {
		frac := min(max(float64(p.done)/float64(p.total), 0), 1)
		fmt.Fprintf(&b, `<div style="width:240px;height:12px;background:#e6e6e6;border-radius:3px;overflow:hidden">`+
			`<div style="width:%.1f%%;height:100%%;background:#5470c6"></div></div>`, 100*frac)
		text = fmt.Sprintf("%.0f%% · %s / %s", 100*frac, text, amount(p.total, p.bytes))
		if frac > 0 && frac < 1 {
			left := time.Duration(float64(elapsed) * (1 - frac) / frac)
			text += fmt.Sprintf(" · %s left", left.Round(time.Second))
		}
	}
	if p.bytes && elapsed > 0 {
		text += fmt.Sprintf(" · %s/s", humanize.IBytes(uint64(float64(max(p.done, 0))/elapsed.Seconds())))
	}
	fmt.Fprintf(&b, `<span>%s</span></div>`, html.EscapeString(text))
	return b.String()
}
