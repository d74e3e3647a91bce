package data

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// SeriesFormat reads and writes tables of series by reach and time — runoff
// in, discharge out — in one file format, chosen by a path's extension.
// Every place that opens or writes such a table by name goes through
// SeriesFormatFor, so a format registered here is known to the command line,
// the pipeline and notebooks at once.
type SeriesFormat struct {
	Name string   // for messages, e.g. "netCDF"
	Exts []string // lower-case extensions with the dot, e.g. ".nc"
	// Read reads a table with one batch member. Ranged formats honour
	// o.TimeStart and o.TimeCount (TimeCount < 0: labels and ids only);
	// others read the whole table whatever the range.
	Read   func(path string, o *NCOptions) (*diffroute.DataTensor, error)
	Ranged bool
	// Vars says the file holds named variables (NCOptions.Var applies).
	Vars bool
	// Write writes a whole table atomically (o may be nil: defaults); nil
	// when the format is read only.
	Write func(path string, q *diffroute.DataTensor, o *SeriesOptions) error
	// NewWriter starts a table of ids × times written in time pieces, for
	// discharge streamed chunk by chunk; nil when the format cannot.
	NewWriter func(path string, ids []int64, times []string, step time.Duration, o *SeriesOptions) (SeriesWriter, error)
	// MaxCompress is the highest compression level the format takes; 0:
	// it has no compression.
	MaxCompress int

	ordered bool // Write honours SeriesOptions.Order itself
}

// SeriesOptions tune how a table is written; the zero value is every
// format's default.
type SeriesOptions struct {
	// Format names the format (its name or first extension without the dot,
	// e.g. "nc4", "parquet") whatever the path's extension; "" goes by the
	// extension.
	Format string
	// Compress is the compression level: 0 the format's default (netCDF-4:
	// deflate 4; Parquet: zstd 3; none for classic netCDF and CSV), −1 none,
	// 1–9 deflate levels (netCDF-4) or zstd levels (Parquet).
	Compress int
	// Coords gives reaches' latitude and longitude (degrees), written as
	// CF coordinates where the format has them, when every reach written
	// has one.
	Coords map[int64]LatLon
	// Layout is the table layout of formats that have several: "long" (one
	// row per reach and step: rivid, time, Q; the default) or "wide" (one
	// row per step, one column per reach).
	Layout string
	// Order, when set, writes q's rows in another order: the table's reach
	// at position j is row Order[j] of q (every row once). netCDF writes
	// them so directly; other formats from a reordered copy.
	Order []int32
}

// LatLon is a reach's position in degrees.
type LatLon struct{ Lat, Lon float64 }

// coords returns the latitudes and longitudes of ids, or nil when some
// reach has none.
func (o *SeriesOptions) coords(ids []int64) (lat, lon []float64) {
	if o == nil || len(o.Coords) == 0 {
		return nil, nil
	}
	lat, lon = make([]float64, len(ids)), make([]float64, len(ids))
	for i, id := range ids {
		c, ok := o.Coords[id]
		if !ok {
			return nil, nil
		}
		lat[i], lon[i] = c.Lat, c.Lon
	}
	return lat, lon
}

// qoutOpts turns series options into Qout options for netCDF (classic
// unless nc4).
func (o *SeriesOptions) qoutOpts(ids []int64, nc4 bool) (*QoutOptions, error) {
	q := &QoutOptions{NetCDF4: nc4}
	q.Lat, q.Lon = o.coords(ids)
	c := 0
	if o != nil {
		c = o.Compress
	}
	switch {
	case c < -1 || c > 9:
		return nil, fmt.Errorf("compression level %d: want 1 to 9, or -1 for none", c)
	case !nc4 && c > 0:
		return nil, fmt.Errorf("classic netCDF has no compression: write netCDF-4 (.nc4 or format nc4)")
	case nc4 && c == 0:
		q.Compress = 4
	case c > 0:
		q.Compress = c
	}
	return q, nil
}

// SeriesWriter writes a table in pieces: Write puts the steps of q at step
// t0 of the table, Close completes the file (atomically: nothing is at the
// path before), Abort drops it.
type SeriesWriter interface {
	Write(q *diffroute.DataTensor, t0 int) error
	Close() error
	Abort()
}

var (
	formatsMu sync.RWMutex
	formats   []*SeriesFormat
)

// RegisterSeriesFormat adds a format; its extensions must not be taken.
// It panics on a programmer error (no extension, a taken one, no Read).
func RegisterSeriesFormat(f *SeriesFormat) {
	formatsMu.Lock()
	defer formatsMu.Unlock()
	if f.Read == nil || len(f.Exts) == 0 {
		panic("data: a series format needs Read and extensions")
	}
	for _, g := range formats {
		for _, e := range f.Exts {
			if slices.Contains(g.Exts, e) {
				panic("data: extension " + e + " is registered twice")
			}
		}
	}
	formats = append(formats, f)
}

func init() {
	for _, nc4 := range []bool{false, true} {
		f := &SeriesFormat{Name: "netCDF", Exts: []string{".nc", ".netcdf"}, Ranged: true, Vars: true, Read: ReadRunoffNC}
		if nc4 {
			f.Name, f.Exts, f.MaxCompress = "netCDF-4", []string{".nc4"}, 9
		}
		f.Write = func(path string, q *diffroute.DataTensor, o *SeriesOptions) error {
			ids := q.IDs
			if o != nil && o.Order != nil {
				if _, err := invertOrder(o.Order, q.N); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				ids = make([]int64, q.N)
				for j, k := range o.Order {
					ids[j] = q.IDs[k]
				}
			}
			qo, err := o.qoutOpts(ids, nc4)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if o != nil {
				qo.Order = o.Order
			}
			return WriteQoutNC(path, q, qo)
		}
		f.ordered = true
		f.NewWriter = func(path string, ids []int64, times []string, step time.Duration, o *SeriesOptions) (SeriesWriter, error) {
			qo, err := o.qoutOpts(ids, nc4)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			return NewQoutWriter(path, ids, times, step, qo)
		}
		RegisterSeriesFormat(f)
	}
	RegisterSeriesFormat(&SeriesFormat{
		Name: "CSV", Exts: []string{".csv"},
		Read: func(path string, _ *NCOptions) (*diffroute.DataTensor, error) { return ReadCSVTableFile(path) },
		Write: func(path string, q *diffroute.DataTensor, o *SeriesOptions) error {
			if o != nil && o.Compress > 0 {
				return fmt.Errorf("%s: CSV has no compression", path)
			}
			return WriteCSVTableFile(path, q)
		},
		NewWriter: func(path string, ids []int64, times []string, step time.Duration, o *SeriesOptions) (SeriesWriter, error) {
			if o != nil && o.Compress > 0 {
				return nil, fmt.Errorf("%s: CSV has no compression", path)
			}
			return NewCSVTableWriter(path, ids, times)
		},
	})
}

// SeriesFormatFor returns the format of path by its extension, or an error
// naming the path and the extensions known (for writing when write is set).
func SeriesFormatFor(path string, write bool) (*SeriesFormat, error) {
	return seriesFormat(path, write, "")
}

// SeriesFormatNamed returns the format called name (its name or its first
// extension without the dot, any case), for writing when write is set.
func SeriesFormatNamed(name string, write bool) (*SeriesFormat, error) {
	return seriesFormat("", write, name)
}

func seriesFormat(path string, write bool, name string) (*SeriesFormat, error) {
	if name != "" {
		formatsMu.RLock()
		defer formatsMu.RUnlock()
		var known []string
		for _, f := range formats {
			if write && f.Write == nil {
				continue
			}
			if strings.EqualFold(f.Name, name) || strings.EqualFold(f.Exts[0], "."+name) {
				return f, nil
			}
			known = append(known, strings.TrimPrefix(f.Exts[0], "."))
		}
		return nil, fmt.Errorf("format %q: want %s", name, orList(known))
	}
	ext := strings.ToLower(filepath.Ext(path))
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	var known []string
	for _, f := range formats {
		if write && f.Write == nil {
			continue
		}
		if slices.Contains(f.Exts, ext) {
			return f, nil
		}
		known = append(known, f.Name+" ("+f.Exts[0]+")")
	}
	return nil, fmt.Errorf("%s: want a %s file", path, orList(known))
}

// StreamingExts lists the extensions of formats that can be written in
// time pieces, for messages.
func StreamingExts() string {
	formatsMu.RLock()
	defer formatsMu.RUnlock()
	var s []string
	for _, f := range formats {
		if f.NewWriter != nil {
			s = append(s, f.Exts[0])
		}
	}
	return orList(s)
}

// ReadSeries reads the table at path in the format of its extension.
func ReadSeries(path string, o *NCOptions) (*diffroute.DataTensor, error) {
	f, err := SeriesFormatFor(path, false)
	if err != nil {
		return nil, err
	}
	if o != nil && o.Var != "" && !f.Vars {
		return nil, fmt.Errorf("%s: a %s file has no variables to choose from", path, f.Name)
	}
	if o != nil && o.Columns != nil && !f.Vars {
		// Formats read whole: the columns are picked afterwards.
		oc := *o
		oc.Columns = nil
		x, err := f.Read(path, &oc)
		if err != nil {
			return nil, err
		}
		return pickColumns(x, o.Columns, path)
	}
	return f.Read(path, o)
}

// pickColumns returns the rows of x at the given positions, in that order.
func pickColumns(x *diffroute.DataTensor, cols []int32, path string) (*diffroute.DataTensor, error) {
	ids := make([]int64, len(cols))
	seen := make([]bool, x.N)
	for k, c := range cols {
		if c < 0 || int(c) >= x.N {
			return nil, fmt.Errorf("%s: reach position %d outside its %d reaches", path, c, x.N)
		}
		if seen[c] {
			return nil, fmt.Errorf("%s: reach position %d listed twice", path, c)
		}
		seen[c] = true
		ids[k] = x.IDs[c]
	}
	y := &diffroute.DataTensor{B: x.B, N: len(cols), T: x.T, Data: make([]float32, x.B*len(cols)*x.T), IDs: ids, Times: x.Times, Step: x.Step, Units: x.Units}
	for b := 0; b < x.B; b++ {
		for k, c := range cols {
			copy(y.Series(b, k), x.Series(b, int(c)))
		}
	}
	return y, nil
}

// WriteSeries writes q to path in the format of its extension, atomically.
func WriteSeries(path string, q *diffroute.DataTensor) error { return WriteSeriesWith(path, q, nil) }

// WriteSeriesWith is WriteSeries with options (o.Format, when set, picks
// the format instead of the extension).
func WriteSeriesWith(path string, q *diffroute.DataTensor, o *SeriesOptions) error {
	f, err := formatOf(path, o)
	if err != nil {
		return err
	}
	if o != nil && o.Order != nil && !f.ordered {
		// Write a reordered copy.
		if _, err := invertOrder(o.Order, q.N); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		ids := make([]int64, q.N)
		for j, k := range o.Order {
			ids[j] = q.IDs[k]
		}
		c := &diffroute.DataTensor{B: q.B, N: q.N, T: q.T, Data: make([]float32, len(q.Data)), IDs: ids, Times: q.Times, Step: q.Step, Units: q.Units}
		for b := 0; b < q.B; b++ {
			for j, k := range o.Order {
				copy(c.Series(b, j), q.Series(b, int(k)))
			}
		}
		oc := *o
		oc.Order = nil
		return f.Write(path, c, &oc)
	}
	return f.Write(path, q, o)
}

func formatOf(path string, o *SeriesOptions) (*SeriesFormat, error) {
	if o != nil && o.Format != "" {
		return SeriesFormatNamed(o.Format, true)
	}
	return SeriesFormatFor(path, true)
}

// CheckSeriesOptions says, before any routing, whether a table can be
// written at path with o: a format known for writing that takes o's
// compression level. The writers check again; this saves a long run
// that would fail at its end.
func CheckSeriesOptions(path string, o *SeriesOptions) error {
	f, err := formatOf(path, o)
	if err != nil {
		return err
	}
	if o == nil || o.Compress == 0 || o.Compress == -1 {
		return nil
	}
	switch {
	case f.MaxCompress == 0 && f.Name == "netCDF":
		return fmt.Errorf("%s: classic netCDF has no compression: write netCDF-4 (.nc4 or format nc4)", path)
	case f.MaxCompress == 0:
		return fmt.Errorf("%s: %s has no compression", path, f.Name)
	case o.Compress < -1 || o.Compress > f.MaxCompress:
		return fmt.Errorf("%s: %s compression level %d: want 1 to %d, or -1 for none", path, f.Name, o.Compress, f.MaxCompress)
	}
	return nil
}

// NewSeriesWriter starts a table written in time pieces at path, in the
// format of its extension.
func NewSeriesWriter(path string, ids []int64, times []string, step time.Duration) (SeriesWriter, error) {
	return NewSeriesWriterWith(path, ids, times, step, nil)
}

// NewSeriesWriterWith is NewSeriesWriter with options.
func NewSeriesWriterWith(path string, ids []int64, times []string, step time.Duration, o *SeriesOptions) (SeriesWriter, error) {
	f, err := formatOf(path, o)
	if err != nil {
		return nil, err
	}
	if f.NewWriter == nil {
		return nil, fmt.Errorf("%s: %s files cannot be written in time chunks; write a %s file", path, f.Name, StreamingExts())
	}
	return f.NewWriter(path, ids, times, step, o)
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
