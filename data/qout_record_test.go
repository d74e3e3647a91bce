package data

import (
	"math"
	"math/rand"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// checkRecordTime checks that time is the record (UNLIMITED) dimension of
// the Qout file at path with T records, through the C API and, where
// ncdump is installed, as ncdump -h prints it.
func checkRecordTime(t *testing.T, path string, T int) {
	t.Helper()
	ncMu.Lock()
	ds, err := netcdf.OpenFile(path, netcdf.NOWRITE)
	if err != nil {
		ncMu.Unlock()
		t.Fatal(err)
	}
	n, unlim, err := ncDimLen(ds, "time")
	ds.Close()
	ncMu.Unlock()
	if err != nil || !unlim || n != uint64(T) {
		t.Fatalf("%s: time has %d steps, unlimited %v (%v); want UNLIMITED with %d", path, n, unlim, err, T)
	}
	if _, err := exec.LookPath("ncdump"); err != nil {
		return
	}
	out, err := exec.Command("ncdump", "-h", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ncdump -h %s: %v\n%s", path, err, out)
	}
	want := "time = UNLIMITED ; // (" + strconv.Itoa(T) + " currently)"
	if !strings.Contains(string(out), want) {
		t.Fatalf("ncdump -h %s lacks %q:\n%s", path, want, out)
	}
}

// readTimeVars returns the time and time_bnds values of a Qout file
// (time_bnds nil when absent).
func readTimeVars(t *testing.T, path string) (tv, bnds []float64) {
	t.Helper()
	ncMu.Lock()
	defer ncMu.Unlock()
	ds, err := netcdf.OpenFile(path, netcdf.NOWRITE)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	v, err := ds.Var("time")
	if err != nil {
		t.Fatal(err)
	}
	if tv, err = readAllFloat64(v); err != nil {
		t.Fatal(err)
	}
	if b, err := ds.Var("time_bnds"); err == nil {
		if bnds, err = readAllFloat64(b); err != nil {
			t.Fatal(err)
		}
	}
	return tv, bnds
}

// TestQoutTimeUnlimited: WriteQoutNC makes time the record dimension, as
// RAPID does, for CF, float and step-index time coordinates and for an empty
// tensor; values, time and time_bnds round-trip.
func TestQoutTimeUnlimited(t *testing.T) {
	dir := t.TempDir()
	x, err := ReadRunoffNC(qoutFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "Qout.nc")
	if err := WriteQoutNC(p, x, nil); err != nil {
		t.Fatal(err)
	}
	checkRecordTime(t, p, xx9Steps)
	y, err := ReadRunoffNC(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(y.IDs, x.IDs) || !slices.Equal(y.Data, x.Data) || !slices.Equal(y.Times, x.Times) || y.Step != x.Step {
		t.Fatalf("round trip differs:\n%v\n%v", x, y)
	}
	// time and time_bnds as in RAPID's file.
	wt, wb := readTimeVars(t, qoutFile)
	gt, gb := readTimeVars(t, p)
	if !slices.Equal(gt, wt) || !slices.Equal(gb, wb) || len(gb) != 2*xx9Steps {
		t.Fatalf("time %v bounds %v, RAPID's %v %v", gt, gb, wt, wb)
	}

	// Step-index and sub-second (float64) time.
	z := diffroute.NewDataTensor(1, []int64{3, 1, 2}, 4)
	for i := range z.Data {
		z.Data[i] = float32(i) * 1.5
	}
	for _, times := range [][]string{nil, {"2020-01-01T00:00:00.5Z", "2020-01-01T00:00:01Z", "2020-01-01T00:00:01.5Z", "2020-01-01T00:00:02Z"}} {
		z.Times = times
		if err := WriteQoutNC(p, z, nil); err != nil {
			t.Fatal(err)
		}
		checkRecordTime(t, p, 4)
		y, err := ReadRunoffNC(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(y.Data, z.Data) || (times != nil && !slices.Equal(y.Times, times)) {
			t.Fatalf("%v: %v %v", times, y.Data, y.Times)
		}
		gt, gb := readTimeVars(t, p)
		if gb != nil || len(gt) != 4 || (times == nil && !slices.Equal(gt, []float64{0, 1, 2, 3})) ||
			(times != nil && gt[0] != 1577836800.5) {
			t.Fatalf("%v: time %v bounds %v", times, gt, gb)
		}
	}

	// No steps: an unlimited dimension with no record.
	e := diffroute.NewDataTensor(1, []int64{5, 6}, 0)
	if err := WriteQoutNC(p, e, nil); err != nil {
		t.Fatal(err)
	}
	checkRecordTime(t, p, 0)
}

// TestQoutWriterTimeUnlimited: a QoutWriter fed time chunks in reverse and
// shuffled order, reaches in several clusters, writes a record-dimension
// file equal to WriteQoutNC's.
func TestQoutWriterTimeUnlimited(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(11))
	x := randomQout(rng, 23, 29)
	whole := filepath.Join(dir, "whole.nc")
	if err := WriteQoutNC(whole, x, nil); err != nil {
		t.Fatal(err)
	}
	checkRecordTime(t, whole, x.T)

	out := filepath.Join(dir, "stream.nc")
	w, err := NewQoutWriter(out, x.IDs, x.Times, x.Step, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	// The last steps first, for all reaches in two clusters of file
	// positions (every third reach, then the others).
	var c1, c2 []int64
	for i, id := range x.IDs {
		if i%3 == 0 {
			c1 = append(c1, id)
		} else {
			c2 = append(c2, id)
		}
	}
	chunks := [][2]int{{20, 29}, {11, 20}, {0, 4}, {4, 11}}
	for k, c := range [][]int64{c2, c1} {
		sub, err := x.SelectIDs(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range chunks {
			if err := w.Write(sub.SliceTime(ch[0], ch[1]), ch[0]); err != nil {
				t.Fatal(err)
			}
		}
		if k == 0 {
			// The records exist from the start; what is not yet written
			// (the first reach, in c1) holds the fill value.
			row := make([]float32, x.N)
			ncMu.Lock()
			err := w.qv.ReadFloat32Slice(row, []uint64{uint64(x.T - 1), 0}, []uint64{1, uint64(x.N)})
			ncMu.Unlock()
			if err != nil || row[0] != 9.96921e+36 || row[1] != x.Data[1*x.T+x.T-1] {
				t.Fatalf("last record before the second cluster: %v %v", row, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkRecordTime(t, out, x.T)
	got, err := ReadRunoffNC(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IDs, x.IDs) || !slices.Equal(got.Times, x.Times) || got.Step != x.Step {
		t.Fatalf("labels differ: %v", got)
	}
	for i := range x.Data {
		if math.Float32bits(got.Data[i]) != math.Float32bits(x.Data[i]) {
			t.Fatalf("value %d: got %v, want %v", i, got.Data[i], x.Data[i])
		}
	}
	wt, wb := readTimeVars(t, whole)
	gt, gb := readTimeVars(t, out)
	if !slices.Equal(gt, wt) || !slices.Equal(gb, wb) || len(gt) != x.T || len(gb) != 2*x.T {
		t.Fatalf("time %v bounds %v, want %v %v", gt, gb, wt, wb)
	}
	t0 := time.Date(2003, 1, 21, 0, 0, 0, 0, time.UTC).Unix()
	for k := range x.T {
		s := float64(t0 + int64(k)*3*3600)
		if gt[k] != s || gb[2*k] != s || gb[2*k+1] != s+3*3600 {
			t.Fatalf("step %d: time %v bounds %v %v", k, gt[k], gb[2*k], gb[2*k+1])
		}
	}
}
