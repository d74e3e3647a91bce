package data

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/diffroute-go/route/atomicfile"
	"github.com/diffroute-go/route/diffroute"
)

// Parquet tables of discharge, for DuckDB, pandas and Arrow users. Two
// layouts (SeriesOptions.Layout):
//
//   - long (default): one row per reach and step, columns rivid (int64),
//     time (timestamp, UTC, microseconds; or the step index as int64 when
//     the series has no dates) and Q (float32, m3/s); each time piece is a
//     row group, rows reach by reach;
//   - wide: one row per step, a time column and one float32 column per reach
//     named by its id.
//
// Columns are zstd-compressed (level 3 by default).

func init() {
	RegisterSeriesFormat(&SeriesFormat{
		Name: "Parquet", Exts: []string{".parquet"},
		Read: func(path string, _ *NCOptions) (*diffroute.DataTensor, error) { return ReadParquet(path) },
		Write: func(path string, q *diffroute.DataTensor, o *SeriesOptions) error {
			if err := q.Validate(); err != nil {
				return err
			}
			w, err := NewParquetWriter(path, q.IDs, q.Times, q.Step, o)
			if err != nil {
				return err
			}
			if err := w.Write(q, 0); err != nil {
				w.Abort()
				return err
			}
			return w.Close()
		},
		NewWriter: func(path string, ids []int64, times []string, step time.Duration, o *SeriesOptions) (SeriesWriter, error) {
			return NewParquetWriter(path, ids, times, step, o)
		},
	})
}

// ParquetWriter writes a Parquet table in time pieces (each Write holds
// every reach and continues where the previous one ended), under a
// temporary name renamed into place by Close.
type ParquetWriter struct {
	path, tmp string
	f         *os.File
	fw        *pqarrow.FileWriter
	schema    *arrow.Schema
	wide      bool
	ids       []int64
	times     []string
	stamps    []int64 // µs since 1970 per step; nil: step indices
	next      int
	mem       memory.Allocator
}

// NewParquetWriter starts a table of reaches ids and len(times) steps.
func NewParquetWriter(path string, ids []int64, times []string, step time.Duration, o *SeriesOptions) (*ParquetWriter, error) {
	level, layout := 3, "long"
	if o != nil {
		switch {
		case o.Compress < -1 || o.Compress > 22:
			return nil, fmt.Errorf("%s: zstd level %d: want 1 to 22, or -1 for none", path, o.Compress)
		case o.Compress != 0:
			level = o.Compress
		}
		if o.Layout != "" {
			layout = o.Layout
		}
	}
	if layout != "long" && layout != "wide" {
		return nil, fmt.Errorf("%s: Parquet layout %q: want long or wide", path, layout)
	}
	w := &ParquetWriter{path: path, wide: layout == "wide", ids: slices.Clone(ids), times: times, mem: memory.DefaultAllocator}
	timeType := arrow.DataType(arrow.PrimitiveTypes.Int64)
	if ts, ok := parseTimes(times); ok && len(ts) == len(times) {
		w.stamps = make([]int64, len(ts))
		for t, tm := range ts {
			w.stamps[t] = tm.UnixMicro()
		}
		timeType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	}
	meta := arrow.NewMetadata([]string{"units", "source", "layout"}, []string{"m3 s-1", "diffroute-go discharge", layout})
	if w.wide {
		fields := []arrow.Field{{Name: "time", Type: timeType}}
		for _, id := range ids {
			fields = append(fields, arrow.Field{Name: strconv.FormatInt(id, 10), Type: arrow.PrimitiveTypes.Float32})
		}
		w.schema = arrow.NewSchema(fields, &meta)
	} else {
		w.schema = arrow.NewSchema([]arrow.Field{
			{Name: "rivid", Type: arrow.PrimitiveTypes.Int64},
			{Name: "time", Type: timeType},
			{Name: "Q", Type: arrow.PrimitiveTypes.Float32},
		}, &meta)
	}
	codec := compress.Codecs.Zstd
	if level < 0 {
		codec, level = compress.Codecs.Uncompressed, 1
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(codec), parquet.WithCompressionLevel(level),
		parquet.WithDictionaryDefault(false), parquet.WithStats(true), parquet.WithMaxRowGroupLength(1<<30))
	f, err := createTemp(path)
	if err != nil {
		return nil, err
	}
	w.f, w.tmp = f, f.Name()
	if w.fw, err = pqarrow.NewFileWriter(w.schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())); err != nil {
		w.Abort()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// Write appends steps [t0, t0+q.T) of every reach (rows matched by id) as
// one row group.
func (w *ParquetWriter) Write(q *diffroute.DataTensor, t0 int) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if q.B != 1 {
		return fmt.Errorf("data: a Parquet table holds one batch member, the tensor has %d", q.B)
	}
	if t0 != w.next || t0+q.T > len(w.times) {
		return fmt.Errorf("data: %s: steps [%d, %d) given, the table continues at step %d of %d", w.path, t0, t0+q.T, w.next, len(w.times))
	}
	row := make(map[int64]int, q.N)
	for j, id := range q.IDs {
		row[id] = j
	}
	rows := make([]int, len(w.ids))
	for i, id := range w.ids {
		j, ok := row[id]
		if !ok {
			return fmt.Errorf("data: %s: the piece at step %d lacks reach %d", w.path, t0, id)
		}
		rows[i] = j
	}
	stamp := func(t int) int64 {
		if w.stamps != nil {
			return w.stamps[t]
		}
		return int64(t)
	}
	b := array.NewRecordBuilder(w.mem, w.schema)
	defer b.Release()
	appendTime := func(fb array.Builder, t int) {
		switch tb := fb.(type) {
		case *array.TimestampBuilder:
			tb.Append(arrow.Timestamp(stamp(t)))
		case *array.Int64Builder:
			tb.Append(stamp(t))
		}
	}
	if w.wide {
		for t := 0; t < q.T; t++ {
			appendTime(b.Field(0), t0+t)
		}
		for i, j := range rows {
			fb := b.Field(i + 1).(*array.Float32Builder)
			fb.AppendValues(q.Data[j*q.T:(j+1)*q.T], nil)
		}
	} else {
		rb, tb, qb := b.Field(0).(*array.Int64Builder), b.Field(1), b.Field(2).(*array.Float32Builder)
		for i, j := range rows {
			for t := 0; t < q.T; t++ {
				rb.Append(w.ids[i])
				appendTime(tb, t0+t)
			}
			qb.AppendValues(q.Data[j*q.T:(j+1)*q.T], nil)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.fw.Write(rec); err != nil {
		return outputError(err, w.tmp, w.path)
	}
	w.next += q.T
	return nil
}

// Close completes the table and renames it into place.
func (w *ParquetWriter) Close() error {
	if w.next != len(w.times) {
		w.Abort()
		return fmt.Errorf("data: %s: %d of %d steps written", w.path, w.next, len(w.times))
	}
	if err := w.fw.Close(); err != nil { // closes the file too
		os.Remove(w.tmp)
		return outputError(err, w.tmp, w.path)
	}
	return outputError(atomicfile.Commit(w.tmp, w.path), w.tmp, w.path)
}

// Abort drops the table.
func (w *ParquetWriter) Abort() {
	w.f.Close()
	os.Remove(w.tmp)
}

// ReadParquet reads a table written by ParquetWriter (long or wide).
func ReadParquet(path string) (*diffroute.DataTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer tbl.Release()
	sc := tbl.Schema()
	col := func(name string) ([]arrow.Array, bool) {
		idx := sc.FieldIndices(name)
		if len(idx) != 1 {
			return nil, false
		}
		return tbl.Column(idx[0]).Data().Chunks(), true
	}
	int64s := func(chunks []arrow.Array) ([]int64, error) {
		var out []int64
		for _, c := range chunks {
			switch a := c.(type) {
			case *array.Int64:
				out = append(out, a.Int64Values()...)
			case *array.Timestamp:
				for _, v := range a.TimestampValues() {
					out = append(out, int64(v))
				}
			default:
				return nil, fmt.Errorf("column of type %s, want int64 or timestamp", c.DataType())
			}
		}
		return out, nil
	}
	floats := func(chunks []arrow.Array) ([]float32, error) {
		var out []float32
		for _, c := range chunks {
			a, ok := c.(*array.Float32)
			if !ok {
				return nil, fmt.Errorf("column of type %s, want float32", c.DataType())
			}
			out = append(out, a.Float32Values()...)
		}
		return out, nil
	}
	tcol, ok := col("time")
	if !ok {
		return nil, fmt.Errorf("%s: no time column", path)
	}
	stamps, err := int64s(tcol)
	if err != nil {
		return nil, fmt.Errorf("%s: time: %w", path, err)
	}
	isTS := sc.Field(sc.FieldIndices("time")[0]).Type.ID() == arrow.TIMESTAMP
	label := func(v int64) string {
		if isTS {
			return FormatTime(time.UnixMicro(v))
		}
		return strconv.FormatInt(v, 10)
	}
	if rcol, long := col("rivid"); long {
		ids, err := int64s(rcol)
		if err != nil {
			return nil, fmt.Errorf("%s: rivid: %w", path, err)
		}
		qcol, ok := col("Q")
		if !ok {
			return nil, fmt.Errorf("%s: no Q column", path)
		}
		qs, err := floats(qcol)
		if err != nil {
			return nil, fmt.Errorf("%s: Q: %w", path, err)
		}
		var uids, uts []int64
		ri, ti := map[int64]int{}, map[int64]int{}
		for k := range ids {
			if _, ok := ri[ids[k]]; !ok {
				ri[ids[k]] = len(uids)
				uids = append(uids, ids[k])
			}
			if _, ok := ti[stamps[k]]; !ok {
				ti[stamps[k]] = len(uts)
				uts = append(uts, stamps[k])
			}
		}
		if len(uids)*len(uts) != len(ids) {
			return nil, fmt.Errorf("%s: %d rows for %d reaches × %d steps", path, len(ids), len(uids), len(uts))
		}
		x := diffroute.NewDataTensor(1, uids, len(uts))
		for k := range ids {
			x.Set(0, ri[ids[k]], ti[stamps[k]], qs[k])
		}
		x.Units = "m3/s"
		for _, v := range uts {
			x.Times = append(x.Times, label(v))
		}
		return x, nil
	}
	var ids []int64
	for k, fd := range sc.Fields() {
		if k == sc.FieldIndices("time")[0] {
			continue
		}
		id, err := strconv.ParseInt(fd.Name, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: column %q is not a reach id", path, fd.Name)
		}
		ids = append(ids, id)
	}
	x := diffroute.NewDataTensor(1, ids, len(stamps))
	for i, id := range ids {
		c, _ := col(strconv.FormatInt(id, 10))
		v, err := floats(c)
		if err != nil {
			return nil, fmt.Errorf("%s: column %d: %w", path, id, err)
		}
		copy(x.Series(0, i), v)
	}
	x.Units = "m3/s"
	for _, v := range stamps {
		x.Times = append(x.Times, label(v))
	}
	return x, nil
}
