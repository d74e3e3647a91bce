package data

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

// Ranges read with the header read once equal ReadRunoffNC's reads of the
// same ranges, in file order, in another order and for some columns; a
// netCDF-4 file is left to ReadRunoffNC.
func TestRunoffRangesMatchReadRunoffNC(t *testing.T) {
	path := filepath.Join("..", "testdata", "demo_basin", "runoff.nc")
	whole, err := ReadRunoffNC(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	N := whole.N
	rev := make([]int32, N)
	for k := range rev {
		rev[k] = int32((k * 7) % N)
	}
	for _, o := range []*NCOptions{{}, {Order: rev}, {Columns: []int32{5, 1, 900}}} {
		rg, err := OpenRunoffRanges(path, o)
		if err != nil || rg == nil {
			t.Fatalf("%v, %v", rg, err)
		}
		if rg.Steps() != whole.T {
			t.Fatalf("%d steps, want %d", rg.Steps(), whole.T)
		}
		for _, r := range [][2]int{{0, 42}, {42, 42}, {360, 5}, {0, whole.T}} {
			want, err := ReadRunoffNC(path, &NCOptions{Order: o.Order, Columns: o.Columns, TimeStart: r[0], TimeCount: r[1]})
			if err != nil {
				t.Fatal(err)
			}
			x := diffroute.NewDataTensor(1, make([]int64, want.N), r[1])
			for i := range x.Data {
				x.Data[i] = float32(math.NaN()) // every value must be overwritten
			}
			if err := rg.Read(x, r[0]); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(x.Data, want.Data) || !slices.Equal(x.IDs, want.IDs) || !slices.Equal(x.Times, want.Times) || x.Step != want.Step || x.Units != want.Units {
				t.Fatalf("order %v columns %v, steps %v: the range differs from ReadRunoffNC's", o.Order != nil, o.Columns, r)
			}
		}
		if err := rg.Read(diffroute.NewDataTensor(1, make([]int64, len(rg.ids)), 3), whole.T-2); err == nil {
			t.Error("a range beyond the file was read")
		}
	}
	nc4 := filepath.Join(t.TempDir(), "r.nc")
	if err := WriteQoutNC(nc4, whole, &QoutOptions{Var: "runoff", NetCDF4: true}); err != nil {
		t.Fatal(err)
	}
	if rg, err := OpenRunoffRanges(nc4, nil); rg != nil || err != nil {
		t.Errorf("netCDF-4: %v, %v; want nil, nil", rg, err)
	}
}
