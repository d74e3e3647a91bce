package data

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diffroute-go/diffroute/diffroute"
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
	// Write writes a whole table atomically; nil when the format is read
	// only.
	Write func(path string, q *diffroute.DataTensor) error
	// NewWriter starts a table of ids × times written in time pieces, for
	// discharge streamed chunk by chunk; nil when the format cannot.
	NewWriter func(path string, ids []int64, times []string, step time.Duration) (SeriesWriter, error)
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
	RegisterSeriesFormat(&SeriesFormat{
		Name: "netCDF", Exts: []string{".nc", ".nc4", ".netcdf"}, Ranged: true, Vars: true,
		Read:  ReadRunoffNC,
		Write: func(path string, q *diffroute.DataTensor) error { return WriteQoutNC(path, q, nil) },
		NewWriter: func(path string, ids []int64, times []string, step time.Duration) (SeriesWriter, error) {
			return NewQoutWriter(path, ids, times, step, nil)
		},
	})
	RegisterSeriesFormat(&SeriesFormat{
		Name: "CSV", Exts: []string{".csv"},
		Read:  func(path string, _ *NCOptions) (*diffroute.DataTensor, error) { return ReadCSVTableFile(path) },
		Write: WriteCSVTableFile,
	})
}

// SeriesFormatFor returns the format of path by its extension, or an error
// naming the path and the extensions known (for writing when write is set).
func SeriesFormatFor(path string, write bool) (*SeriesFormat, error) {
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
	return f.Read(path, o)
}

// WriteSeries writes q to path in the format of its extension, atomically.
func WriteSeries(path string, q *diffroute.DataTensor) error {
	f, err := SeriesFormatFor(path, true)
	if err != nil {
		return err
	}
	return f.Write(path, q)
}

// NewSeriesWriter starts a table written in time pieces at path, in the
// format of its extension.
func NewSeriesWriter(path string, ids []int64, times []string, step time.Duration) (SeriesWriter, error) {
	f, err := SeriesFormatFor(path, true)
	if err != nil {
		return nil, err
	}
	if f.NewWriter == nil {
		return nil, fmt.Errorf("%s: %s files cannot be written in time chunks; write a %s file", path, f.Name, StreamingExts())
	}
	return f.NewWriter(path, ids, times, step)
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
