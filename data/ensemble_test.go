package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// sampleEnsemble is B members of discharge that differ member by member.
func sampleEnsemble(B, n, T int) *diffroute.DataTensor {
	one := sampleDischarge(n, T)
	q := diffroute.NewDataTensor(B, one.IDs, T)
	q.Units, q.Step, q.Times = one.Units, one.Step, one.Times
	for b := 0; b < B; b++ {
		for k, v := range one.Data {
			q.Data[b*n*T+k] = v * float32(1+b) / 3
		}
	}
	return q
}

// An ensemble written whole or in time pieces, classic or netCDF-4, reads
// back member by member, whole or as a time range.
func TestEnsembleNCRoundTrip(t *testing.T) {
	dir := t.TempDir()
	q := sampleEnsemble(3, 40, 25)
	for _, name := range []string{"e.nc", "e.nc4"} {
		whole := filepath.Join(dir, name)
		if err := WriteEnsembleNC(whole, q, false); err != nil {
			t.Fatal(err)
		}
		pieces := filepath.Join(dir, "p"+name)
		w, err := NewEnsembleWriter(pieces, q.B, q.IDs, q.Times, q.Step, &QoutOptions{NetCDF4: strings.HasSuffix(name, "4"), Compress: 0})
		if err != nil {
			t.Fatal(err)
		}
		for t0 := 0; t0 < q.T; t0 += 7 { // out of order: last piece first
			t0 := q.T - 7 - t0
			a := max(0, t0)
			if err := w.Write(q.SliceTime(a, t0+7), a); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{whole, pieces} {
			got, err := ReadRunoffNC(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.B != q.B {
				t.Fatalf("%s: %d members, want %d", p, got.B, q.B)
			}
			sameEnsemble(t, got, q)
			part, err := ReadRunoffNC(p, &NCOptions{TimeStart: 5, TimeCount: 9})
			if err != nil {
				t.Fatal(err)
			}
			sameEnsemble(t, part, q.SliceTime(5, 14))
			head, err := ReadRunoffNC(p, &NCOptions{TimeCount: -1})
			if err != nil || head.B != q.B || len(head.Times) != q.T {
				t.Fatalf("%s: header read %v members, %v labels: %v", p, head.B, len(head.Times), err)
			}
		}
	}
}

func sameEnsemble(t *testing.T, got, want *diffroute.DataTensor) {
	t.Helper()
	if got.B != want.B || got.N != want.N || got.T != want.T {
		t.Fatalf("got %d×%d×%d, want %d×%d×%d", got.B, got.N, got.T, want.B, want.N, want.T)
	}
	for b := 0; b < want.B; b++ {
		g := got.Member(b)
		sameSeries(t, g, want.Member(b))
	}
}

// A writer that misses a step leaves nothing at its path; a piece with the
// wrong members or reaches is refused.
func TestEnsembleWriterRefuses(t *testing.T) {
	dir := t.TempDir()
	q := sampleEnsemble(2, 10, 6)
	p := filepath.Join(dir, "e.nc")
	w, err := NewEnsembleWriter(p, 2, q.IDs, q.Times, q.Step, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(q.Member(0), 0); err == nil {
		t.Error("one member written to a 2-member file")
	}
	if err := w.Write(q.SliceTime(0, 5), 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "step 5") {
		t.Errorf("a missing step closed with %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %d files behind", len(ents))
	}
}

// runoff(rivid, member, time): the member dimension anywhere, time last.
func TestReadMemberDimensionAnywhere(t *testing.T) {
	p := filepath.Join(t.TempDir(), "r.nc")
	const N, B, T = 4, 3, 5
	ds, err := netcdf.CreateFile(p, netcdf.CLOBBER)
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := ds.AddDim("rivid", N)
	md, _ := ds.AddDim("ensemble", B)
	td, _ := ds.AddDim("time", T)
	v, _ := ds.AddVar("runoff", netcdf.FLOAT, []netcdf.Dim{rd, md, td})
	rv, _ := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{rd})
	tv, _ := ds.AddVar("time", netcdf.DOUBLE, []netcdf.Dim{td})
	writeText(v.Attr("units"), "m3/s")
	writeText(tv.Attr("units"), "days since 2000-01-01")
	if err := ds.EndDef(); err != nil {
		t.Fatal(err)
	}
	vals := make([]float32, N*B*T)
	for k := range vals {
		vals[k] = float32(k)
	}
	v.WriteFloat32s(vals)
	rv.WriteInt32s([]int32{11, 12, 13, 14})
	tv.WriteFloat64s([]float64{0, 1, 2, 3, 4})
	ds.Close()
	x, err := ReadRunoffNC(p, &NCOptions{TimeStart: 1, TimeCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	if x.B != B || x.N != N || x.T != 3 || x.Step != 24*time.Hour {
		t.Fatalf("read %d×%d×%d, step %v", x.B, x.N, x.T, x.Step)
	}
	for b := 0; b < B; b++ {
		for i := 0; i < N; i++ {
			for tt := 0; tt < 3; tt++ {
				if got, want := x.At(b, i, tt), float32((i*B+b)*T+tt+1); got != want {
					t.Fatalf("member %d reach %d step %d: %v, want %v", b, i, tt, got, want)
				}
			}
		}
	}
}
