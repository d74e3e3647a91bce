package data

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/fhs/go-netcdf/netcdf"
)

// Cells never written in a variable without _FillValue hold netCDF's
// default fill value: they are missing (NaN), not 1e37 of runoff.
func TestDefaultFillValueIsMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "holes.nc")
	func() {
		ncMu.Lock()
		defer ncMu.Unlock()
		ds, err := netcdf.CreateFile(path, netcdf.CLOBBER)
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		td, _ := ds.AddDim("time", 4)
		rd, _ := ds.AddDim("rivid", 2)
		v, _ := ds.AddVar("runoff", netcdf.FLOAT, []netcdf.Dim{td, rd})
		v.Attr("units").WriteBytes([]byte("m3/s"))
		iv, _ := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{rd})
		ds.EndDef()
		iv.WriteInt32s([]int32{7, 8})
		// Steps 0 and 1 written, 2 and 3 left to the default fill.
		v.WriteFloat32Slice([]float32{1, 2, 3, 4}, []uint64{0, 0}, []uint64{2, 2})
	}()
	x, err := ReadRunoffNC(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if x.At(0, 0, 1) != 3 || !math.IsNaN(float64(x.At(0, 1, 3))) {
		t.Fatalf("written value %v, unwritten %v: want 3 and NaN (missing)", x.At(0, 0, 1), x.At(0, 1, 3))
	}
	if err := x.CheckFinite(); err == nil {
		t.Fatal("a runoff with unwritten cells passes the finiteness check")
	}
}

// A writer killed before renaming its temporary file leaves it behind; the
// next writer of the same output removes it (its process is gone) but
// leaves a live writer's alone.
func TestStaleTempFilesRemoved(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "Qout.nc")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("cannot start a process:", err)
	}
	stale := filepath.Join(dir, ".Qout.nc.tmp-"+strconv.Itoa(dead.Process.Pid)+"-123")
	live := filepath.Join(dir, ".Qout.nc.tmp-"+strconv.Itoa(os.Getppid())+"-456")
	other := filepath.Join(dir, ".other.nc.tmp-"+strconv.Itoa(dead.Process.Pid)+"-789")
	for _, p := range []string{stale, live, other} {
		os.WriteFile(p, []byte("partial"), 0o644)
	}
	q := sampleDischarge(3, 4)
	if err := WriteSeries(out, q); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("the dead writer's temporary file is still there")
	}
	for _, p := range []string{live, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
}

// Errors while writing name the output, not its hidden temporary file, and
// a full disk says so.
func TestOutputErrorsNameTheOutput(t *testing.T) {
	tmp, out := "/d/.q.nc.tmp-12-34", "/d/q.nc"
	err := outputError(&os.PathError{Op: "write", Path: tmp, Err: syscall.ENOSPC}, tmp, out)
	if msg := err.Error(); !strings.Contains(msg, out) || strings.Contains(msg, ".tmp-") || !strings.Contains(msg, "disk is full") {
		t.Errorf("disk full: %q", msg)
	}
	err = outputError(&os.PathError{Op: "write", Path: tmp, Err: syscall.EIO}, tmp, out)
	if msg := err.Error(); !strings.Contains(msg, out) || strings.Contains(msg, ".tmp-") || !errors.Is(err, syscall.EIO) {
		t.Errorf("I/O error: %q", msg)
	}
	// Writing to a full device through the real writers: /dev/full fails
	// every write with ENOSPC.
	if _, err := os.Stat("/dev/full"); err == nil {
		f, _ := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		_, werr := f.Write([]byte("x"))
		f.Close()
		if err := outputError(werr, "/dev/full", out); !strings.Contains(err.Error(), "disk is full") {
			t.Errorf("/dev/full: %v", err)
		}
	}
}
