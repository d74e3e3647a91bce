package data

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/endian"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// timeColumnNames are the column names taken as the time column of a pixel
// runoff table (case-insensitive).
var timeColumnNames = []string{"time", "date", "datetime", "valid_time", "index", "__index_level_0__"}

// PixelRunoff is an open Feather v2 (Arrow IPC file) table of gridded runoff:
// one time column and one numeric column per pixel whose name is the pixel's
// label. Nulls read as NaN.
//
// The file is memory-mapped: ReadColumns touches only the requested columns
// of uncompressed files. Compressed files (LZ4/ZSTD, pandas' default) are
// decompressed one record batch at a time, so a read costs one batch of
// memory; decompressed data held at once is limited to 1024 times the file's
// size plus 64 MiB (see newFeatherAllocator), beyond which reads fail.
// ReadColumns and ReadColumnsRange may be called concurrently; Close must not
// overlap them.
type PixelRunoff struct {
	path       string
	data       []byte
	unmap      func() error
	fr         *ipc.FileReader
	labels     []string
	field      []int // schema field index of each label
	index      map[string]int
	times      []string
	step       time.Duration
	batchStart []int // first row of each record batch; len = batches+1
}

// OpenPixelRunoff opens a pixel runoff Feather file and reads its labels and
// time column. The time column is the one named time, date, datetime,
// valid_time, index or __index_level_0__, else the first column when it is a
// timestamp, date or string column; without one Times returns step indices.
// Timestamps become RFC 3339 labels in UTC and Step their uniform spacing.
func OpenPixelRunoff(path string) (_ *PixelRunoff, err error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	p := &PixelRunoff{path: path, data: data, unmap: unmap}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: malformed Arrow file: %v", path, r)
		}
		if err != nil {
			p.Close()
		}
	}()
	p.fr, err = openMappedArrow(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	schema := p.fr.Schema()
	fields := schema.Fields()
	tcol := -1
	for i, f := range fields {
		if slices.Contains(timeColumnNames, strings.ToLower(f.Name)) {
			tcol = i
			break
		}
	}
	if tcol < 0 && len(fields) > 0 && isTimeLike(fields[0].Type) {
		tcol = 0
	}
	p.index = make(map[string]int, len(fields))
	for i, f := range fields {
		if i == tcol {
			continue
		}
		if !isNumeric(f.Type) {
			return nil, fmt.Errorf("%s: column %d (%q) has type %v, want a number", path, i+1, f.Name, f.Type)
		}
		// Names may point into the mapping: copy them.
		name := strings.Clone(f.Name)
		if j, dup := p.index[name]; dup {
			return nil, fmt.Errorf("%s: column %d duplicates pixel label %q (column %d)", path, i+1, name, p.field[j]+1)
		}
		p.index[name] = len(p.labels)
		p.labels = append(p.labels, name)
		p.field = append(p.field, i)
	}
	// Record batch extents and the time column.
	nb := p.fr.NumRecords()
	p.batchStart = make([]int, nb+1)
	var ts []time.Time
	timesOK := tcol >= 0
	for b := 0; b < nb; b++ {
		rec, err := p.fr.RecordBatchAt(b)
		if err != nil {
			return nil, fmt.Errorf("%s: record batch %d: %w", path, b, err)
		}
		n := int(rec.NumRows())
		if err := checkBatch(rec); err != nil {
			rec.Release()
			return nil, fmt.Errorf("%s: record batch %d: %w", path, b, err)
		}
		p.batchStart[b+1] = p.batchStart[b] + n
		if tcol >= 0 {
			labels, tt, err := timeColumn(rec.Column(tcol), p.batchStart[b])
			if err != nil {
				rec.Release()
				return nil, fmt.Errorf("%s: time column %q: %w", path, fields[tcol].Name, err)
			}
			p.times = append(p.times, labels...)
			if tt == nil {
				timesOK = false
			}
			ts = append(ts, tt...)
		}
		rec.Release()
	}
	if tcol < 0 {
		p.times = make([]string, p.batchStart[nb])
		for t := range p.times {
			p.times[t] = strconv.Itoa(t)
		}
	} else if timesOK {
		p.step = uniformStep(ts)
	} else {
		p.step = StepOf(p.times)
	}
	return p, nil
}

// Labels returns the pixel labels (column names) in file order. The slice
// must not be modified.
func (p *PixelRunoff) Labels() []string { return p.labels }

// Times returns the time labels, one per row. The slice must not be
// modified.
func (p *PixelRunoff) Times() []string { return p.times }

// Step returns the uniform spacing of the time column, or 0.
func (p *PixelRunoff) Step() time.Duration { return p.step }

// Len returns the number of rows (time steps).
func (p *PixelRunoff) Len() int { return p.batchStart[len(p.batchStart)-1] }

// Has reports whether the table has a pixel column with this label.
func (p *PixelRunoff) Has(label string) bool { _, ok := p.index[label]; return ok }

// ReadColumns reads whole pixel columns: see ReadColumnsRange.
func (p *PixelRunoff) ReadColumns(labels []string, dst []float32) ([]float32, error) {
	return p.ReadColumnsRange(labels, 0, p.Len(), dst)
}

// ReadColumnsRange reads rows [t0, t1) of the named pixel columns into dst,
// column after column: dst[j*(t1-t0)+t] is pixel labels[j] at row t0+t (the
// (spatial, time) layout of diffroute.DataTensor). dst is reused when it has
// the capacity, else a new slice is allocated; the filled slice is returned.
// Unknown labels are an error naming the first one.
func (p *PixelRunoff) ReadColumnsRange(labels []string, t0, t1 int, dst []float32) (out []float32, err error) {
	if t0 < 0 || t1 > p.Len() || t0 > t1 {
		return nil, fmt.Errorf("%s: rows [%d, %d) out of range [0, %d)", p.path, t0, t1, p.Len())
	}
	cols := make([]int, len(labels))
	for j, l := range labels {
		k, ok := p.index[l]
		if !ok {
			return nil, fmt.Errorf("%s: no pixel column %q", p.path, l)
		}
		cols[j] = p.field[k]
	}
	T := t1 - t0
	n := len(labels) * T
	if cap(dst) >= n {
		out = dst[:n]
	} else {
		out = make([]float32, n)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%s: malformed Arrow file: %v", p.path, r)
		}
	}()
	for b := 0; b+1 < len(p.batchStart); b++ {
		lo, hi := max(t0, p.batchStart[b]), min(t1, p.batchStart[b+1])
		if lo >= hi {
			continue
		}
		rec, err := p.fr.RecordBatchAt(b)
		if err != nil {
			return nil, fmt.Errorf("%s: record batch %d: %w", p.path, b, err)
		}
		for j, c := range cols {
			seg := out[j*T+lo-t0 : j*T+hi-t0]
			if err := copyFloat32(seg, rec.Column(c), lo-p.batchStart[b]); err != nil {
				rec.Release()
				return nil, fmt.Errorf("%s: column %q: %w", p.path, labels[j], err)
			}
		}
		rec.Release()
	}
	return out, nil
}

// Close releases the file.
func (p *PixelRunoff) Close() error {
	if p == nil || p.unmap == nil {
		return nil
	}
	if p.fr != nil {
		p.fr.Close()
	}
	err := p.unmap()
	p.unmap = nil
	return err
}

// openMappedArrow opens an Arrow IPC file mapped read-only in memory, with
// the decompression budget of newFeatherAllocator. Data of the other
// endianness is refused: arrow-go would byte-swap its buffers in place,
// which are the read-only mapping (a fatal fault, not a panic). Such files
// are rare (Arrow writers use the machine's order, little-endian nearly
// everywhere); a flipped endianness flag is the usual cause.
//
// The footer is validated first (checkArrowFooter), and columns must have
// flat types (numbers, booleans, strings, binary, dates, times, durations,
// decimals, or dictionaries of those): nested and view types are refused,
// since arrow-go sizes their buffer lists from unchecked counts.
func openMappedArrow(data []byte) (*ipc.FileReader, error) {
	if bytesHasArrowMagic(data) {
		if err := checkArrowFooter(data); errors.Is(err, errArrowUnsupported) {
			return nil, err
		} else if err != nil {
			return nil, fmt.Errorf("corrupt Arrow file: %w", err)
		}
	}
	fr, err := ipc.NewMappedFileReader(data, ipc.WithBodySizeLimit(0),
		ipc.WithAllocator(newFeatherAllocator(len(data))), ipc.WithEnsureNativeEndian(false))
	if err != nil {
		return nil, err
	}
	schema := fr.Schema()
	if !schema.IsNativeEndian() {
		fr.Close()
		return nil, fmt.Errorf("Arrow data flagged with another byte order than this machine's (%v) is not supported", endian.NativeEndian)
	}
	for i, f := range schema.Fields() {
		t := f.Type
		if d, ok := t.(*arrow.DictionaryType); ok {
			t = d.ValueType
		}
		if !flatType(t) {
			fr.Close()
			return nil, fmt.Errorf("column %d (%q) has type %v, which the Feather readers do not support", i+1, f.Name, f.Type)
		}
	}
	return fr, nil
}

// bytesHasArrowMagic reports whether data ends with "ARROW1", all that
// arrow-go's mapped reader checks before decoding the footer (else it
// reports the file as not Arrow).
func bytesHasArrowMagic(data []byte) bool {
	return len(data) >= 6 && string(data[len(data)-6:]) == "ARROW1"
}

func flatType(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64, arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64,
		arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY, arrow.FIXED_SIZE_BINARY,
		arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64, arrow.TIME32, arrow.TIME64, arrow.DURATION,
		arrow.DECIMAL128, arrow.DECIMAL256:
		return true
	}
	return false
}

// checkBatch verifies that every column of a record batch has the batch's
// length and buffers large enough for it, so that a corrupted length cannot
// make readers index past the data or allocate without bound.
func checkBatch(rec arrow.RecordBatch) error {
	n := rec.NumRows()
	if n < 0 {
		return fmt.Errorf("negative row count %d", n)
	}
	if n > 0 && len(rec.Columns()) == 0 {
		return fmt.Errorf("%d rows but no columns", n) // rows backed by no data
	}
	for i, col := range rec.Columns() {
		if int64(col.Len()) != n {
			return fmt.Errorf("column %d has %d rows, the batch %d", i+1, col.Len(), n)
		}
		d := col.Data()
		end := int64(d.Offset()) + n
		bufs := d.Buffers()
		if col.NullN() > 0 && (len(bufs) == 0 || bufs[0] == nil || int64(bufs[0].Len())*8 < end) {
			return fmt.Errorf("column %d: validity bitmap too short", i+1)
		}
		switch a := col.(type) {
		case *array.String:
			if err := a.ValidateFull(); err != nil {
				return fmt.Errorf("column %d: %w", i+1, err)
			}
		case *array.LargeString:
			if err := a.ValidateFull(); err != nil {
				return fmt.Errorf("column %d: %w", i+1, err)
			}
		case *array.Binary:
			if err := a.ValidateFull(); err != nil {
				return fmt.Errorf("column %d: %w", i+1, err)
			}
		case *array.LargeBinary:
			if err := a.ValidateFull(); err != nil {
				return fmt.Errorf("column %d: %w", i+1, err)
			}
		default:
			typ := col.DataType()
			if d, ok := typ.(*arrow.DictionaryType); ok {
				typ = d.IndexType // the batch's buffers hold the indices
			}
			fw, ok := typ.(arrow.FixedWidthDataType)
			if !ok {
				// Every type openMappedArrow admits is checked above: a
				// column without a sized buffer could declare any length.
				return fmt.Errorf("column %d: type %v has no sized buffer", i+1, col.DataType())
			}
			bits := int64(fw.BitWidth())
			if len(bufs) < 2 || bufs[1] == nil || int64(bufs[1].Len())*8 < end*bits {
				if end > 0 {
					return fmt.Errorf("column %d: value buffer too short for %d rows", i+1, n)
				}
			}
		}
	}
	return nil
}

func isNumeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.FLOAT32, arrow.FLOAT64, arrow.FLOAT16, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return true
	}
	return false
}

func isTimeLike(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64, arrow.STRING, arrow.LARGE_STRING:
		return true
	}
	return false
}

// copyFloat32 copies len(dst) values of a numeric column starting at row off,
// nulls as NaN.
func copyFloat32(dst []float32, col arrow.Array, off int) error {
	if off < 0 || off+len(dst) > col.Len() {
		return fmt.Errorf("rows [%d, %d) beyond the column's %d", off, off+len(dst), col.Len())
	}
	switch a := col.(type) {
	case *array.Float32:
		copy(dst, a.Float32Values()[off:off+len(dst)])
	case *array.Float64:
		for i, v := range a.Float64Values()[off : off+len(dst)] {
			dst[i] = float32(v)
		}
	case *array.Float16:
		for i := range dst {
			dst[i] = a.Value(off + i).Float32()
		}
	case *array.Int64:
		conv(dst, a.Int64Values()[off:off+len(dst)])
	case *array.Int32:
		conv(dst, a.Int32Values()[off:off+len(dst)])
	case *array.Int16:
		conv(dst, a.Int16Values()[off:off+len(dst)])
	case *array.Int8:
		conv(dst, a.Int8Values()[off:off+len(dst)])
	case *array.Uint64:
		conv(dst, a.Uint64Values()[off:off+len(dst)])
	case *array.Uint32:
		conv(dst, a.Uint32Values()[off:off+len(dst)])
	case *array.Uint16:
		conv(dst, a.Uint16Values()[off:off+len(dst)])
	case *array.Uint8:
		conv(dst, a.Uint8Values()[off:off+len(dst)])
	default:
		return fmt.Errorf("type %v is not numeric", col.DataType())
	}
	if col.NullN() > 0 {
		nan := float32(math.NaN())
		for i := range dst {
			if col.IsNull(off + i) {
				dst[i] = nan
			}
		}
	}
	return nil
}

func conv[T number](dst []float32, src []T) {
	for i, v := range src {
		dst[i] = float32(v)
	}
}

// timeColumn returns the labels of a time column and, for timestamp and date
// columns, the instants (nil for strings and numbers). row0 is the table row
// of the column's first value, for errors.
func timeColumn(col arrow.Array, row0 int) ([]string, []time.Time, error) {
	n := col.Len()
	labels := make([]string, n)
	var ts []time.Time
	at := func(i int, t time.Time) {
		if ts == nil {
			ts = make([]time.Time, n)
		}
		ts[i] = t
		labels[i] = FormatTime(t)
	}
	for i := 0; i < n; i++ {
		if col.IsNull(i) {
			return nil, nil, fmt.Errorf("row %d is null", row0+i+1)
		}
	}
	switch a := col.(type) {
	case *array.Timestamp:
		typ := a.DataType().(*arrow.TimestampType)
		toTime, err := typ.GetToTimeFunc()
		if err != nil {
			return nil, nil, err
		}
		for i := 0; i < n; i++ {
			at(i, toTime(a.Value(i)))
		}
	case *array.Date32:
		for i := 0; i < n; i++ {
			at(i, a.Value(i).ToTime())
		}
	case *array.Date64:
		for i := 0; i < n; i++ {
			at(i, a.Value(i).ToTime())
		}
	case *array.String: // values point into the mapping: copy them
		for i := 0; i < n; i++ {
			labels[i] = strings.Clone(a.Value(i))
		}
	case *array.LargeString:
		for i := 0; i < n; i++ {
			labels[i] = strings.Clone(a.Value(i))
		}
	default:
		for i := 0; i < n; i++ {
			labels[i] = col.ValueStr(i)
		}
	}
	return labels, ts, nil
}

// Weights is an interpolation weight table: row r gives pixel Pixel[r] the
// weight Area[r] (m2 in DiffHydro's data) in the runoff of reach RiverID[r].
// Pixel is a label matched against PixelRunoff column names.
type Weights struct {
	RiverID []int64
	Pixel   []string
	Area    []float64
}

// Len returns the number of rows.
func (w *Weights) Len() int { return len(w.RiverID) }

// ReadWeights reads a weight table Feather file with columns river_id
// (integer, or float with integral values), pixel_idx (integer or string; a
// label) and area_sqm_total (number); other columns are ignored but must
// have flat types (no lists, structs or views: see openMappedArrow). Nulls and
// non-finite areas are errors naming the row (1-based).
func ReadWeights(path string) (w *Weights, err error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	defer unmap()
	defer func() {
		if r := recover(); r != nil {
			w, err = nil, fmt.Errorf("%s: malformed Arrow file: %v", path, r)
		}
	}()
	fr, err := openMappedArrow(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer fr.Close()
	schema := fr.Schema()
	idx := map[string]int{"river_id": -1, "pixel_idx": -1, "area_sqm_total": -1}
	for _, name := range []string{"river_id", "pixel_idx", "area_sqm_total"} {
		is := schema.FieldIndices(name)
		if len(is) != 1 {
			return nil, fmt.Errorf("%s: want exactly one column %q, found %d (columns: %s)", path, name, len(is), fieldNames(schema))
		}
		idx[name] = is[0]
	}
	w = &Weights{}
	row := 0
	for b := 0; b < fr.NumRecords(); b++ {
		rec, err := fr.RecordBatchAt(b)
		if err != nil {
			return nil, fmt.Errorf("%s: record batch %d: %w", path, b, err)
		}
		err = checkBatch(rec)
		if err == nil {
			err = w.appendBatch(rec, idx, row)
		}
		row += int(rec.NumRows())
		rec.Release()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return w, nil
}

func fieldNames(s *arrow.Schema) string {
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	return strings.Join(names, ", ")
}

func (w *Weights) appendBatch(rec arrow.RecordBatch, idx map[string]int, row0 int) error {
	n := int(rec.NumRows())
	rc, pc, ac := rec.Column(idx["river_id"]), rec.Column(idx["pixel_idx"]), rec.Column(idx["area_sqm_total"])
	for _, c := range []arrow.Array{rc, pc, ac} {
		if c.NullN() > 0 {
			for i := 0; i < n; i++ {
				if c.IsNull(i) {
					return fmt.Errorf("row %d: null value", row0+i+1)
				}
			}
		}
	}
	ids, err := intColumn(rc)
	if err != nil {
		return fmt.Errorf("river_id: %w", err)
	}
	for i, f := range ids {
		if f != math.Trunc(f) || math.Abs(f) > 1<<53 || math.IsNaN(f) {
			return fmt.Errorf("row %d: river_id %v is not an integer", row0+i+1, f)
		}
		w.RiverID = append(w.RiverID, int64(f))
	}
	switch a := pc.(type) {
	case *array.String: // values point into the mapping: copy them
		for i := 0; i < n; i++ {
			w.Pixel = append(w.Pixel, strings.Clone(a.Value(i)))
		}
	case *array.LargeString:
		for i := 0; i < n; i++ {
			w.Pixel = append(w.Pixel, strings.Clone(a.Value(i)))
		}
	default:
		vals, err := intColumn(pc)
		if err != nil {
			return fmt.Errorf("pixel_idx: %w", err)
		}
		for i, f := range vals {
			if f != math.Trunc(f) || math.IsNaN(f) {
				return fmt.Errorf("row %d: pixel_idx %v is not an integer label", row0+i+1, f)
			}
			w.Pixel = append(w.Pixel, strconv.FormatFloat(f, 'f', -1, 64))
		}
	}
	areas, err := intColumn(ac)
	if err != nil {
		return fmt.Errorf("area_sqm_total: %w", err)
	}
	for i, f := range areas {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("row %d: area_sqm_total is %v", row0+i+1, f)
		}
	}
	w.Area = append(w.Area, areas...)
	return nil
}

// intColumn returns a numeric column as float64 (exact for integers up to
// 2^53).
func intColumn(col arrow.Array) ([]float64, error) {
	n := col.Len()
	out := make([]float64, n)
	switch a := col.(type) {
	case *array.Float64:
		copy(out, a.Float64Values())
	case *array.Float32:
		convf(out, a.Float32Values())
	case *array.Int64:
		convf(out, a.Int64Values())
	case *array.Int32:
		convf(out, a.Int32Values())
	case *array.Int16:
		convf(out, a.Int16Values())
	case *array.Int8:
		convf(out, a.Int8Values())
	case *array.Uint64:
		convf(out, a.Uint64Values())
	case *array.Uint32:
		convf(out, a.Uint32Values())
	case *array.Uint16:
		convf(out, a.Uint16Values())
	case *array.Uint8:
		convf(out, a.Uint8Values())
	default:
		return nil, fmt.Errorf("type %v is not numeric", col.DataType())
	}
	return out, nil
}

func convf[T number](dst []float64, src []T) {
	for i, v := range src {
		dst[i] = float64(v)
	}
}

// FeatherOptions tune the Feather writers.
type FeatherOptions struct {
	// BatchRows is the number of rows per record batch; 0 writes one batch.
	BatchRows int
	// Compression is "", "lz4" or "zstd".
	Compression string
}

func (o *FeatherOptions) ipcOptions(schema *arrow.Schema) ([]ipc.Option, int, error) {
	opts := []ipc.Option{ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator)}
	rows := 0
	if o != nil {
		rows = o.BatchRows
		switch o.Compression {
		case "":
		case "lz4":
			opts = append(opts, ipc.WithLZ4())
		case "zstd":
			opts = append(opts, ipc.WithZstd())
		default:
			return nil, 0, fmt.Errorf("data: unknown Feather compression %q", o.Compression)
		}
	}
	return opts, rows, nil
}

// PixelTable is pixel runoff in memory, the input of WritePixelRunoff.
type PixelTable struct {
	Times  []string  // time label of each row
	Labels []string  // pixel label of each column
	Data   []float32 // Data[j*len(Times)+t] = pixel Labels[j] at row t; NaN is written as null
}

// WritePixelRunoff writes a pixel runoff Feather v2 file: a "time" column
// (timestamp[ns] UTC when every label parses with ParseTime, else string)
// and one float32 column per pixel, named by its label. The file is written
// atomically.
func WritePixelRunoff(path string, p *PixelTable, opt *FeatherOptions) error {
	T := len(p.Times)
	if len(p.Data) != len(p.Labels)*T {
		return fmt.Errorf("data: pixel table has %d values for %d pixels × %d times", len(p.Data), len(p.Labels), T)
	}
	seen := make(map[string]bool, len(p.Labels))
	for _, l := range p.Labels {
		if seen[l] || slices.Contains(timeColumnNames, strings.ToLower(l)) {
			return fmt.Errorf("data: pixel label %q is duplicated or reserved", l)
		}
		seen[l] = true
	}
	ts, parsed := parseTimes(p.Times)
	var tType arrow.DataType = arrow.BinaryTypes.String
	if parsed {
		tType = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}
	}
	fields := []arrow.Field{{Name: "time", Type: tType}}
	for _, l := range p.Labels {
		fields = append(fields, arrow.Field{Name: l, Type: arrow.PrimitiveTypes.Float32, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	opts, rows, err := opt.ipcOptions(schema)
	if err != nil {
		return err
	}
	if rows <= 0 {
		rows = max(T, 1)
	}
	mem := memory.DefaultAllocator
	return writeFeather(path, opts, func(fw *ipc.FileWriter) error {
		for t0 := 0; t0 < T || (T == 0 && t0 == 0); t0 += rows {
			t1 := min(T, t0+rows)
			cols := make([]arrow.Array, 0, len(fields))
			if parsed {
				b := array.NewTimestampBuilder(mem, tType.(*arrow.TimestampType))
				for _, t := range ts[t0:t1] {
					b.Append(arrow.Timestamp(t.UnixNano()))
				}
				cols = append(cols, b.NewArray())
				b.Release()
			} else {
				b := array.NewStringBuilder(mem)
				b.AppendValues(p.Times[t0:t1], nil)
				cols = append(cols, b.NewArray())
				b.Release()
			}
			for j := range p.Labels {
				b := array.NewFloat32Builder(mem)
				vals := p.Data[j*T+t0 : j*T+t1]
				var valid []bool
				for i, v := range vals {
					if v != v {
						if valid == nil {
							valid = make([]bool, len(vals))
							for k := range valid {
								valid[k] = true
							}
						}
						valid[i] = false
					}
				}
				b.AppendValues(vals, valid)
				cols = append(cols, b.NewArray())
				b.Release()
			}
			rec := array.NewRecordBatch(schema, cols, int64(t1-t0))
			for _, c := range cols {
				c.Release()
			}
			err := fw.Write(rec)
			rec.Release()
			if err != nil {
				return err
			}
			if T == 0 {
				break
			}
		}
		return nil
	})
}

// WriteWeights writes a weight table Feather v2 file with columns river_id
// (int64), pixel_idx (int64 when every label is an integer, else string) and
// area_sqm_total (float64). The file is written atomically.
func WriteWeights(path string, w *Weights, opt *FeatherOptions) error {
	n := len(w.RiverID)
	if len(w.Pixel) != n || len(w.Area) != n {
		return fmt.Errorf("data: weight table columns have %d, %d and %d rows", n, len(w.Pixel), len(w.Area))
	}
	intPix := true
	pix := make([]int64, n)
	for i, s := range w.Pixel {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || strconv.FormatInt(v, 10) != s {
			intPix = false
			break
		}
		pix[i] = v
	}
	var pType arrow.DataType = arrow.BinaryTypes.String
	if intPix {
		pType = arrow.PrimitiveTypes.Int64
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "river_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "pixel_idx", Type: pType},
		{Name: "area_sqm_total", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	opts, rows, err := opt.ipcOptions(schema)
	if err != nil {
		return err
	}
	if rows <= 0 {
		rows = max(n, 1)
	}
	mem := memory.DefaultAllocator
	return writeFeather(path, opts, func(fw *ipc.FileWriter) error {
		for r0 := 0; r0 < n || (n == 0 && r0 == 0); r0 += rows {
			r1 := min(n, r0+rows)
			rb := array.NewInt64Builder(mem)
			rb.AppendValues(w.RiverID[r0:r1], nil)
			var pa arrow.Array
			if intPix {
				pb := array.NewInt64Builder(mem)
				pb.AppendValues(pix[r0:r1], nil)
				pa = pb.NewArray()
				pb.Release()
			} else {
				pb := array.NewStringBuilder(mem)
				pb.AppendValues(w.Pixel[r0:r1], nil)
				pa = pb.NewArray()
				pb.Release()
			}
			ab := array.NewFloat64Builder(mem)
			ab.AppendValues(w.Area[r0:r1], nil)
			cols := []arrow.Array{rb.NewArray(), pa, ab.NewArray()}
			rb.Release()
			ab.Release()
			rec := array.NewRecordBatch(schema, cols, int64(r1-r0))
			for _, c := range cols {
				c.Release()
			}
			err := fw.Write(rec)
			rec.Release()
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
		}
		return nil
	})
}

// writeFeather creates an Arrow IPC file atomically; fill writes its batches.
func writeFeather(path string, opts []ipc.Option, fill func(*ipc.FileWriter) error) error {
	return writeAtomic(path, func(tmp string) error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		fw, err := ipc.NewFileWriter(f, opts...)
		if err != nil {
			f.Close()
			return err
		}
		if err := fill(fw); err != nil {
			fw.Close()
			f.Close()
			return fmt.Errorf("data: %s: %w", path, err)
		}
		if err := fw.Close(); err != nil {
			f.Close()
			return fmt.Errorf("data: %s: %w", path, err)
		}
		return f.Close()
	})
}
