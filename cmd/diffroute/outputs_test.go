package main

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// TestOutputsReadOnlyTheirReaches: --outputs routes the upstream closure of
// the listed reaches and reads only their runoff where the file allows. On
// a generated basin (reaches shuffled in the files, as real ones come) the
// listed reaches' discharge must be the same, value for value, whatever the
// runoff file: classic netCDF (read in part), netCDF-4 and CSV (read whole,
// then picked), and equal the full run's to float32 rounding (the full run
// may add a confluence's tributaries in another order: 4e-8 here). A classic file whose reaches outside the
// closure hold NaN must route with --outputs (their runoff is never read)
// and be refused by a full run.
func TestOutputsReadOnlyTheirReaches(t *testing.T) {
	dir := t.TempDir()
	basin := filepath.Join(dir, "b")
	if _, err := runCLI(t, "generate", "--out", basin, "--reaches", "3000", "--days", "30", "--seed", "9", "--gauges", "6"); err != nil {
		t.Fatal(err)
	}
	obs, err := data.ReadCSVTableFile(filepath.Join(basin, "observed.csv"))
	if err != nil {
		t.Fatal(err)
	}
	gauges := obs.IDs
	list := filepath.Join(dir, "gauges.txt")
	var b strings.Builder
	for _, id := range gauges {
		b.WriteString(itoa(id) + "\n")
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	runoffNC := filepath.Join(basin, "runoff.nc")
	route := func(runoff, out string, extra ...string) error {
		args := append([]string{"route", "--quiet", "--rapid", basin, "--runoff", runoff, "--substep", "10800", "--out", out}, extra...)
		_, err := runCLI(t, args...)
		return err
	}
	full := filepath.Join(dir, "full.nc")
	if err := route(runoffNC, full); err != nil {
		t.Fatal(err)
	}
	want, err := readQ(t, full).SelectIDs(gauges)
	if err != nil {
		t.Fatal(err)
	}

	// The same runoff in the layouts that are read whole.
	x, err := data.ReadRunoffNC(runoffNC, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc4, csv := filepath.Join(dir, "runoff.nc4"), filepath.Join(dir, "runoff.csv")
	if err := data.WriteQoutNC(nc4, x, &data.QoutOptions{Var: "runoff", NetCDF4: true}); err != nil {
		t.Fatal(err)
	}
	if err := data.WriteSeries(csv, x); err != nil {
		t.Fatal(err)
	}

	// NaN runoff everywhere but the closure of the gauges.
	cfg, err := data.ReadRAPID(basin)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := diffroute.Select(cfg.Network, diffroute.Options{}, gauges)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Net.Len() >= cfg.Network.Len()*9/10 {
		t.Fatalf("the gauges drain %d of %d reaches: too many for this test", sel.Net.Len(), cfg.Network.Len())
	}
	in := make(map[int64]bool, sel.Net.Len())
	for _, id := range sel.Net.IDs() {
		in[id] = true
	}
	holes := *x
	holes.Data = slices.Clone(x.Data)
	for i, id := range holes.IDs {
		if !in[id] {
			s := holes.Series(0, i)
			for k := range s {
				s[k] = float32(math.NaN())
			}
		}
	}
	holed := filepath.Join(dir, "holes.nc")
	if err := data.WriteQoutNC(holed, &holes, &data.QoutOptions{Var: "runoff"}); err != nil {
		t.Fatal(err)
	}

	var first *diffroute.DataTensor
	for _, runoff := range []string{runoffNC, nc4, csv, holed} {
		name := filepath.Base(runoff)
		out := filepath.Join(dir, "sel_"+name+".nc")
		if err := route(runoff, out, "--outputs", list, "--runoff-units", "m3/s"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := readQ(t, out)
		if !slices.Equal(got.IDs, gauges) || got.T != want.T {
			t.Fatalf("%s: wrote reaches %v x %d steps, want %v x %d", name, got.IDs, got.T, gauges, want.T)
		}
		if first == nil {
			first = got
		} else if !slices.Equal(got.Data, first.Data) {
			t.Errorf("%s: --outputs differs from the run on %s (max relative difference %.3g)", name, filepath.Base(runoffNC), maxRelDiff(t, got, first))
		}
		if d := maxRelDiff(t, got, want); d > 2e-7 {
			t.Errorf("%s: --outputs differs from the full run's columns by %.3g of a peak", name, d)
		}
	}
	if err := route(holed, filepath.Join(dir, "holes_full.nc")); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("full run on runoff with NaN: error %v, want one naming NaN", err)
	}
}

// TestRunoffReachTwiceRefused: a runoff file that lists a reach twice is
// refused, naming the file and the reach, with --outputs (which reads only
// some reaches' columns and once took whichever came last) as without.
func TestRunoffReachTwiceRefused(t *testing.T) {
	dir := t.TempDir()
	basin := filepath.Join(dir, "b")
	if _, err := runCLI(t, "generate", "--out", basin, "--reaches", "60", "--days", "2", "--seed", "4"); err != nil {
		t.Fatal(err)
	}
	x, err := data.ReadRunoffNC(filepath.Join(basin, "runoff.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first reach again as an extra column, with other values.
	id := x.IDs[0]
	y := diffroute.NewDataTensor(1, append(slices.Clone(x.IDs), id), x.T)
	y.Times, y.Step, y.Units = x.Times, x.Step, x.Units
	for i := range x.N {
		copy(y.Series(0, i), x.Series(0, i))
	}
	for k, v := range x.Series(0, 0) {
		y.Series(0, x.N)[k] = 3 * v
	}
	runoff := filepath.Join(dir, "twice.nc")
	if err := data.WriteQoutNC(runoff, y, &data.QoutOptions{Var: "runoff"}); err != nil {
		t.Fatal(err)
	}
	list := filepath.Join(dir, "outputs.txt")
	if err := os.WriteFile(list, []byte(itoa(id)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--outputs", list}, {"--outputs", list, "--time-chunk", "5"}} {
		args := append([]string{"route", "--quiet", "--rapid", basin, "--runoff", runoff, "--out", filepath.Join(dir, "q.nc")}, extra...)
		_, err := runCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), runoff) || !strings.Contains(err.Error(), itoa(id)+" is in the runoff twice") {
			t.Errorf("%v: error %v, want one naming %s and reach %d twice", extra, err, runoff, id)
		}
	}
}
