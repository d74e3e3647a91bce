package data

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

func samplePixels(T, P int) *PixelTable {
	p := &PixelTable{}
	t0 := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for t := 0; t < T; t++ {
		p.Times = append(p.Times, FormatTime(t0.AddDate(0, 0, t)))
	}
	for j := 0; j < P; j++ {
		p.Labels = append(p.Labels, itoa(int64(1000+j*7)))
	}
	p.Data = make([]float32, T*P)
	for i := range p.Data {
		p.Data[i] = float32(i) * 0.25
	}
	return p
}

func TestPixelRunoffRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := samplePixels(10, 5)
	src.Data[3] = float32(math.NaN()) // pixel 0, t=3 -> null
	for _, opt := range []*FeatherOptions{nil, {BatchRows: 3}, {BatchRows: 4, Compression: "lz4"}, {Compression: "zstd"}} {
		path := filepath.Join(dir, "p.feather")
		if err := WritePixelRunoff(path, src, opt); err != nil {
			t.Fatal(err)
		}
		p, err := OpenPixelRunoff(path)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(p.Labels(), src.Labels) || !slices.Equal(p.Times(), src.Times) || p.Len() != 10 || p.Step() != 24*time.Hour {
			t.Fatalf("%+v: labels %v times %v step %v", opt, p.Labels(), p.Times(), p.Step())
		}
		// A subset in another order, over a range crossing batches.
		want := []string{src.Labels[4], src.Labels[0]}
		got, err := p.ReadColumnsRange(want, 2, 9, nil)
		if err != nil {
			t.Fatal(err)
		}
		for j, l := range want {
			k := slices.Index(src.Labels, l)
			for tt := 2; tt < 9; tt++ {
				a, b := got[j*7+tt-2], src.Data[k*10+tt]
				if a != b && !(a != a && b != b) {
					t.Fatalf("%+v: %s t=%d: %v, want %v", opt, l, tt, a, b)
				}
			}
		}
		all, err := p.ReadColumns(src.Labels, make([]float32, 0, 100))
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 50 || all[49] != src.Data[49] || !math.IsNaN(float64(all[3])) {
			t.Fatalf("all %v", all)
		}
		if _, err := p.ReadColumns([]string{"nope"}, nil); err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Fatalf("unknown label: %v", err)
		}
		if _, err := p.ReadColumnsRange(src.Labels, 5, 11, nil); err == nil {
			t.Fatal("range beyond the table accepted")
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("leftovers %v", entries)
	}
}

func TestPixelRunoffStringTimes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.feather")
	src := &PixelTable{Times: []string{"step a", "step b"}, Labels: []string{"x"}, Data: []float32{1, 2}}
	if err := WritePixelRunoff(path, src, nil); err != nil {
		t.Fatal(err)
	}
	p, err := OpenPixelRunoff(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !slices.Equal(p.Times(), src.Times) || p.Step() != 0 {
		t.Fatal(p.Times(), p.Step())
	}
}

// writeArrow writes an Arrow IPC file from columns, as pyarrow might.
func writeArrow(t *testing.T, path string, fields []arrow.Field, cols []arrow.Array) {
	t.Helper()
	schema := arrow.NewSchema(fields, nil)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	rec := array.NewRecordBatch(schema, cols, int64(cols[0].Len()))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	w.Close()
	f.Close()
}

func TestPixelRunoffForeignLayout(t *testing.T) {
	// Date32 "date" column last, float64 and int pixel columns with nulls.
	mem := memory.DefaultAllocator
	db := array.NewDate32Builder(mem)
	db.AppendValues([]arrow.Date32{arrow.Date32FromTime(time.Date(2010, 3, 1, 0, 0, 0, 0, time.UTC)), arrow.Date32FromTime(time.Date(2010, 3, 2, 0, 0, 0, 0, time.UTC))}, nil)
	fb := array.NewFloat64Builder(mem)
	fb.AppendValues([]float64{1.5, 0}, []bool{true, false})
	ib := array.NewInt32Builder(mem)
	ib.AppendValues([]int32{7, 8}, nil)
	path := filepath.Join(t.TempDir(), "f.feather")
	writeArrow(t, path, []arrow.Field{
		{Name: "12", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "13", Type: arrow.PrimitiveTypes.Int32},
		{Name: "date", Type: arrow.FixedWidthTypes.Date32},
	}, []arrow.Array{fb.NewArray(), ib.NewArray(), db.NewArray()})
	p, err := OpenPixelRunoff(path)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !slices.Equal(p.Labels(), []string{"12", "13"}) || p.Times()[1] != "2010-03-02T00:00:00Z" || p.Step() != 24*time.Hour {
		t.Fatal(p.Labels(), p.Times(), p.Step())
	}
	got, err := p.ReadColumns([]string{"13", "12"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 7 || got[1] != 8 || got[2] != 1.5 || !math.IsNaN(float64(got[3])) {
		t.Fatal(got)
	}
	// A string pixel column is an error naming it.
	sb := array.NewStringBuilder(mem)
	sb.AppendValues([]string{"a"}, nil)
	tb := array.NewFloat32Builder(mem)
	tb.AppendValues([]float32{1}, nil)
	bad := filepath.Join(t.TempDir(), "bad.feather")
	writeArrow(t, bad, []arrow.Field{{Name: "1", Type: arrow.PrimitiveTypes.Float32}, {Name: "2", Type: arrow.BinaryTypes.String}},
		[]arrow.Array{tb.NewArray(), sb.NewArray()})
	if _, err := OpenPixelRunoff(bad); err == nil || !strings.Contains(err.Error(), `"2"`) {
		t.Fatalf("string pixel column: %v", err)
	}
}

func TestWeightsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, w := range []*Weights{
		{RiverID: []int64{1, 1, 2}, Pixel: []string{"10", "11", "10"}, Area: []float64{5e6, 2.5e6, 1}},
		{RiverID: []int64{3}, Pixel: []string{"p_7"}, Area: []float64{42}},
	} {
		path := filepath.Join(dir, "w.feather")
		if err := WriteWeights(path, w, &FeatherOptions{BatchRows: 2}); err != nil {
			t.Fatal(err)
		}
		got, err := ReadWeights(path)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.RiverID, w.RiverID) || !slices.Equal(got.Pixel, w.Pixel) || !slices.Equal(got.Area, w.Area) || got.Len() != w.Len() {
			t.Fatalf("%+v != %+v", got, w)
		}
	}
	if err := WriteWeights(filepath.Join(dir, "x"), &Weights{RiverID: []int64{1}}, nil); err == nil {
		t.Fatal("ragged weights accepted")
	}
}

func TestWeightsForeignAndErrors(t *testing.T) {
	mem := memory.DefaultAllocator
	dir := t.TempDir()
	mk := func(ids []float64, idValid []bool, pix []float64, area []float64) string {
		rb := array.NewFloat64Builder(mem)
		rb.AppendValues(ids, idValid)
		pb := array.NewFloat64Builder(mem)
		pb.AppendValues(pix, nil)
		ab := array.NewFloat64Builder(mem)
		ab.AppendValues(area, nil)
		eb := array.NewStringBuilder(mem)
		eb.AppendValues(make([]string, len(ids)), nil)
		path := filepath.Join(t.TempDir(), "w.feather")
		writeArrow(t, path, []arrow.Field{
			{Name: "extra", Type: arrow.BinaryTypes.String},
			{Name: "area_sqm_total", Type: arrow.PrimitiveTypes.Float64},
			{Name: "pixel_idx", Type: arrow.PrimitiveTypes.Float64},
			{Name: "river_id", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		}, []arrow.Array{eb.NewArray(), ab.NewArray(), pb.NewArray(), rb.NewArray()})
		return path
	}
	w, err := ReadWeights(mk([]float64{5, 6}, nil, []float64{100, 101}, []float64{1, 2}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.RiverID, []int64{5, 6}) || !slices.Equal(w.Pixel, []string{"100", "101"}) {
		t.Fatal(w)
	}
	cases := []struct {
		path, frag string
	}{
		{mk([]float64{5, 6}, []bool{true, false}, []float64{1, 2}, []float64{1, 2}), "row 2: null"},
		{mk([]float64{5, 6.5}, nil, []float64{1, 2}, []float64{1, 2}), "row 2: river_id 6.5"},
		{mk([]float64{5, 6}, nil, []float64{1.5, 2}, []float64{1, 2}), "row 1: pixel_idx 1.5"},
		{mk([]float64{5, 6}, nil, []float64{1, 2}, []float64{1, math.NaN()}), "row 2: area_sqm_total is NaN"},
	}
	for _, c := range cases {
		_, err := ReadWeights(c.path)
		if err == nil || !strings.Contains(err.Error(), c.frag) || !strings.Contains(err.Error(), "w.feather") {
			t.Fatalf("want %q, got %v", c.frag, err)
		}
	}
	// Missing column.
	fb := array.NewFloat64Builder(mem)
	fb.AppendValues([]float64{1}, nil)
	p := filepath.Join(dir, "missing.feather")
	writeArrow(t, p, []arrow.Field{{Name: "river_id", Type: arrow.PrimitiveTypes.Float64}}, []arrow.Array{fb.NewArray()})
	if _, err := ReadWeights(p); err == nil || !strings.Contains(err.Error(), "pixel_idx") {
		t.Fatalf("missing column: %v", err)
	}
}

func TestFeatherGarbage(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "g.feather")
	os.WriteFile(p, []byte("ARROW1 this is not an arrow file"), 0o644)
	if _, err := OpenPixelRunoff(p); err == nil {
		t.Fatal("garbage accepted")
	}
	if _, err := ReadWeights(p); err == nil {
		t.Fatal("garbage accepted")
	}
	os.WriteFile(p, nil, 0o644)
	if _, err := OpenPixelRunoff(p); err == nil {
		t.Fatal("empty file accepted")
	}
}

// TestPixelRunoffNullTimeRow: a null time label in the second record batch
// is reported at its row in the table, not in the batch.
func TestPixelRunoffNullTimeRow(t *testing.T) {
	mem := memory.DefaultAllocator
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "7", Type: arrow.PrimitiveTypes.Float32},
	}, nil)
	path := filepath.Join(t.TempDir(), "n.feather")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	for _, valid := range [][]bool{nil, {true, false}} {
		sb := array.NewStringBuilder(mem)
		sb.AppendValues([]string{"a", "b"}, valid)
		vb := array.NewFloat32Builder(mem)
		vb.AppendValues([]float32{1, 2}, nil)
		rec := array.NewRecordBatch(schema, []arrow.Array{sb.NewArray(), vb.NewArray()}, 2)
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	w.Close()
	f.Close()
	_, err = OpenPixelRunoff(path)
	if err == nil || !strings.Contains(err.Error(), "row 4 is null") || !strings.HasPrefix(err.Error(), path) {
		t.Fatalf("%v", err)
	}
}
