package data

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// sameTensor compares values by reach id with a relative tolerance.
func sameTensor(t *testing.T, got, want *diffroute.DataTensor, tol float64) {
	t.Helper()
	if got.T != want.T || got.N != want.N {
		t.Fatalf("dims (%d, %d), want (%d, %d)", got.N, got.T, want.N, want.T)
	}
	for i, id := range want.IDs {
		j := slices.Index(got.IDs, id)
		if j < 0 {
			t.Fatalf("reach %d missing", id)
		}
		for s := 0; s < want.T; s++ {
			a, b := float64(got.At(0, j, s)), float64(want.At(0, i, s))
			if !relClose(a, b, tol) && !(math.IsNaN(a) && math.IsNaN(b)) {
				t.Fatalf("reach %d step %d: %v, want %v", id, s, a, b)
			}
		}
	}
}

func TestReadM3RivMatchesCSV(t *testing.T) {
	x, err := ReadRunoffNC(m3File, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ReadCSVTableFile(xx9 + "/m3_riv.csv")
	if err != nil {
		t.Fatal(err)
	}
	sameTensor(t, x, want, 1e-6)
	if !slices.Equal(x.IDs, want.IDs) {
		t.Fatalf("ids %v", x.IDs)
	}
	if x.Units != "m3" {
		t.Fatalf("units %q", x.Units)
	}
	if x.Step != 3*time.Hour {
		t.Fatalf("step %v", x.Step)
	}
	if x.Times[0] != "2003-01-21T00:00:00Z" || x.Times[15] != "2003-01-22T21:00:00Z" {
		t.Fatalf("times %v", x.Times)
	}
	// The zero _FillValue stays 0 (no runoff), not NaN.
	if x.At(0, 0, 0) != 0 {
		t.Fatalf("reach %d: %v", x.IDs[0], x.At(0, 0, 0))
	}
	if err := VolumeToRate(x, x.Step); err != nil {
		t.Fatal(err)
	}
	if x.Units != "m3 s-1" || !relClose(float64(x.At(0, 1, 0)), 0.09419456869363785/10800, 1e-6) {
		t.Fatalf("rate %v %s", x.At(0, 1, 0), x.Units)
	}
	if VolumeToRate(x, 0) == nil {
		t.Fatal("zero step accepted")
	}
}

func TestReadQoutMatchesCSV(t *testing.T) {
	for nc, csv := range map[string]string{qoutFile: "qout_rapid.csv", qoutInitNC: "qout_rapid_init.csv"} {
		x, err := ReadRunoffNC(nc, &NCOptions{Var: "Qout"})
		if err != nil {
			t.Fatal(err)
		}
		want, err := ReadCSVTableFile(filepath.Join(xx9, csv))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(x.IDs, want.IDs) {
			t.Fatalf("%s: ids %v, want %v", nc, x.IDs, want.IDs)
		}
		sameTensor(t, x, want, 1e-6)
		if x.Units != "m3 s-1" {
			t.Fatalf("units %q", x.Units)
		}
	}
}

// writeNC creates a netCDF file for tests through the package mutex.
func writeNC(t *testing.T, path string, mode netcdf.FileMode, build func(ds netcdf.Dataset) error) {
	t.Helper()
	ncMu.Lock()
	defer ncMu.Unlock()
	ds, err := netcdf.CreateFile(path, mode)
	if err != nil {
		t.Fatal(err)
	}
	if err := build(ds); err != nil {
		ds.Close()
		t.Fatal(err)
	}
	if err := ds.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReadXarrayStyle(t *testing.T) {
	// runoff(time, river_id) with int64 ids, double days since a date,
	// NaN fill; DiffHydro's __xarray_dataarray_variable__(time, spatial);
	// and a transposed (river_id, time) layout.
	dir := t.TempDir()
	ids := []int64{5, 7, 3}
	vals := []float64{1, 2, 3, 4, 5, 6} // (time=2, reach=3)
	for _, c := range []struct {
		file, vname, sdim string
		transposed        bool
	}{
		{"xr.nc", "runoff", "river_id", false},
		{"dh.nc", "__xarray_dataarray_variable__", "spatial", false},
		{"tr.nc", "runoff", "river_id", true},
	} {
		path := filepath.Join(dir, c.file)
		writeNC(t, path, netcdf.CLOBBER|netcdf.NETCDF4, func(ds netcdf.Dataset) error {
			td, _ := ds.AddDim("time", 2)
			sd, _ := ds.AddDim(c.sdim, 3)
			dims := []netcdf.Dim{td, sd}
			data := vals
			if c.transposed {
				dims = []netcdf.Dim{sd, td}
				data = []float64{1, 4, 2, 5, 3, 6}
			}
			v, err := ds.AddVar(c.vname, netcdf.DOUBLE, dims)
			if err != nil {
				return err
			}
			iv, _ := ds.AddVar(c.sdim, netcdf.INT64, []netcdf.Dim{sd})
			tv, _ := ds.AddVar("time", netcdf.DOUBLE, []netcdf.Dim{td})
			v.Attr("units").WriteBytes([]byte("mm"))
			tv.Attr("units").WriteBytes([]byte("days since 2000-01-01"))
			tv.Attr("calendar").WriteBytes([]byte("proleptic_gregorian"))
			if err := ds.EndDef(); err != nil {
				return err
			}
			if err := v.WriteFloat64s(data); err != nil {
				return err
			}
			if err := iv.WriteInt64s(ids); err != nil {
				return err
			}
			return tv.WriteFloat64s([]float64{0, 1})
		})
		x, err := ReadRunoffNC(path, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if !slices.Equal(x.IDs, ids) || x.Units != "mm" || x.Step != 24*time.Hour ||
			!slices.Equal(x.Times, []string{"2000-01-01T00:00:00Z", "2000-01-02T00:00:00Z"}) {
			t.Fatalf("%s: %v %v %q %v", c.file, x.IDs, x.Times, x.Units, x.Step)
		}
		// reach 7 is column 1: values 2 (t=0) and 5 (t=1).
		if x.At(0, 1, 0) != 2 || x.At(0, 1, 1) != 5 {
			t.Fatalf("%s: series %v", c.file, x.Series(0, 1))
		}
	}
}

func TestReadNoRivid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m3.nc")
	writeNC(t, path, netcdf.CLOBBER, func(ds netcdf.Dataset) error {
		td, _ := ds.AddDim("time", 2)
		sd, _ := ds.AddDim("rivid", 2)
		v, _ := ds.AddVar("m3_riv", netcdf.FLOAT, []netcdf.Dim{td, sd})
		v.Attr("units").WriteBytes([]byte("m3"))
		v.Attr("_FillValue").WriteFloat32s([]float32{-9999})
		if err := ds.EndDef(); err != nil {
			return err
		}
		return v.WriteFloat32s([]float32{1, -9999, 3, 4})
	})
	if _, err := ReadRunoffNC(path, nil); err == nil || !strings.Contains(err.Error(), "no reach id variable") {
		t.Fatalf("want an error about ids, got %v", err)
	}
	if _, err := ReadRunoffNC(path, &NCOptions{IDs: []int64{1}}); err == nil {
		t.Fatal("wrong id count accepted")
	}
	x, err := ReadRunoffNC(path, &NCOptions{IDs: []int64{11, 12}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(x.IDs, []int64{11, 12}) || x.At(0, 0, 1) != 3 || !math.IsNaN(float64(x.At(0, 1, 0))) {
		t.Fatalf("%v %v", x.IDs, x.Data)
	}
	if len(x.Times) != 0 || x.Step != 0 {
		t.Fatalf("times %v step %v", x.Times, x.Step)
	}
	if _, err := ReadRunoffNC(path, &NCOptions{Var: "nope"}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown var: %v", err)
	}
	if _, err := ReadRunoffNC(filepath.Join(t.TempDir(), "missing.nc"), nil); err == nil {
		t.Fatal("missing file accepted")
	}
}

func TestQoutRoundTrip(t *testing.T) {
	x, err := ReadRunoffNC(qoutFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "Qout.nc")
	if err := WriteQoutNC(out, x, &QoutOptions{Comment: "test"}); err != nil {
		t.Fatal(err)
	}
	y, err := ReadRunoffNC(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(x.IDs, y.IDs) || !slices.Equal(x.Data, y.Data) || !slices.Equal(x.Times, y.Times) || y.Step != x.Step || y.Units != "m3 s-1" {
		t.Fatalf("round trip differs:\n%v\n%v", x, y)
	}
	// Attributes, types and bounds like RAPID's.
	ncMu.Lock()
	ds, err := netcdf.OpenFile(out, netcdf.NOWRITE)
	if err != nil {
		ncMu.Unlock()
		t.Fatal(err)
	}
	g, _ := ds.Var("Qout")
	gt, _ := g.Type()
	tv, _ := ds.Var("time")
	tt, _ := tv.Type()
	rv, _ := ds.Var("rivid")
	rt, _ := rv.Type()
	bv, berr := ds.Var("time_bnds")
	var bnds []float64
	if berr == nil {
		bnds, _ = readAllFloat64(bv)
	}
	ds.Close()
	ncMu.Unlock()
	if gt != netcdf.FLOAT || tt != netcdf.INT || rt != netcdf.INT || berr != nil || bnds[1]-bnds[0] != xx9StepSecs {
		t.Fatalf("types %v %v %v bounds %v %v", gt, tt, rt, berr, bnds)
	}
	checkGlobal(t, out, "Conventions", "CF-1.6")
	checkGlobal(t, out, "featureType", "timeSeries")

	// CSV round trip of the same tensor.
	csv := filepath.Join(dir, "q.csv")
	if err := WriteCSVTableFile(csv, x); err != nil {
		t.Fatal(err)
	}
	z, err := ReadCSVTableFile(csv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(x.IDs, z.IDs) || !slices.Equal(x.Data, z.Data) || !slices.Equal(x.Times, z.Times) || z.Step != x.Step {
		t.Fatalf("CSV round trip differs")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("leftover files: %v", entries)
	}
}

func checkGlobal(t *testing.T, path, name, want string) {
	t.Helper()
	ncMu.Lock()
	defer ncMu.Unlock()
	ds, err := netcdf.OpenFile(path, netcdf.NOWRITE)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	a := ds.Attr(name)
	n, err := a.Len()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b := make([]byte, n)
	a.ReadBytes(b)
	if string(b) != want {
		t.Fatalf("%s = %q, want %q", name, b, want)
	}
}

func TestQoutWriteIndexTimesAndFloatTimes(t *testing.T) {
	dir := t.TempDir()
	x := diffroute.NewDataTensor(1, []int64{3, 1, 2}, 4)
	for i := range x.Data {
		x.Data[i] = float32(i) / 7
	}
	// No labels: step index.
	p := filepath.Join(dir, "a.nc")
	if err := WriteQoutNC(p, x, nil); err != nil {
		t.Fatal(err)
	}
	y, err := ReadRunoffNC(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(y.IDs, x.IDs) || !slices.Equal(y.Data, x.Data) || !slices.Equal(y.Times, []string{"0", "1", "2", "3"}) {
		t.Fatalf("%v %v", y.IDs, y.Times)
	}
	// Sub-second labels: float64 time.
	x.Times = []string{"2020-01-01T00:00:00.5Z", "2020-01-01T00:00:01Z", "2020-01-01T00:00:01.5Z", "2020-01-01T00:00:02Z"}
	if err := WriteQoutNC(p, x, nil); err != nil {
		t.Fatal(err)
	}
	y, err = ReadRunoffNC(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(y.Times, x.Times) || y.Step != 500*time.Millisecond {
		t.Fatalf("%v %v", y.Times, y.Step)
	}
}

func TestQoutWriteErrorsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "q.nc")
	bad := []*diffroute.DataTensor{
		diffroute.NewDataTensor(2, []int64{1}, 3),                     // batch > 1
		{B: 1, N: 1, T: 2, Data: []float32{1}, IDs: []int64{1}},       // inconsistent
		{B: 1, N: 1, T: 1, Data: []float32{1}, IDs: []int64{1 << 40}}, // id beyond int32
		{B: 1, N: 1, T: 1, Data: []float32{1}, IDs: []int64{1}, Units: "m3"},
	}
	for i, x := range bad {
		if err := WriteQoutNC(p, x, nil); err == nil {
			t.Fatalf("case %d accepted", i)
		}
	}
	// A folder in the way makes the rename fail after the file was written.
	os.Mkdir(p, 0o755)
	os.WriteFile(filepath.Join(p, "x"), nil, 0o644)
	if err := WriteQoutNC(p, diffroute.NewDataTensor(1, []int64{1}, 1), nil); err == nil {
		t.Fatal("rename over a folder succeeded")
	}
	if err := WriteCSVTableFile(p, diffroute.NewDataTensor(1, []int64{1}, 1)); err == nil {
		t.Fatal("rename over a folder succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || !entries[0].IsDir() {
		t.Fatalf("leftovers: %v", entries)
	}
	// Missing folder.
	if err := WriteQoutNC(filepath.Join(dir, "no", "q.nc"), diffroute.NewDataTensor(1, []int64{1}, 1), nil); err == nil {
		t.Fatal("write into a missing folder succeeded")
	}
}

func TestConcurrentNetCDF(t *testing.T) {
	done := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := ReadRunoffNC(m3File, nil)
			done <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
