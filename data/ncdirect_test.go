package data

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// The direct reader must read what libnetcdf reads, bit for bit, in every
// classic layout: CDF-1, CDF-2, CDF-5; record and fixed variables (records
// holding other variables, padded); float and double; fill, missing,
// scale and offset; time ranges and row orders.
func TestDirectReadMatchesLibnetcdf(t *testing.T) {
	dir := t.TempDir()
	const T, N = 5, 37
	nan := math.NaN()
	type attr struct {
		name string
		val  float64
	}
	cases := []struct {
		mode  netcdf.FileMode
		typ   netcdf.Type
		rec   bool
		extra bool // a second record variable of odd size: padded records
		attrs []attr
	}{
		{netcdf.CLOBBER, netcdf.FLOAT, true, false, nil},
		{netcdf.CLOBBER | netcdf.OFFSET_64BIT, netcdf.FLOAT, true, true, []attr{{"_FillValue", -9999}}},
		{netcdf.CLOBBER | netcdf.FileMode(0x20), netcdf.FLOAT, false, false, []attr{{"missing_value", 7}, {"scale_factor", 0.5}, {"add_offset", 1.25}}},
		{netcdf.CLOBBER | netcdf.OFFSET_64BIT, netcdf.DOUBLE, true, true, []attr{{"_FillValue", 0.1}}},
		{netcdf.CLOBBER, netcdf.DOUBLE, false, false, []attr{{"scale_factor", 3}}},
		{netcdf.CLOBBER, netcdf.FLOAT, false, true, []attr{{"missing_value", 0.1}}}, // not a float32: never matches
		{netcdf.CLOBBER, netcdf.FLOAT, true, false, []attr{{"_FillValue", 0}}},
	}
	for k, c := range cases {
		path := filepath.Join(dir, fmt.Sprintf("c%d.nc", k))
		writeNC(t, path, c.mode, func(ds netcdf.Dataset) error {
			tl := uint64(T)
			if c.rec {
				tl = 0
			}
			td, _ := ds.AddDim("time", tl)
			rd, _ := ds.AddDim("rivid", N)
			v, err := ds.AddVar("m3_riv", c.typ, []netcdf.Dim{td, rd})
			if err != nil {
				return err
			}
			iv, _ := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{rd})
			tv, _ := ds.AddVar("time", netcdf.INT, []netcdf.Dim{td})
			tv.Attr("units").WriteBytes([]byte("seconds since 2000-01-01"))
			var ev netcdf.Var
			if c.extra {
				bd, _ := ds.AddDim("three", 3)
				ev, _ = ds.AddVar("flags", netcdf.BYTE, []netcdf.Dim{td, bd})
			}
			for _, a := range c.attrs {
				if c.typ == netcdf.FLOAT && a.name == "_FillValue" {
					v.Attr(a.name).WriteFloat32s([]float32{float32(a.val)})
				} else {
					v.Attr(a.name).WriteFloat64s([]float64{a.val})
				}
			}
			if err := ds.EndDef(); err != nil {
				return err
			}
			vals := make([]float64, T*N)
			for i := range vals {
				vals[i] = float64(i%11) - 2.5 + float64(i)/7
				switch i % 13 {
				case 3:
					vals[i] = -9999
				case 5:
					vals[i] = 7
				case 8:
					vals[i] = 0.1
				case 9:
					vals[i] = nan
				}
			}
			ids := make([]int32, N)
			for i := range ids {
				ids[i] = int32(100 + 3*i)
			}
			secs := []int32{0, 86400, 2 * 86400, 3 * 86400, 4 * 86400}
			if c.rec {
				r, err := recVar(ds, "m3_riv")
				if err != nil {
					return err
				}
				tr, _ := recVar(ds, "time")
				if err := tr.putInt32(secs, []uint64{0}, []uint64{T}); err != nil {
					return err
				}
				if c.extra {
					er, _ := recVar(ds, "flags")
					b := make([]int32, 3*T)
					if err := er.putInt32(b, []uint64{0, 0}, []uint64{T, 3}); err != nil {
						return err
					}
				}
				if err := r.putFloat64(vals, []uint64{0, 0}, []uint64{T, N}); err != nil {
					return err
				}
			} else {
				if c.typ == netcdf.FLOAT {
					f := make([]float32, len(vals))
					for i, x := range vals {
						f[i] = float32(x)
					}
					if err := v.WriteFloat32s(f); err != nil {
						return err
					}
				} else if err := v.WriteFloat64s(vals); err != nil {
					return err
				}
				if err := tv.WriteInt32s(secs); err != nil {
					return err
				}
				if c.extra {
					ev.WriteInt8s(make([]int8, 3*T))
				}
			}
			return iv.WriteInt32s(ids)
		})
		order := make([]int32, N)
		for i := range order {
			order[i] = int32((i * 10) % N)
		}
		for _, o := range []NCOptions{{}, {TimeStart: 1, TimeCount: 3}, {TimeStart: 4, Order: order}, {Order: order}} {
			read := func(direct bool) []float32 {
				defer func(d bool) { directRead = d }(directRead)
				directRead = direct
				x, err := ReadRunoffNC(path, &o)
				if err != nil {
					t.Fatalf("case %d, %+v: %v", k, o, err)
				}
				return x.Data
			}
			got, want := read(true), read(false)
			if !slices.EqualFunc(got, want, func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) || a != a && b != b }) {
				t.Fatalf("case %d, %+v: direct read %v, libnetcdf %v", k, o, got, want)
			}
		}
	}
}

// The direct writer must write the file libnetcdf writes, byte for byte
// (the creation date apart): with and without an order, dated and
// undated times, coordinates, one step or several, several blocks.
func TestDirectWriteMatchesLibnetcdf(t *testing.T) {
	dir := t.TempDir()
	for k, c := range []struct {
		N, T   int
		dated  bool
		order  bool
		coords bool
	}{
		{7, 3, true, false, false},
		{7, 1, false, true, true},
		{40000, 3, true, true, false},
		{33000, 2, false, false, true},
		{2500, 1500, true, true, false}, // blocks of 1,024 reaches, the last one partial
	} {
		ids := make([]int64, c.N)
		for i := range ids {
			ids[i] = int64(1000 + 7*i)
		}
		x := diffroute.NewDataTensor(1, ids, c.T)
		for i := range x.Data {
			x.Data[i] = float32(i%97)*0.37 - 3
		}
		x.Units = "m3/s"
		if c.dated {
			x.Step = time.Hour
			for s := 0; s < c.T; s++ {
				x.Times = append(x.Times, FormatTime(time.Date(2001, 2, 3, s, 0, 0, 0, time.UTC)))
			}
		}
		o := &QoutOptions{Comment: "test"}
		if c.order {
			o.Order = make([]int32, c.N)
			for j := range o.Order {
				o.Order[j] = int32((j * 11) % c.N)
			}
			if c.N%11 == 0 {
				t.Fatal("11 must not divide N")
			}
		}
		if c.coords {
			o.Lat, o.Lon = make([]float64, c.N), make([]float64, c.N)
			for i := range o.Lat {
				o.Lat[i], o.Lon[i] = float64(i)/float64(c.N), -float64(i)/float64(c.N)
			}
		}
		write := func(direct bool) []byte {
			defer func(d bool) { directWrite = d }(directWrite)
			directWrite = direct
			path := filepath.Join(dir, fmt.Sprintf("q%d-%v.nc", k, direct))
			if err := WriteQoutNC(path, x, o); err != nil {
				t.Fatalf("case %d: %v", k, err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		got, want := write(true), write(false)
		date := regexp.MustCompile(`date_created: [0-9T:Z-]+`)
		got, want = date.ReplaceAll(got, nil), date.ReplaceAll(want, nil)
		if !bytes.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Fatalf("case %d: direct write differs from libnetcdf's at byte %d (%d and %d bytes)", k, i, len(got), len(want))
		}
	}
}
