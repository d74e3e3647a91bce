package viz

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// findChromium returns the headless browser to screenshot with, or "".
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

// screenshot renders page with headless Chromium and returns the image.
func screenshot(t *testing.T, browser, page string, w, h int) image.Image {
	t.Helper()
	dir := t.TempDir()
	htmlPath := filepath.Join(dir, "page.html")
	pngPath := filepath.Join(dir, "shot.png")
	if err := os.WriteFile(htmlPath, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--hide-scrollbars",
		"--virtual-time-budget=4000", "--screenshot="+pngPath, fmt.Sprintf("--window-size=%d,%d", w, h),
		(&url.URL{Scheme: "file", Path: htmlPath}).String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("VIZ_SCREENSHOT_DIR"); d != "" {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + ".png"
		b, _ := os.ReadFile(pngPath)
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
		page := strings.Replace(NewPage("", c).HTML(), echartsTag, "", 1)
		ink, colour := inkCount(screenshot(t, browser, page, w+40, h+60), area)
		if colour > 0 || ink > 100 {
			t.Errorf("page without the library has %d non-white, %d coloured pixels: the measure cannot tell", ink, colour)
		}
	})
}
