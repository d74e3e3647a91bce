package data

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"

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
// Columns are zstd-compressed (level 3 by default). The tables are written
// and read with Parquet's column API (package parquet/file), not through
// Arrow records: its Arrow bridge links Arrow Flight and gRPC, 20 MiB of
// every binary that nothing here uses.

func init() {
	RegisterSeriesFormat(&SeriesFormat{
		Name: "Parquet", Exts: []string{".parquet"}, MaxCompress: 22,
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
	fw        *file.Writer
	wide      bool
	ids       []int64
	times     []string
	stamps    []int64 // µs since 1970 per step; nil: step indices
	next      int
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
	w := &ParquetWriter{path: path, wide: layout == "wide", ids: slices.Clone(ids), times: times}
	timeNode := schema.Node(schema.NewInt64Node("time", parquet.Repetitions.Required, -1))
	if ts, ok := parseTimes(times); ok && len(ts) == len(times) {
		w.stamps = make([]int64, len(ts))
		for t, tm := range ts {
			w.stamps[t] = tm.UnixMicro()
		}
		n, err := schema.NewPrimitiveNodeLogical("time", parquet.Repetitions.Required,
			schema.NewTimestampLogicalType(true, schema.TimeUnitMicros), parquet.Types.Int64, 0, -1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		timeNode = n
	}
	var fields schema.FieldList
	if w.wide {
		fields = schema.FieldList{timeNode}
		for _, id := range ids {
			fields = append(fields, schema.NewFloat32Node(strconv.FormatInt(id, 10), parquet.Repetitions.Required, -1))
		}
	} else {
		fields = schema.FieldList{schema.NewInt64Node("rivid", parquet.Repetitions.Required, -1), timeNode,
			schema.NewFloat32Node("Q", parquet.Repetitions.Required, -1)}
	}
	root, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, fields, -1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	codec := compress.Codecs.Zstd
	if level < 0 {
		codec, level = compress.Codecs.Uncompressed, 1
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(codec), parquet.WithCompressionLevel(level),
		parquet.WithDictionaryDefault(false), parquet.WithStats(true), parquet.WithMaxRowGroupLength(1<<30))
	meta := metadata.NewKeyValueMetadata()
	for _, kv := range [][2]string{{"units", "m3 s-1"}, {"source", "diffroute-go discharge"}, {"layout", layout}} {
		if err := meta.Append(kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	f, err := createTemp(path)
	if err != nil {
		return nil, err
	}
	w.f, w.tmp = f, f.Name()
	if w.fw, err = file.NewParquetWriterWithError(f, root, file.WithWriterProps(props), file.WithWriteMetadata(meta)); err != nil {
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
	stamps := make([]int64, q.T)
	for t := range stamps {
		stamps[t] = int64(t0 + t)
		if w.stamps != nil {
			stamps[t] = w.stamps[t0+t]
		}
	}
	if err := w.writeRowGroup(q, rows, stamps); err != nil {
		return outputError(err, w.tmp, w.path)
	}
	w.next += q.T
	return nil
}

// writeRowGroup writes one row group, column after column.
func (w *ParquetWriter) writeRowGroup(q *diffroute.DataTensor, rows []int, stamps []int64) error {
	rg, err := w.fw.AppendRowGroupChecked()
	if err != nil {
		return err
	}
	next := func() (file.ColumnChunkWriter, error) { return rg.NextColumn() }
	int64s := func(v []int64) error {
		cw, err := next()
		if err != nil {
			return err
		}
		if _, err := cw.(*file.Int64ColumnChunkWriter).WriteBatch(v, nil, nil); err != nil {
			return err
		}
		return cw.Close()
	}
	floats := func(series func(yield func([]float32) bool)) error {
		cw, err := next()
		if err != nil {
			return err
		}
		fw := cw.(*file.Float32ColumnChunkWriter)
		for v := range series {
			if _, err := fw.WriteBatch(v, nil, nil); err != nil {
				return err
			}
		}
		return cw.Close()
	}
	if w.wide {
		if err := int64s(stamps); err != nil {
			return err
		}
		for _, j := range rows {
			if err := floats(func(yield func([]float32) bool) { yield(q.Series(0, j)) }); err != nil {
				return err
			}
		}
	} else {
		n := len(rows) * q.T
		ids, ts := make([]int64, 0, n), make([]int64, 0, n)
		for i := range rows {
			for range q.T {
				ids = append(ids, w.ids[i])
			}
			ts = append(ts, stamps...)
		}
		if err := int64s(ids); err != nil {
			return err
		}
		if err := int64s(ts); err != nil {
			return err
		}
		err := floats(func(yield func([]float32) bool) {
			for _, j := range rows {
				if !yield(q.Series(0, j)) {
					return
				}
			}
		})
		if err != nil {
			return err
		}
	}
	return rg.Close()
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
	r, err := file.NewParquetReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer r.Close()
	sc := r.MetaData().Schema
	// column reads column k of every row group: int64 values (int64 or
	// timestamp columns) or float32 ones.
	column := func(k int, i64 *[]int64, f32 *[]float32) error {
		for g := 0; g < r.NumRowGroups(); g++ {
			rg := r.RowGroup(g)
			n := rg.NumRows()
			cr, err := rg.Column(k)
			if err != nil {
				return err
			}
			switch c := cr.(type) {
			case *file.Int64ColumnChunkReader:
				if i64 == nil {
					return fmt.Errorf("column %s holds int64, want float32", sc.Column(k).Name())
				}
				buf, err := readChunk(sc.Column(k).Name(), n, c.ReadBatch)
				if err != nil {
					return err
				}
				*i64 = append(*i64, buf...)
			case *file.Float32ColumnChunkReader:
				if f32 == nil {
					return fmt.Errorf("column %s holds float32, want int64 or timestamp", sc.Column(k).Name())
				}
				buf, err := readChunk(sc.Column(k).Name(), n, c.ReadBatch)
				if err != nil {
					return err
				}
				*f32 = append(*f32, buf...)
			default:
				return fmt.Errorf("column %s of type %s, want int64, timestamp or float32", sc.Column(k).Name(), sc.Column(k).PhysicalType())
			}
		}
		return nil
	}
	tk := sc.ColumnIndexByName("time")
	if tk < 0 {
		return nil, fmt.Errorf("%s: no time column", path)
	}
	var stamps []int64
	if err := column(tk, &stamps, nil); err != nil {
		return nil, fmt.Errorf("%s: time: %w", path, err)
	}
	_, isTS := sc.Column(tk).LogicalType().(schema.TimestampLogicalType)
	label := func(v int64) string {
		if isTS {
			return FormatTime(time.UnixMicro(v))
		}
		return strconv.FormatInt(v, 10)
	}
	if rk := sc.ColumnIndexByName("rivid"); rk >= 0 {
		var ids []int64
		if err := column(rk, &ids, nil); err != nil {
			return nil, fmt.Errorf("%s: rivid: %w", path, err)
		}
		qk := sc.ColumnIndexByName("Q")
		if qk < 0 {
			return nil, fmt.Errorf("%s: no Q column", path)
		}
		var qs []float32
		if err := column(qk, nil, &qs); err != nil {
			return nil, fmt.Errorf("%s: Q: %w", path, err)
		}
		if len(ids) != len(stamps) || len(qs) != len(ids) {
			return nil, fmt.Errorf("%s: columns of %d, %d and %d rows", path, len(ids), len(stamps), len(qs))
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
	var cols []int
	for k := 0; k < sc.NumColumns(); k++ {
		if k == tk {
			continue
		}
		id, err := strconv.ParseInt(sc.Column(k).Name(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: column %q is not a reach id", path, sc.Column(k).Name())
		}
		ids = append(ids, id)
		cols = append(cols, k)
	}
	x := diffroute.NewDataTensor(1, ids, len(stamps))
	for i, k := range cols {
		var v []float32
		if err := column(k, nil, &v); err != nil {
			return nil, fmt.Errorf("%s: column %d: %w", path, ids[i], err)
		}
		if len(v) != len(stamps) {
			return nil, fmt.Errorf("%s: column %d has %d rows, time %d", path, ids[i], len(v), len(stamps))
		}
		copy(x.Series(0, i), v)
	}
	x.Units = "m3/s"
	for _, v := range stamps {
		x.Times = append(x.Times, label(v))
	}
	return x, nil
}

// readChunk reads a column chunk's n values, in as many batches as its
// reader takes.
func readChunk[T any](name string, n int64, read func(int64, []T, []int16, []int16) (int64, int, error)) ([]T, error) {
	buf := make([]T, n)
	for got := int64(0); got < n; {
		_, m, err := read(n-got, buf[got:], nil, nil)
		if err != nil {
			return nil, err
		}
		if m == 0 {
			return nil, fmt.Errorf("column %s: %d of %d values", name, got, n)
		}
		got += int64(m)
	}
	return buf, nil
}
