package viz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Static snapshots of charts. Notebook viewers that do not run scripts
// (code hosts showing committed notebooks) show a chart's HTML output blank;
// with SnapshotEnv set, Display adds a PNG of the chart, drawn by headless
// Chromium, to the same output.

// SnapshotEnv names the environment variable that turns on PNG snapshots in
// notebook outputs: when it holds a true value ("1", "true") and Chromium is
// installed, every chart Display shows in a notebook also carries a static
// image/png rendering next to its interactive text/html, in the same output.
// Jupyter shows the interactive chart; the image is for viewers that show
// image/png rather than HTML whose scripts they do not run.
// scripts/run-notebooks.sh sets it when chromium is on the PATH.
const SnapshotEnv = "DIFFROUTE_NOTEBOOK_PNG"

// snapshotWidth is the window width for charts sized relative to their
// container (the default "100%").
const snapshotWidth = 900

// snapshotTimeout bounds one browser run; a slower one yields no snapshot.
const snapshotTimeout = 60 * time.Second

// snapshotsOn reports whether SnapshotEnv asks for snapshots.
func snapshotsOn() bool {
	on, err := strconv.ParseBool(strings.TrimSpace(os.Getenv(SnapshotEnv)))
	return err == nil && on
}

// findChromium returns the headless browser to take snapshots with ($CHROMIUM
// or the first of chromium, chromium-browser, google-chrome on the PATH), or
// "".
func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshotHTML loads the HTML document page in headless Chromium with a
// w×h window and returns the screenshot as PNG. The browser gets a fresh
// profile in a temporary directory, removed afterwards, and is stopped when
// ctx ends.
func screenshotHTML(ctx context.Context, browser, page string, w, h int) ([]byte, error) {
	dir, err := os.MkdirTemp("", "viz-snapshot-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	htmlPath := filepath.Join(dir, "page.html")
	pngPath := filepath.Join(dir, "shot.png")
	if err := os.WriteFile(htmlPath, []byte(page), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, browser,
		"--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--hide-scrollbars", "--force-device-scale-factor=1",
		// Run the page's timers (the chart waits for its element and
		// library) without waiting for them in real time.
		"--virtual-time-budget=4000",
		fmt.Sprintf("--window-size=%d,%d", w, h),
		"--screenshot="+pngPath,
		(&url.URL{Scheme: "file", Path: htmlPath}).String())
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Chromium's helper processes may keep the output pipe open after the
	// browser is killed: do not wait for them.
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("viz: snapshot: %w", ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("viz: snapshot: %s: %w\n%s", filepath.Base(browser), err, out.String())
	}
	b, err := os.ReadFile(pngPath)
	if err != nil {
		return nil, fmt.Errorf("viz: snapshot: no screenshot: %w\n%s", err, out.String())
	}
	return b, nil
}

// limitedBuffer keeps the first 8 KiB written to it (the browser's
// diagnostics, for error messages).
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := 8<<10 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// snapshotDoc is the page a snapshot is taken of: body (as renderAny
// returns it) with the ECharts library, on white, without the page margins.
func snapshotDoc(body string) string {
	return "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n" + echartsTag() +
		"</head>\n<body style=\"font-family:sans-serif;margin:0 8px;background:#fff\">\n" +
		body + "</body>\n</html>\n"
}

// Snapshot renders v (anything Display accepts) as a static PNG image with
// headless Chromium: as wide as its widest chart, or 900 pixels for charts
// sized in percent, and as tall as its content. It fails when Chromium is
// not installed, takes longer than 20 seconds, or draws nothing.
func Snapshot(v any) ([]byte, error) {
	body, _ := renderAny(v)
	return snapshotBody(v, body)
}

// snapshotBody is Snapshot of v, whose rendering is body.
func snapshotBody(v any, body string) ([]byte, error) {
	browser := findChromium()
	if browser == "" {
		return nil, errors.New("viz: snapshot: chromium not found (set $CHROMIUM or install chromium)")
	}
	w, h := snapshotSize(v)
	ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
	defer cancel()
	shot, err := screenshotHTML(ctx, browser, snapshotDoc(body), w, h)
	if err != nil {
		return nil, err
	}
	return trimPNG(shot)
}

// snapshotSize returns the browser window for a snapshot of v: the width of
// its widest chart sized in pixels (at least snapshotWidth where a chart is
// sized in percent), and a height that holds its content — an estimate, on
// the generous side; trimPNG cuts the blank rows below.
func snapshotSize(v any) (w, h int) {
	w, h = sizeOf(v)
	if w == 0 {
		w = snapshotWidth
	}
	w += 16 // the body's side margins
	return w, min(max(h+40, 200), 4000)
}

// sizeOf estimates the pixel size of v's rendering; width 0 is "relative".
func sizeOf(v any) (w, h int) {
	switch x := v.(type) {
	case *Chart:
		if x == nil || x.err != nil {
			return 0, 40
		}
		w, _ = cssPixels(x.width)
		ch, ok := cssPixels(x.height)
		if !ok {
			ch = 600
		}
		return w, ch + 36 // the block's margins
	case *Page:
		for _, it := range x.items {
			iw, ih := sizeOf(it)
			w, h = max(w, iw), h+ih
		}
		return w, h
	case Renderer:
		return 0, 600
	}
	// Networks (a table and a graph), memory plans and cluster schedules
	// (a chart or two, and notes).
	return 0, 1000
}

// cssPixels parses a CSS length in pixels ("420px" or "420").
func cssPixels(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "px"))
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// trimPNG cuts the white rows below the content of a screenshot, leaving a
// margin of 8 rows, and re-encodes it compactly. It fails on a blank
// screenshot (fewer than 200 non-white pixels).
func trimPNG(shot []byte) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		return nil, fmt.Errorf("viz: snapshot: %w", err)
	}
	r := img.Bounds()
	ink, last := 0, -1
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if !whitish(img, x, y) {
				ink++
				last = y
			}
		}
	}
	if ink < 200 {
		return nil, errors.New("viz: snapshot: the page drew nothing")
	}
	bottom := min(last+1+8, r.Max.Y)
	if s, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	}); ok {
		img = s.SubImage(image.Rect(r.Min.X, r.Min.Y, r.Max.X, bottom))
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, img); err != nil {
		return nil, fmt.Errorf("viz: snapshot: %w", err)
	}
	return b.Bytes(), nil
}

// whitish reports whether the pixel at x, y is white or nearly so.
func whitish(img image.Image, x, y int) bool {
	r, g, b, _ := img.At(x, y).RGBA()
	return r>>8 >= 245 && g>>8 >= 245 && b>>8 >= 245
}
