package viz

import (
	"math"
	"strings"
	"testing"
)

func TestCalibrationCharts(t *testing.T) {
	lc := LossCurves([]Series{{Name: "train", Values: []float64{0.5, 0.2, 0.1}}, {Name: "validation", Values: []float64{0.6, math.NaN(), 0.12}}})
	cmp := Compare([]string{"2000-01-01", "2000-01-02", "2000-01-03"}, []Series{{Name: "observed", Values: []float64{1, math.NaN(), 3}}, {Name: "after", Values: []float64{1.1, 2, 2.9}}}, Units("m3/s"))
	sc := Scatter("k", []float64{1, 2, 3}, []float64{1.1, 1.9, 3.2}, "true", "calibrated")
	for _, c := range []*Chart{lc, cmp, sc} {
		if c.Err() != nil {
			t.Fatal(c.Err())
		}
		h := c.HTML()
		if !strings.Contains(h, c.ID()) {
			t.Errorf("%s: HTML lacks its id", c)
		}
	}
	if !strings.Contains(lc.HTML(), `"log"`) {
		t.Error("positive losses are not on a log axis")
	}
	if !strings.Contains(cmp.HTML(), "null") {
		t.Error("a missing observation is not a gap")
	}
	if c := Compare([]string{"a"}, []Series{{Name: "x", Values: []float64{1, 2}}}); c.Err() == nil {
		t.Error("a series longer than the labels was accepted")
	}
}
