package data

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// Instants set on a tensor come back from its labels and from a netCDF file
// written from it (CF units), to the nanosecond they were given in.
func TestTimesRoundTrip(t *testing.T) {
	t0 := time.Date(2003, 1, 21, 3, 0, 0, 0, time.FixedZone("x", 5*3600))
	ts := []time.Time{t0, t0.Add(3 * time.Hour), t0.Add(6 * time.Hour)}
	x := diffroute.NewDataTensor(1, []int64{10, 20}, 3)
	x.Units = "m3/s"
	if err := SetTimes(x, ts); err != nil {
		t.Fatal(err)
	}
	if x.Step != 3*time.Hour {
		t.Errorf("step %v", x.Step)
	}
	path := filepath.Join(t.TempDir(), "q.nc")
	if err := WriteSeries(path, x); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSeries(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, y := range []*diffroute.DataTensor{x, back} {
		got, err := Times(y)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ts {
			if !got[i].Equal(ts[i]) {
				t.Errorf("time %d: %v, want %v (labels %v)", i, got[i], ts[i], y.Times)
			}
		}
	}
	x.Times[1] = "day two"
	if _, err := Times(x); err == nil {
		t.Error("a label that is no time was accepted")
	}
}
