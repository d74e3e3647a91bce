package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhs/go-netcdf/netcdf"
)

// TestReadRunoffNCCorruptHeader: a classic file whose header declares far
// more data than the file holds is rejected before libnetcdf reads it (else
// the reader allocates what the header declares: here 2 GiB of float64 for
// a 3 kB file).
func TestReadRunoffNCCorruptHeader(t *testing.T) {
	b, err := os.ReadFile(m3File)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, patch := range map[string]func([]byte){
		"timelen": func(b []byte) { binary.BigEndian.PutUint32(b[24:], 1<<28) }, // time = 2^28
		"ndims":   func(b []byte) { binary.BigEndian.PutUint32(b[12:], 1<<30) },
		"version": func(b []byte) { b[3] = 7 },
		"short":   nil,
	} {
		c := bytes.Clone(b)
		if patch != nil {
			patch(c)
		} else {
			c = c[:len(c)-100]
		}
		path := filepath.Join(dir, name+".nc")
		if err := os.WriteFile(path, c, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadRunoffNC(path, nil)
		if err == nil || !strings.HasPrefix(err.Error(), path+": corrupt netCDF classic header") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Record-dimension copies of the xx9 Qout file (time UNLIMITED), made with
// ncdump | ncgen -k 1 and -k 5: the header check must accept record
// variables and CDF-5's 64-bit counts.
var ncFormatFiles = []string{"testdata/nc/qout_record_cdf1.nc", "testdata/nc/qout_record_cdf5.nc"}

func TestReadRunoffNCFormats(t *testing.T) {
	want, err := ReadRunoffNC(qoutFile, &NCOptions{Var: "Qout"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ncFormatFiles {
		x, err := ReadRunoffNC(p, &NCOptions{Var: "Qout"})
		if err != nil {
			t.Fatal(err)
		}
		sameTensor(t, x, want, 1e-6) // ncdump prints floats to 7 digits
		if x.Step != want.Step || x.Times[15] != want.Times[15] {
			t.Fatalf("%s: %v", p, x)
		}
	}
}

func TestReadRunoffNCCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	for i, src := range ncFormatFiles {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		huge := bytes.Clone(b)
		if i == 0 {
			binary.BigEndian.PutUint32(huge[4:], 1<<30) // numrecs
		} else {
			binary.BigEndian.PutUint64(huge[4:], 1<<40)
		}
		for name, c := range map[string][]byte{"numrecs": huge, "short": b[:len(b)-40]} {
			path := filepath.Join(dir, filepath.Base(src)+"."+name)
			if err := os.WriteFile(path, c, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadRunoffNC(path, &NCOptions{Var: "Qout"})
			if err == nil || !strings.HasPrefix(err.Error(), path+": corrupt netCDF classic header") {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// TestCheckClassicNCLongHeader: a header longer than the first read (a
// 300 kB history attribute) is read on, not taken for a truncated one.
func TestCheckClassicNCLongHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "long.nc")
	ds, err := netcdf.CreateFile(path, netcdf.CLOBBER|netcdf.OFFSET_64BIT)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ds.AddDim("x", 3)
	if err == nil {
		err = ds.Attr("history").WriteBytes(bytes.Repeat([]byte("h"), 300<<10))
	}
	var v netcdf.Var
	if err == nil {
		v, err = ds.AddVar("v", netcdf.DOUBLE, []netcdf.Dim{d})
	}
	if err == nil {
		err = ds.EndDef()
	}
	if err == nil {
		err = v.WriteFloat64s([]float64{1, 2, 3})
	}
	if cerr := ds.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := checkClassicNC(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:200<<10], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkClassicNC(path); err == nil || !strings.Contains(err.Error(), "corrupt netCDF classic header") {
		t.Fatalf("truncated header: %v", err)
	}
}
