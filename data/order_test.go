package data

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

// TestSeriesOrder: a table written with SeriesOptions.Order lists q's rows
// in that order (netCDF directly, CSV from a copy), and reading it back
// with NCOptions.Order = the same order gives q again, value for value —
// on a table large enough to take several reading and writing boxes.
func TestSeriesOrder(t *testing.T) {
	dir := t.TempDir()
	defer func(b int) { ncBox = b }(ncBox)
	ncBox = 2048 // several boxes: 1,024 and 76 time steps × 2 reaches
	rng := rand.New(rand.NewPCG(1, 2))
	n, steps := 300, 1100
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(1000 + 7*i)
	}
	q := diffroute.NewDataTensor(1, ids, steps)
	q.Units = "m3/s"
	for i := range q.Data {
		q.Data[i] = rng.Float32() * 100
	}
	order := make([]int32, n)
	for k, v := range rng.Perm(n) {
		order[k] = int32(v)
	}
	for _, name := range []string{"q.nc", "q.nc4", "q.csv"} {
		path := filepath.Join(dir, name)
		if name == "q.csv" { // CSV: a small table is enough
			small := diffroute.NewDataTensor(1, ids[:50], 7)
			copy(small.Data, q.Data)
			small.Units = "m3/s"
			so := make([]int32, 50)
			for k, v := range rng.Perm(50) {
				so[k] = int32(v)
			}
			if err := WriteSeriesWith(path, small, &SeriesOptions{Order: so}); err != nil {
				t.Fatal(err)
			}
			got, err := ReadSeries(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for j, k := range so {
				if got.IDs[j] != small.IDs[k] || !slices.Equal(got.Series(0, j), small.Series(0, int(k))) {
					t.Fatalf("%s: row %d is not row %d of the tensor", name, j, k)
				}
			}
			continue
		}
		if err := WriteSeriesWith(path, q, &SeriesOptions{Order: order}); err != nil {
			t.Fatal(err)
		}
		file, err := ReadSeries(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j, k := range order {
			if file.IDs[j] != q.IDs[k] || !slices.Equal(file.Series(0, j), q.Series(0, int(k))) {
				t.Fatalf("%s: file reach %d is not row %d of the tensor", name, j, k)
			}
		}
		// Reading in the inverse order restores q's rows.
		inv := make([]int32, n)
		for j, k := range order {
			inv[k] = int32(j)
		}
		back, err := ReadSeries(path, &NCOptions{Order: inv})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.IDs, q.IDs) || !slices.Equal(back.Data, q.Data) {
			t.Fatalf("%s: reading with the inverse order does not give the tensor back", name)
		}
		// A time range read in order equals the same range of the whole.
		part, err := ReadSeries(path, &NCOptions{Order: inv, TimeStart: 10, TimeCount: 27})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if !slices.Equal(part.Series(0, i), q.Series(0, i)[10:37]) {
				t.Fatalf("%s: steps 10-36 of row %d differ", name, i)
			}
		}
	}
	if err := WriteSeriesWith(filepath.Join(dir, "bad.nc"), q, &SeriesOptions{Order: order[1:]}); err == nil {
		t.Fatal("an order missing a reach was accepted")
	}
	if _, err := ReadSeries(filepath.Join(dir, "q.nc"), &NCOptions{Order: append(slices.Clone(order[1:]), order[2])}); err == nil {
		t.Fatal("an order repeating a reach was accepted")
	}
}
