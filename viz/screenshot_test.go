package viz

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/janpfeifer/gonb/gonbui/protocol"
)

// screenshot renders page with headless Chromium and returns the image.
func screenshot(t *testing.T, browser, page string, w, h int) image.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	b, err := screenshotHTML(ctx, browser, page, w, h)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("VIZ_SCREENSHOT_DIR"); d != "" {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".png"
		_ = os.WriteFile(filepath.Join(d, name), b, 0o644)
	}
	return img
}

// inkCount counts pixels in r that are not white, and those that are
// clearly coloured (not grey): axes and text are grey, series are not.
func inkCount(img image.Image, r image.Rectangle) (ink, colour int) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			R, G, B := int(cr>>8), int(cg>>8), int(cb>>8)
			if R < 235 || G < 235 || B < 235 {
				ink++
			}
			if max(R, G, B)-min(R, G, B) > 60 {
				colour++
			}
		}
	}
	return ink, colour
}

// TestChartsDrawInChromium proves that each chart draws offline: the page
// holds only the embedded library, and the chart area of its screenshot has
// coloured pixels — unlike the same page without the library.
func TestChartsDrawInChromium(t *testing.T) {
	browser := findChromium()
	if browser == "" {
		t.Skip("chromium not installed (apt-get install -y chromium): skipping the screenshot test")
	}
	if testing.Short() {
		t.Skip("screenshots are slow: skipped in -short mode")
	}
	const w, h = 800, 400
	// Chart area: the page body has a 16 px margin, the chart block 8 px more on top.
	area := image.Rect(16, 24, 16+w, 24+h)
	for k, c := range allCharts(t) {
		c.width, c.height = fmt.Sprintf("%dpx", w), fmt.Sprintf("%dpx", h)
		name := strings.Fields(c.String())[0]
		t.Run(fmt.Sprintf("%d-%s", k, strings.TrimSuffix(name, ":")), func(t *testing.T) {
			page := NewPage("", c).HTML()
			ink, colour := inkCount(screenshot(t, browser, page, w+40, h+60), area)
			t.Logf("%s: %d non-white and %d coloured pixels of %d", c, ink, colour, w*h)
			if ink < 2000 || colour < 300 {
				t.Errorf("chart looks blank: %d non-white, %d coloured pixels", ink, colour)
			}
		})
	}
	t.Run("control without library", func(t *testing.T) {
		c := Hydrograph(testTensor([]int64{1, 2}, 50, true), Size(fmt.Sprintf("%dpx", w), fmt.Sprintf("%dpx", h)))
		page := strings.Replace(NewPage("", c).HTML(), echartsTag(), "", 1)
		ink, colour := inkCount(screenshot(t, browser, page, w+40, h+60), area)
		if colour > 0 || ink > 100 {
			t.Errorf("page without the library has %d non-white, %d coloured pixels: the measure cannot tell", ink, colour)
		}
	})
}

// notebookKeys lists the MIME types of a notebook message, sorted.
func notebookKeys(d *protocol.DisplayData) []string {
	var keys []string
	for k := range d.Data {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	return keys
}

// TestNotebookDataHTMLOnly: without $DIFFROUTE_NOTEBOOK_PNG, for values
// without charts, and when the browser cannot run, a notebook output is
// HTML only.
func TestNotebookDataHTMLOnly(t *testing.T) {
	t.Setenv("GONB_TMP_DIR", t.TempDir())
	scriptSentHere = false
	defer func() { scriptSentHere = false }()
	chart := Hydrograph(testTensor([]int64{1, 2}, 50, true))
	cases := []struct {
		name, env, browser string
		v                  any
	}{
		{"unset", "", "", chart},
		{"off", "0", "", chart},
		{"no chart", "1", "", testTensor([]int64{5}, 3, false)},
		{"chart error", "1", "", Hydrograph(nil)},
		{"browser fails", "1", filepath.Join(t.TempDir(), "no-such-browser"), chart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(SnapshotEnv, c.env)
			if c.browser != "" {
				t.Setenv("CHROMIUM", c.browser)
			}
			d := notebookData(c.v)
			if keys := notebookKeys(d); !slices.Equal(keys, []string{"text/html"}) {
				t.Fatalf("MIME types %v, want [text/html]", keys)
			}
			if h, _ := d.Data[protocol.MIMETextHTML].(string); h == "" {
				t.Error("empty HTML")
			}
		})
	}
}

// TestNotebookDataSnapshot: with $DIFFROUTE_NOTEBOOK_PNG=1 and Chromium, a
// chart's notebook output carries its HTML and a PNG of the drawn chart.
func TestNotebookDataSnapshot(t *testing.T) {
	if findChromium() == "" {
		t.Skip("chromium not installed (apt-get install -y chromium): skipping the snapshot test")
	}
	if testing.Short() {
		t.Skip("screenshots are slow: skipped in -short mode")
	}
	t.Setenv("GONB_TMP_DIR", t.TempDir())
	t.Setenv(SnapshotEnv, "1")
	scriptSentHere = false
	defer func() { scriptSentHere = false }()
	cases := []struct {
		name  string
		v     any
		w     int // want the image this wide
		maxH  int // and at most this tall
		inkLo int // with at least this many non-white pixels
	}{
		{"relative width", Hydrograph(testTensor([]int64{1, 2}, 50, true), Title("flows")), snapshotWidth + 16, 420 + 60, 2000},
		{"pixel size", IRF(time.Hour, []Series{{"a", muskingumIRF(3, 0.2, 1, 48)}}, Size("600px", "300px")), 600 + 16, 300 + 60, 1000},
		{"network", testNetwork(t), snapshotWidth + 16, 1040, 2000},
	}
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			d := notebookData(c.v)
			took := time.Since(start)
			if keys := notebookKeys(d); !slices.Equal(keys, []string{"image/png", "text/html"}) {
				t.Fatalf("MIME types %v, want [image/png text/html]", keys)
			}
			h, _ := d.Data[protocol.MIMETextHTML].(string)
			if want := k == 0; strings.Contains(h, scriptMark) != want {
				t.Errorf("HTML carries the library: %v, want %v (first chart of the session only)", !want, want)
			}
			if !strings.Contains(h, `class="viz-block"`) {
				t.Error("HTML has no chart")
			}
			b, _ := d.Data[protocol.MIMEImagePNG].([]byte)
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			r := img.Bounds()
			ink, colour := inkCount(img, r)
			t.Logf("%d×%d PNG, %d bytes, %d non-white and %d coloured pixels, in %v", r.Dx(), r.Dy(), len(b), ink, colour, took.Round(time.Millisecond))
			if r.Dx() != c.w || r.Dy() > c.maxH || r.Dy() < 100 {
				t.Errorf("image is %d×%d, want width %d and height 100…%d", r.Dx(), r.Dy(), c.w, c.maxH)
			}
			if ink < c.inkLo || colour < 300 {
				t.Errorf("snapshot looks blank: %d non-white, %d coloured pixels", ink, colour)
			}
			if d := os.Getenv("VIZ_SCREENSHOT_DIR"); d != "" {
				_ = os.WriteFile(filepath.Join(d, "notebook-"+strings.ReplaceAll(c.name, " ", "_")+".png"), b, 0o644)
			}
		})
	}
}

// TestTrimPNG: blank rows below the content go, a blank image is an error.
func TestTrimPNG(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 100, 200))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	var blank bytes.Buffer
	if err := png.Encode(&blank, img); err != nil {
		t.Fatal(err)
	}
	if _, err := trimPNG(blank.Bytes()); err == nil {
		t.Error("blank image: no error")
	}
	for y := 20; y < 60; y++ {
		for x := 10; x < 90; x++ {
			img.Set(x, y, color.RGBA{200, 0, 0, 255})
		}
	}
	var full bytes.Buffer
	if err := png.Encode(&full, img); err != nil {
		t.Fatal(err)
	}
	b, err := trimPNG(full.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	out, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Bounds(); got != image.Rect(0, 0, 100, 68) {
		t.Errorf("trimmed to %v, want (0,0)-(100,68)", got)
	}
}
