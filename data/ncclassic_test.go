package data

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhs/go-netcdf/netcdf"

	"github.com/diffroute-go/route/diffroute"
)

// writeReachMajor writes q as a fixed (rivid, time) FLOAT or DOUBLE
// variable "runoff" of a classic file, with rivid ids.
func writeReachMajor(t *testing.T, path string, q *diffroute.DataTensor, double bool) {
	t.Helper()
	ds, err := netcdf.CreateFile(path, netcdf.CLOBBER|netcdf.OFFSET_64BIT)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	dr, err := ds.AddDim("rivid", uint64(q.N))
	if err != nil {
		t.Fatal(err)
	}
	dt, err := ds.AddDim("time", uint64(q.T))
	if err != nil {
		t.Fatal(err)
	}
	typ := netcdf.FLOAT
	if double {
		typ = netcdf.DOUBLE
	}
	v, err := ds.AddVar("runoff", typ, []netcdf.Dim{dr, dt})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Attr("units").WriteBytes([]byte("m3 s-1")); err != nil {
		t.Fatal(err)
	}
	iv, err := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{dr})
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.EndDef(); err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, q.N)
	for i, id := range q.IDs {
		ids[i] = int32(id)
	}
	if err := iv.WriteInt32s(ids); err != nil {
		t.Fatal(err)
	}
	if double {
		d := make([]float64, len(q.Data))
		for i, x := range q.Data {
			d[i] = float64(x)
		}
		err = v.WriteFloat64s(d)
	} else {
		err = v.WriteFloat32s(q.Data)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// sameBits compares float32 series, NaN equal to NaN.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(float64(a[i])) && math.IsNaN(float64(b[i]))) {
			return false
		}
	}
	return true
}

// TestReadColumns reads a random subset of reaches, in a random order,
// from every layout: classic time-major records (read straight from the
// file, in several blocks), classic reach-major FLOAT and DOUBLE, netCDF-4
// and CSV (read whole by libnetcdf or the CSV reader, then picked). Each
// row must be the written reach's series for the steps asked, value for
// value, and netCDF's default fill value must read as NaN on every path.
func TestReadColumns(t *testing.T) {
	defer func(b int) { classicBlock = b }(classicBlock)
	classicBlock = 64 * 4 * 24 // blocks of 24 reaches × 64 steps
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 4))
	n, steps := 300, 150
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(5000 + 3*i)
	}
	q := diffroute.NewDataTensor(1, ids, steps)
	q.Units = "m3/s"
	for i := range q.Data {
		q.Data[i] = rng.Float32() * 50
	}
	const fillFloat = float32(9.9692099683868690e+36) // netCDF's default FLOAT fill
	q.Data[7*steps+3] = fillFloat
	want := func(c, t int) float32 {
		if v := q.At(0, c, t); v != fillFloat {
			return v
		}
		return float32(math.NaN())
	}
	// A scattered subset, a contiguous run and the last reach.
	var cols []int32
	for _, c := range rng.Perm(n)[:40] {
		cols = append(cols, int32(c))
	}
	for c := int32(120); c < 150; c++ {
		if !containsInt32(cols, c) {
			cols = append(cols, c)
		}
	}
	if !containsInt32(cols, int32(n-1)) {
		cols = append(cols, int32(n-1))
	}
	if !containsInt32(cols, 7) {
		cols = append(cols, 7)
	}

	files := map[string]func(string){
		"records.nc": func(p string) {
			if err := WriteQoutNC(p, q, &QoutOptions{Var: "runoff"}); err != nil {
				t.Fatal(err)
			}
		},
		"q.nc4": func(p string) {
			if err := WriteQoutNC(p, q, &QoutOptions{Var: "runoff", NetCDF4: true}); err != nil {
				t.Fatal(err)
			}
		},
		"reach-major.nc":        func(p string) { writeReachMajor(t, p, q, false) },
		"reach-major-double.nc": func(p string) { writeReachMajor(t, p, q, true) },
	}
	for name, write := range files {
		path := filepath.Join(dir, name)
		write(path)
		for _, r := range []struct{ t0, count int }{{0, 0}, {17, 100}} {
			got, err := ReadSeries(path, &NCOptions{Columns: cols, TimeStart: r.t0, TimeCount: r.count})
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			T := steps - r.t0
			if r.count > 0 {
				T = r.count
			}
			if got.N != len(cols) || got.T != T {
				t.Fatalf("%s: read %d reaches x %d steps, want %d x %d", name, got.N, got.T, len(cols), T)
			}
			for k, c := range cols {
				w := make([]float32, T)
				for s := range w {
					w[s] = want(int(c), r.t0+s)
				}
				if got.IDs[k] != ids[c] || !sameBits(got.Series(0, k), w) {
					t.Fatalf("%s, steps from %d: row %d is not reach %d (position %d)", name, r.t0, k, ids[c], c)
				}
			}
		}
		// The whole file too, on the same path.
		all, err := ReadSeries(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for c := range n {
			w := make([]float32, steps)
			for s := range w {
				w[s] = want(c, s)
			}
			if !sameBits(all.Series(0, c), w) {
				t.Fatalf("%s: whole read: reach %d differs", name, ids[c])
			}
		}
		for _, bad := range [][]int32{{3, 3}, {int32(n)}, {-1}} {
			if _, err := ReadSeries(path, &NCOptions{Columns: bad}); err == nil || !strings.Contains(err.Error(), "reach position") {
				t.Errorf("%s: columns %v: error %v, want one naming the reach position", name, bad, err)
			}
		}
	}

	// CSV is read whole and the columns picked.
	small := diffroute.NewDataTensor(1, ids[:20], 5)
	copy(small.Data, q.Data)
	small.Units = "m3/s"
	csv := filepath.Join(dir, "q.csv")
	if err := WriteSeries(csv, small); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSeries(csv, &NCOptions{Columns: []int32{19, 0, 4}})
	if err != nil {
		t.Fatal(err)
	}
	for k, c := range []int{19, 0, 4} {
		if got.IDs[k] != small.IDs[c] || !sameBits(got.Series(0, k), small.Series(0, c)) {
			t.Fatalf("csv: row %d is not reach %d", k, small.IDs[c])
		}
	}
}

func containsInt32(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestReadReachRecords reads a (rivid, time) variable whose reach dimension
// is the unlimited one (each reach a record): the direct reader leaves it
// to libnetcdf, whole and by columns, instead of refusing the layout.
func TestReadReachRecords(t *testing.T) {
	n, steps := 7, 5
	ids := []int64{11, 12, 13, 14, 15, 16, 17}
	vals := make([]float32, n*steps)
	for i := range vals {
		vals[i] = float32(i) + 0.25
	}
	path := filepath.Join(t.TempDir(), "reach-records.nc")
	func() {
		ncMu.Lock()
		defer ncMu.Unlock()
		ds, err := netcdf.CreateFile(path, netcdf.CLOBBER)
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		dr, err := ds.AddDim("rivid", ncUnlimited)
		if err != nil {
			t.Fatal(err)
		}
		dt, err := ds.AddDim("time", uint64(steps))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ds.AddVar("m3_riv", netcdf.FLOAT, []netcdf.Dim{dr, dt}); err != nil {
			t.Fatal(err)
		}
		if _, err := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{dr}); err != nil {
			t.Fatal(err)
		}
		if err := ds.EndDef(); err != nil {
			t.Fatal(err)
		}
		v, err := recVar(ds, "m3_riv")
		if err != nil {
			t.Fatal(err)
		}
		if err := v.putFloat32(vals, []uint64{0, 0}, []uint64{uint64(n), uint64(steps)}); err != nil {
			t.Fatal(err)
		}
		iv, err := recVar(ds, "rivid")
		if err != nil {
			t.Fatal(err)
		}
		id32 := make([]int32, n)
		for i, id := range ids {
			id32[i] = int32(id)
		}
		if err := iv.putInt32(id32, []uint64{0}, []uint64{uint64(n)}); err != nil {
			t.Fatal(err)
		}
	}()
	for _, cols := range [][]int32{nil, {6, 0, 3}} {
		x, err := ReadRunoffNC(path, &NCOptions{Columns: cols})
		if err != nil {
			t.Fatalf("columns %v: %v", cols, err)
		}
		rows := cols
		if rows == nil {
			rows = []int32{0, 1, 2, 3, 4, 5, 6}
		}
		for k, c := range rows {
			if x.IDs[k] != ids[c] || !sameBits(x.Series(0, k), vals[int(c)*steps:int(c+1)*steps]) {
				t.Fatalf("columns %v: row %d is not reach %d: %v", cols, k, ids[c], x.Series(0, k))
			}
		}
	}
}
