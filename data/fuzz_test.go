package data

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/diffroute-go/route/diffroute"
)

func seedFile(f *testing.F, name string) {
	b, err := os.ReadFile(filepath.Join(xx9, name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

func FuzzReadRAPIDConnect(f *testing.F) {
	seedFile(f, "rapid_connect.csv")
	f.Add([]byte("10,30,0,0,0\n20,30,0,0,0\n30,-1,2,10,20\n"))
	f.Add([]byte("10,20,0\n20,10,0\n"))
	f.Add([]byte("1,2,1,0\r\n\r\n"))
	f.Add([]byte("10,30,0,0,\n20,30,0,0 ,\r\n30,-1,2,10,20\n"))
	f.Add([]byte("10,30,0,,0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConnect(bytes.NewReader(b), "rapid_connect.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "rapid_connect.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(c.IDs) != len(c.Down) || len(c.IDs) != len(c.upEnd) {
			t.Fatal("ragged result")
		}
		c.check("rapid_connect.csv", c.downPositions())
		// A comma at the end of every line that has none changes nothing.
		lines := strings.Split(string(b), "\n")
		for i, ln := range lines {
			if s := strings.TrimRightFunc(ln, unicode.IsSpace); s != "" && !strings.HasSuffix(s, ",") {
				lines[i] = s + ","
			}
		}
		c2, err := ParseConnect(strings.NewReader(strings.Join(lines, "\n")), "rapid_connect.csv")
		if err != nil {
			t.Fatalf("with trailing commas: %v", err)
		}
		if !slices.Equal(c2.IDs, c.IDs) || !slices.Equal(c2.Down, c.Down) || !slices.Equal(c2.up, c.up) || !slices.Equal(c2.upEnd, c.upEnd) {
			t.Fatal("trailing commas change the result")
		}
	})
}

// FuzzReadRAPID runs the whole folder reader on a fuzzed rapid_connect.csv
// with k, x and riv_bas_id derived from it.
func FuzzReadRAPID(f *testing.F) {
	seedFile(f, "rapid_connect.csv")
	f.Add([]byte("10,20,0,0\n20,30,0,0\n30,10,0,0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConnect(bytes.NewReader(b), "rapid_connect.csv")
		if err != nil {
			return
		}
		var k, bas strings.Builder
		for i := len(c.IDs) - 1; i >= 0; i-- {
			k.WriteString("1\n")
			bas.WriteString(itoa(c.IDs[i]) + "\n")
		}
		dir := writeFiles(t, map[string]string{
			"rapid_connect.csv": string(b), "k.csv": k.String(), "x.csv": k.String(), "riv_bas_id.csv": bas.String(),
		})
		if _, err := ReadRAPID(dir); err == nil {
			return
		} else if !strings.Contains(err.Error(), ".csv") {
			t.Fatalf("error names no file: %v", err)
		}
	})
}

func FuzzReadBasinIDs(f *testing.F) {
	seedFile(f, "riv_bas_id.csv")
	f.Add([]byte("1\n1\n"))
	f.Add([]byte("1,\n2 ,\r\n,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, lines, err := ParseBasinIDs(bytes.NewReader(b), "riv_bas_id.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "riv_bas_id.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(ids) != len(lines) || len(ids) == 0 {
			t.Fatalf("%d ids, %d lines", len(ids), len(lines))
		}
	})
}

func FuzzParseValues(f *testing.F) {
	seedFile(f, "k.csv")
	seedFile(f, "x.csv")
	seedFile(f, "qinit_erai_t511_3hr_20030121to20030122.csv")
	f.Add([]byte("1.5,\n2e3 ,\r\n,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, lines, err := ParseValues(bytes.NewReader(b), "k.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "k.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(vals) != len(lines) {
			t.Fatalf("%d values, %d lines", len(vals), len(lines))
		}
	})
}

func FuzzParseQinit(f *testing.F) {
	r, err := ReadRAPID(xx9)
	if err != nil {
		f.Fatal(err)
	}
	seedFile(f, "qinit_erai_t511_3hr_20030121to20030122.csv")
	f.Add([]byte("rivid,qinit\n17880258,1\n"))
	f.Add([]byte("rivid,qinit,\n17880258,1,\n17880268,,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseQinit(bytes.NewReader(b), "qinit.csv", r)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "qinit.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if len(q) != r.Network.Len() {
			t.Fatalf("%d values", len(q))
		}
		for _, v := range q {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("initial discharge %v", v)
			}
		}
	})
}

func FuzzReadCSVTable(f *testing.F) {
	seedFile(f, "m3_riv.csv")
	seedFile(f, "qout_rapid.csv")
	f.Add([]byte("time,1,2\n2000-01-01,1,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := ReadCSVTable(bytes.NewReader(b), "t.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "t.csv") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := x.Validate(); err != nil {
			t.Fatal(err)
		}
		// Whatever reads must write and read back.
		var buf bytes.Buffer
		if err := WriteCSVTable(&buf, x); err != nil {
			return // e.g. labels that need quoting are not written
		}
		y, err := ReadCSVTable(&buf, "again")
		if err != nil {
			t.Fatalf("re-read: %v\n%s", err, buf.String())
		}
		if y.N != x.N || y.T != x.T {
			t.Fatal("dims changed")
		}
	})
}

func FuzzParseCFUnits(f *testing.F) {
	for _, s := range []string{
		"seconds since 1970-01-01 00:00:00+00:00", "days since 2000-01-01", "hours since 1900-1-1 0:0:0",
		"minutes since 2003-01-21T03:00:00Z", "days since 2000-01-01 00:00:00.5 -05:30", "months since 2000-01-01",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCFUnits(s)
		if err != nil {
			return
		}
		if _, err := ParseCFUnits(c.Units()); err != nil {
			t.Fatalf("%q -> %q: %v", s, c.Units(), err)
		}
		c.Time(1e300)
		for _, v := range []float64{-3, 0, 1.5, 4e6, -1e9} {
			if tt, err := c.Time(v); err == nil {
				if back, err := ParseTime(FormatTime(tt)); err != nil || !back.Equal(tt) {
					t.Fatalf("%q at %v: %s -> %v, %v", s, v, FormatTime(tt), back, err)
				}
			}
		}
	})
}

// FuzzOpenPixelRunoff feeds corrupted Arrow files to both Feather readers,
// uncompressed and compressed: a corrupted LZ4/ZSTD buffer may declare any
// decompressed length, which the readers' allocation budget
// (newFeatherAllocator) turns into an error. Panics inside arrow-go are
// recovered into errors.
func FuzzOpenPixelRunoff(f *testing.F) {
	dir := f.TempDir()
	for i, opt := range []*FeatherOptions{nil, {BatchRows: 2}, {Compression: "lz4"}, {BatchRows: 3, Compression: "zstd"}} {
		p := filepath.Join(dir, "s"+itoa(int64(i)))
		if err := WritePixelRunoff(p, samplePixels(5, 3), opt); err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	w := filepath.Join(dir, "w")
	WriteWeights(w, &Weights{RiverID: []int64{1}, Pixel: []string{"a"}, Area: []float64{1}}, nil)
	b, _ := os.ReadFile(w)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "f.feather")
		os.WriteFile(path, b, 0o644)
		if p, err := OpenPixelRunoff(path); err == nil {
			p.ReadColumns(p.Labels(), nil)
			p.Close()
		}
		ReadWeights(path)
	})
}

// FuzzReadRunoffNC feeds corrupted netCDF classic files to ReadRunoffNC,
// which validates the header (checkClassicNC) before libnetcdf sees it:
// libnetcdf 4.9 crashes on some corrupted classic headers. Inputs without the
// classic magic "CDF" are skipped: libnetcdf would hand them to HDF5, whose
// parser is not hardened against corrupted files and which this package
// cannot validate (netCDF-4 files are trusted as libnetcdf reads them).
func FuzzReadRunoffNC(f *testing.F) {
	for _, p := range append([]string{m3File, qoutFile, qoutInitNC}, ncFormatFiles...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Reach-major FLOAT and DOUBLE layouts, which the direct reader reads
	// reach by reach.
	small := diffroute.NewDataTensor(1, []int64{4, 5, 6}, 4)
	for i := range small.Data {
		small.Data[i] = float32(i) - 2.5
	}
	for _, double := range []bool{false, true} {
		p := filepath.Join(f.TempDir(), "reach-major.nc")
		writeReachMajor(f, p, small, double)
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ids := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !bytes.HasPrefix(b, []byte("CDF")) {
			t.Skip("not a classic netCDF file")
		}
		path := filepath.Join(t.TempDir(), "f.nc")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, opt := range []*NCOptions{nil, {IDs: ids, TimeStart: 1, TimeCount: 2}, {Var: "Qout", TimeCount: -1}, {IDs: ids, Columns: []int32{2, 0}}} {
			x, err := ReadRunoffNC(path, opt)
			// The direct reader of classic files must read what libnetcdf
			// reads, value for value.
			directRead = false
			y, yerr := ReadRunoffNC(path, opt)
			directRead = true
			if (err == nil) != (yerr == nil) {
				t.Fatalf("direct read: error %v; libnetcdf: error %v", err, yerr)
			}
			if err != nil {
				if !strings.Contains(err.Error(), path) {
					t.Fatalf("error names no file: %v", err)
				}
				continue
			}
			if !slices.Equal(x.IDs, y.IDs) || !sameBits(x.Data, y.Data) || !slices.Equal(x.Times, y.Times) {
				t.Fatalf("direct read differs from libnetcdf's")
			}
			if opt == nil || opt.TimeCount >= 0 { // header-only reads keep every label
				if err := x.Validate(); err != nil {
					t.Fatal(err)
				}
			}
			if len(x.Data) > 2*len(b) {
				t.Fatalf("%d values from a %d-byte file", len(x.Data), len(b))
			}
		}
	})
}

// FuzzParseTime checks that every accepted label is an instant within years
// 1-9999 that FormatTime and CFTime.Units write back in a form ParseTime
// reads as the same instant.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2003-01-21T03:00:00Z", "2003-01-21 03:00:00", "2003-1-21 3:0:0.5 +05:30", "2003-01-21",
		"2000-02-29 24:00", "0001-01-01T00:00:00+01:00", "9999-12-31 23:59:59.999999999 -0100", "2003-01-21T03:00:00.25 UTC",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tt, err := ParseTime(s)
		if err != nil {
			return
		}
		if y := tt.Year(); y < 1 || y > 9999 || tt.Location() != time.UTC {
			t.Fatalf("%q -> %v", s, tt)
		}
		back, err := ParseTime(FormatTime(tt))
		if err != nil || !back.Equal(tt) {
			t.Fatalf("%q -> %s -> %v, %v", s, FormatTime(tt), back, err)
		}
		c := CFTime{Unit: time.Second, Epoch: tt.Truncate(time.Second)}
		if d, err := ParseCFUnits(c.Units()); err != nil || !d.Epoch.Equal(c.Epoch) {
			t.Fatalf("%q -> %q -> %v, %v", s, c.Units(), d.Epoch, err)
		}
	})
}

// FuzzReadWeights feeds corrupted weight tables to ReadWeights: integer and
// string pixel labels, one and several record batches, uncompressed and
// ZSTD. Errors must name the file; a table read must
// have equal columns, integral ids and finite areas.
func FuzzReadWeights(f *testing.F) {
	dir := f.TempDir()
	for i, w := range []*Weights{
		{RiverID: []int64{10, 10, 20}, Pixel: []string{"3", "4", "4"}, Area: []float64{1, 2.5, 3}},
		{RiverID: []int64{10, 20}, Pixel: []string{"lat1_lon2", "p"}, Area: []float64{1e6, 0}},
	} {
		for j, opt := range []*FeatherOptions{nil, {BatchRows: 1}, {Compression: "zstd"}} {
			p := filepath.Join(dir, "w"+itoa(int64(3*i+j)))
			if err := WriteWeights(p, w, opt); err != nil {
				f.Fatal(err)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "w.feather")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := ReadWeights(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error names no file: %v", err)
			}
			return
		}
		if len(w.Pixel) != w.Len() || len(w.Area) != w.Len() {
			t.Fatalf("ragged: %d, %d, %d", w.Len(), len(w.Pixel), len(w.Area))
		}
		for _, a := range w.Area {
			if a != a || a-a != 0 {
				t.Fatalf("area %v", a)
			}
		}
	})
}
