package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

func sampleDischarge(n, T int) *diffroute.DataTensor {
	net := diffroute.SyntheticNetwork(n, 3)
	x := diffroute.SyntheticRunoff(net, 1, T, 9)
	x.Units, x.Step = "m3/s", 24*time.Hour
	x.Times = make([]string, T)
	for t := range x.Times {
		x.Times[t] = FormatTime(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, t))
	}
	return x
}

func sameSeries(t *testing.T, got, want *diffroute.DataTensor) {
	t.Helper()
	g, err := got.SelectIDs(want.IDs)
	if err != nil {
		t.Fatal(err)
	}
	if g.T != want.T {
		t.Fatalf("%d steps, want %d", g.T, want.T)
	}
	for k := range want.Data {
		if g.Data[k] != want.Data[k] {
			t.Fatalf("value %d: %v, want %v", k, g.Data[k], want.Data[k])
		}
	}
	for k := range want.Times {
		a, _ := ParseTime(g.Times[k])
		b, _ := ParseTime(want.Times[k])
		if !a.Equal(b) {
			t.Fatalf("time %d: %s, want %s", k, g.Times[k], want.Times[k])
		}
	}
}

// Every writable format reads back what it wrote, whole and in time
// pieces; compressed formats are smaller than classic netCDF.
func TestSeriesFormatsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	q := sampleDischarge(40, 100)
	coords := map[int64]LatLon{}
	for i, id := range q.IDs {
		coords[id] = LatLon{Lat: 10 + float64(i)/100, Lon: -70 - float64(i)/100}
	}
	cases := []struct {
		name string
		o    *SeriesOptions
	}{
		{"x.nc", nil}, {"x.nc4", &SeriesOptions{Coords: coords}}, {"x.csv", nil},
		{"x.parquet", nil}, {"wide.parquet", &SeriesOptions{Layout: "wide"}}, {"named.nc", &SeriesOptions{Format: "nc4", Compress: 9}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			whole := filepath.Join(dir, c.name)
			if err := WriteSeriesWith(whole, q, c.o); err != nil {
				t.Fatal(err)
			}
			got, err := ReadSeries(whole, nil)
			if err != nil {
				t.Fatal(err)
			}
			sameSeries(t, got, q)
			pieces := filepath.Join(dir, "pieces-"+c.name)
			w, err := NewSeriesWriterWith(pieces, q.IDs, q.Times, q.Step, c.o)
			if err != nil {
				t.Fatal(err)
			}
			for t0 := 0; t0 < q.T; t0 += 30 {
				if err := w.Write(q.SliceTime(t0, min(q.T, t0+30)), t0); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := os.Stat(pieces); err == nil {
				t.Fatal("the table is at its final name before Close")
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err = ReadSeries(pieces, nil)
			if err != nil {
				t.Fatal(err)
			}
			sameSeries(t, got, q)
			matches, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*"))
			if len(matches) > 0 {
				t.Errorf("temporary files left: %v", matches)
			}
		})
	}
	size := func(n string) int64 { st, _ := os.Stat(filepath.Join(dir, n)); return st.Size() }
	t.Logf("sizes: nc %d, nc4 %d, parquet %d, csv %d", size("x.nc"), size("x.nc4"), size("x.parquet"), size("x.csv"))
	for _, c := range []string{"x.nc", "x.csv", "x.parquet"} {
		if err := WriteSeriesWith(filepath.Join(dir, "bad"+c), q, &SeriesOptions{Compress: 99}); err == nil || !strings.Contains(err.Error(), "level") && !strings.Contains(err.Error(), "compression") {
			t.Errorf("%s with compression 99: %v", c, err)
		}
	}
	if err := WriteSeriesWith(filepath.Join(dir, "c.nc"), q, &SeriesOptions{Compress: 4}); err == nil || !strings.Contains(err.Error(), "netCDF-4") {
		t.Errorf("classic netCDF with compression: %v", err)
	}
	if _, err := SeriesFormatNamed("xls", true); err == nil || !strings.Contains(err.Error(), "parquet") {
		t.Errorf("unknown format: %v", err)
	}
}

// A streamed table refuses pieces out of order, and Close refuses a table
// with steps missing, leaving nothing behind.
func TestStreamedTablesNeedEveryStep(t *testing.T) {
	dir := t.TempDir()
	q := sampleDischarge(5, 10)
	for _, name := range []string{"x.csv", "x.parquet"} {
		p := filepath.Join(dir, name)
		w, err := NewSeriesWriterWith(p, q.IDs, q.Times, q.Step, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(q.SliceTime(5, 10), 5); err == nil {
			t.Errorf("%s: a piece out of order was accepted", name)
		}
		if err := w.Write(q.SliceTime(0, 5), 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err == nil || !strings.Contains(err.Error(), "5 of 10 steps") {
			t.Errorf("%s: incomplete table closed: %v", name, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("%s: files left: %v", name, ents)
		}
	}
}
