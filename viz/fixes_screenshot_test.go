package viz

import (
	"fmt"
	"image"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

// The charts of the notebooks' fixes, drawn in headless Chromium (with
// VIZ_SCREENSHOT_DIR set, the PNGs are kept for a look): 48 clusters with
// counts of 1 on the log axis and the zoom slider, 24 categories in a
// network, a dated hydrograph against a labelled reference.
func TestChartFixesInChromium(t *testing.T) {
	browser := findChromium()
	if browser == "" || testing.Short() {
		t.Skip("needs chromium and no -short")
	}
	var stats []ClusterStat
	for k := range 48 {
		stats = append(stats, ClusterStat{Cluster: k, Generation: k % 5, Reaches: 1 + k*40, Pairs: int64(1 + k*900), Transfers: 1, Bytes: int64(k+1) << 20})
	}
	net := diffroute.SyntheticNetwork(400, 3)
	cats := make([]int32, net.Len())
	for i := range cats {
		cats[i] = int32(i % 24)
	}
	q := testTensor(net.IDs()[:3], 90, true)
	ref := q.Clone()
	for i := range ref.Data {
		ref.Data[i] *= 0.9
	}
	const w, h = 900, 460
	for _, c := range []struct {
		name  string
		chart *Chart
	}{
		{"schedule", ClusterSchedule(stats, Title("48 clusters in routing order, with counts of one"), Subtitle("every cluster has one transfer in"))},
		{"categories", NetworkGraph(net, Categories("cluster", cats), Title("24 clusters: no colour repeats"))},
		{"hydrograph", Hydrograph(q, Reference("RAPID", ref), Title("Routed against a reference, on dates"), Units("m³/s"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.chart.Err(); err != nil {
				t.Fatal(err)
			}
			c.chart.width, c.chart.height = fmt.Sprintf("%dpx", w), fmt.Sprintf("%dpx", h)
			img := screenshot(t, browser, NewPage("", c.chart).HTML(), w+40, h+60)
			ink, colour := inkCount(img, image.Rect(16, 24, 16+w, 24+h))
			t.Logf("%s: %d non-white, %d coloured pixels", c.name, ink, colour)
			if colour < 300 {
				t.Errorf("%s drew nothing coloured", c.name)
			}
		})
	}
}
