package data

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// WriteEnsembleNC writes discharge with several batch (ensemble) members
// as Qout(member, time, rivid) (see NewEnsembleWriter), atomically. A
// ".nc4" path (or nc4 true) writes netCDF-4 with deflate level 4;
// otherwise classic.
func WriteEnsembleNC(path string, q *diffroute.DataTensor, nc4 bool) error {
	if err := q.Validate(); err != nil {
		return err
	}
	nc4 = nc4 || strings.EqualFold(filepath.Ext(path), ".nc4")
	o := &QoutOptions{NetCDF4: nc4}
	if nc4 {
		o.Compress = 4
	}
	w, err := NewEnsembleWriter(path, q.B, q.IDs, q.Times, q.Step, o)
	if err != nil {
		return err
	}
	if err := w.Write(q, 0); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// EnsembleWriter writes Qout(member, time, rivid) float32 "m3 s-1" in time
// pieces, so that a streamed ensemble run never holds the whole discharge:
// with rivid(rivid) int32, member(member) int32 (1, 2, …), time(time) (CF
// seconds since 1970 when the labels are dates, the step index otherwise)
// and lat(rivid), lon(rivid) when opt gives coordinates. With
// opt.NetCDF4, Qout is chunked one member × up to 512 steps × 256 reaches
// and deflated at opt.Compress. The file is written under a temporary name
// and renamed into place by Close once every step has been written.
//
// An EnsembleWriter is safe for concurrent use; its netCDF calls are
// serialised with every other netCDF call of this package.
type EnsembleWriter struct {
	mu      sync.Mutex
	path    string
	tmp     string
	ds      netcdf.Dataset
	qv      ncRecVar
	ids     []int64
	B, T    int
	times   []time.Time
	step    time.Duration
	written []bool // per member and step: [b*T+t]
	done    bool
	buf     []float32
}

// NewEnsembleWriter creates the file for members members, reaches ids (in
// this order) and steps labelled times. Call Write for the pieces, then
// Close, or Abort to give up.
func NewEnsembleWriter(path string, members int, ids []int64, times []string, step time.Duration, opt *QoutOptions) (*EnsembleWriter, error) {
	if members < 1 {
		return nil, fmt.Errorf("data: an ensemble of %d members", members)
	}
	if err := checkRivids(ids); err != nil {
		return nil, err
	}
	o := qoutOptions(opt)
	if err := o.check(len(ids)); err != nil {
		return nil, err
	}
	T := len(times)
	w := &EnsembleWriter{path: path, ids: slices.Clone(ids), B: members, T: T, step: step, written: make([]bool, members*T)}
	if ts, ok := parseTimes(times); ok {
		w.times = ts
	}
	f, err := createTemp(path)
	if err != nil {
		return nil, err
	}
	w.tmp = f.Name()
	f.Close()
	ncMu.Lock()
	defer ncMu.Unlock()
	defer quietHDF5()()
	ds, err := netcdf.CreateFile(w.tmp, o.mode())
	if err != nil {
		os.Remove(w.tmp)
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	err = setNoFill(ds) // Close checks that every step was written
	if err == nil {
		err = w.header(ds, &o, makeQoutTime(times, T, step))
	}
	if err != nil {
		ds.Close()
		os.Remove(w.tmp)
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	w.ds = ds
	return w, nil
}

func (w *EnsembleWriter) header(ds netcdf.Dataset, o *QoutOptions, tc qoutTime) error {
	md, err := ds.AddDim("member", uint64(w.B))
	if err != nil {
		return err
	}
	td, err := ds.AddDim("time", uint64(w.T))
	if err != nil {
		return err
	}
	N := len(w.ids)
	rd, err := ds.AddDim("rivid", uint64(N))
	if err != nil {
		return err
	}
	qv, err := ds.AddVar(o.Var, netcdf.FLOAT, []netcdf.Dim{md, td, rd})
	if err != nil {
		return err
	}
	if o.NetCDF4 {
		if err := defineNC4(ds, qv, o, w.B, w.T, N); err != nil {
			return err
		}
	}
	mv, err := ds.AddVar("member", netcdf.INT, []netcdf.Dim{md})
	if err != nil {
		return err
	}
	rv, err := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{rd})
	if err != nil {
		return err
	}
	tv, err := ds.AddVar("time", netcdf.DOUBLE, []netcdf.Dim{td})
	if err != nil {
		return err
	}
	var latv, lonv netcdf.Var
	type textAttr struct {
		v          netcdf.Var
		name, text string
	}
	attrs := []textAttr{
		{qv, "long_name", o.LongName}, {qv, "units", o.Units}, {rv, "long_name", "unique identifier for each river reach"},
		{rv, "cf_role", "timeseries_id"}, {mv, "long_name", "ensemble member"},
	}
	if o.Lat != nil {
		if latv, err = ds.AddVar("lat", netcdf.DOUBLE, []netcdf.Dim{rd}); err != nil {
			return err
		}
		if lonv, err = ds.AddVar("lon", netcdf.DOUBLE, []netcdf.Dim{rd}); err != nil {
			return err
		}
		attrs = append(attrs, textAttr{qv, "coordinates", "lat lon"}, textAttr{latv, "units", "degrees_north"}, textAttr{lonv, "units", "degrees_east"})
	}
	if tc.cfTime {
		attrs = append(attrs, textAttr{tv, "units", "seconds since 1970-01-01 00:00:00+00:00"}, textAttr{tv, "calendar", "gregorian"}, textAttr{tv, "standard_name", "time"})
	} else {
		attrs = append(attrs, textAttr{tv, "units", "1"})
	}
	for _, a := range attrs {
		if err := writeText(a.v.Attr(a.name), a.text); err != nil {
			return err
		}
	}
	conv := "CF-1.6"
	if o.NetCDF4 {
		conv = "CF-1.8"
	}
	for name, text := range map[string]string{"Conventions": conv, "featureType": "timeSeries", "source": o.Source, "title": o.Title} {
		if err := writeText(ds.Attr(name), text); err != nil {
			return err
		}
	}
	if err := ds.EndDef(); err != nil {
		return err
	}
	members := make([]int32, w.B)
	for b := range members {
		members[b] = int32(b + 1)
	}
	if err := mv.WriteInt32s(members); err != nil {
		return err
	}
	ids := make([]int32, N)
	for i, id := range w.ids {
		ids[i] = int32(id)
	}
	if err := rv.WriteInt32s(ids); err != nil {
		return err
	}
	if o.Lat != nil {
		if err := latv.WriteFloat64s(o.Lat); err != nil {
			return err
		}
		if err := lonv.WriteFloat64s(o.Lon); err != nil {
			return err
		}
	}
	if err := tv.WriteFloat64s(tc.secs); err != nil {
		return err
	}
	w.qv, err = recVar(ds, o.Var)
	return err
}

// Path is the final path of the file.
func (w *EnsembleWriter) Path() string { return w.path }

// Write writes every member of q, the discharge (m3 s-1) of the writer's
// reaches in its order, for steps [t0, t0+q.T) of the file.
func (w *EnsembleWriter) Write(q *diffroute.DataTensor, t0 int) error {
	if q.B != w.B {
		return fmt.Errorf("data: %s: %d members given, the file has %d", w.path, q.B, w.B)
	}
	return w.write(-1, q, t0)
}

// WriteMember writes q, one member's discharge (m3 s-1) of the writer's
// reaches in its order, as member b (0-based) for steps [t0, t0+q.T): an
// ensemble routed member by member is written as it goes.
func (w *EnsembleWriter) WriteMember(b int, q *diffroute.DataTensor, t0 int) error {
	if q.B != 1 || b < 0 || b >= w.B {
		return fmt.Errorf("data: %s: member %d of %d given as %d batch members, want one", w.path, b, w.B, q.B)
	}
	return w.write(b, q, t0)
}

// write writes q as member b, or every member when b < 0.
func (w *EnsembleWriter) write(b int, q *diffroute.DataTensor, t0 int) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if err := checkDischargeUnits(q.Units); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.done:
		return fmt.Errorf("data: %s: ensemble writer already closed", w.path)
	case !slices.Equal(q.IDs, w.ids):
		return fmt.Errorf("data: %s: the tensor's reaches differ from the file's", w.path)
	case t0 < 0 || t0+q.T > w.T:
		return fmt.Errorf("data: %s: steps [%d, %d) outside the file's [0, %d)", w.path, t0, t0+q.T, w.T)
	case w.step > 0 && q.Step > 0 && q.Step != w.step:
		return fmt.Errorf("data: %s: tensor step %v differs from the file's %v", w.path, q.Step, w.step)
	}
	if w.times != nil && len(q.Times) == q.T && q.T > 0 {
		if ts, ok := parseTimes(q.Times); ok {
			for t, tm := range ts {
				if !tm.Equal(w.times[t0+t]) {
					return fmt.Errorf("data: %s: tensor step %d is %s, the file's step %d is %s",
						w.path, t, FormatTime(tm), t0+t, FormatTime(w.times[t0+t]))
				}
			}
		}
	}
	N, T := q.N, q.T
	if cap(w.buf) < N*T {
		w.buf = make([]float32, N*T)
	}
	buf := w.buf[:N*T]
	for qb := 0; qb < q.B; qb++ {
		fb := qb // the member of the file
		if b >= 0 {
			fb = b
		}
		// Time-major rows: Qout[fb][t0+t][i] = q[qb][i][t].
		for i := 0; i < N; i++ {
			for t, v := range q.Series(qb, i) {
				buf[t*N+i] = v
			}
		}
		ncMu.Lock()
		err := w.qv.putFloat32(buf, []uint64{uint64(fb), uint64(t0), 0}, []uint64{1, uint64(T), uint64(N)})
		ncMu.Unlock()
		if err != nil {
			return outputError(fmt.Errorf("data: %s: %w", w.path, err), w.tmp, w.path)
		}
		for t := t0; t < t0+T; t++ {
			w.written[fb*w.T+t] = true
		}
	}
	return nil
}

// Close completes the file and renames it into place; a step never written
// is an error, and then nothing is left at the path.
func (w *EnsembleWriter) Close() (err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("data: %s: ensemble writer already closed", w.path)
	}
	w.done = true
	w.buf = nil
	ncMu.Lock()
	cerr := w.ds.Close()
	ncMu.Unlock()
	defer func() {
		if err != nil {
			os.Remove(w.tmp)
		}
	}()
	if k := slices.Index(w.written, false); k >= 0 {
		return fmt.Errorf("data: %s: no discharge for member %d, step %d of %d", w.path, k/w.T+1, k%w.T, w.T)
	}
	if cerr != nil {
		return outputError(fmt.Errorf("data: %s: %w", w.path, cerr), w.tmp, w.path)
	}
	return publishTemp(w.tmp, w.path)
}

// Abort closes and removes the temporary file; nothing is left at path. It
// is a no-op after Close or Abort, so it can be deferred.
func (w *EnsembleWriter) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	ncMu.Lock()
	w.ds.Close()
	ncMu.Unlock()
	os.Remove(w.tmp)
	w.buf = nil
}

// NewEnsembleWriterWith starts Qout(member, time, rivid) at path in the
// netCDF format of its extension (or o.Format): classic or netCDF-4, with
// o's compression and the reach coordinates o holds. Other formats have no
// member dimension and are refused.
func NewEnsembleWriterWith(path string, members int, ids []int64, times []string, step time.Duration, o *SeriesOptions) (*EnsembleWriter, error) {
	f, err := formatOf(path, o)
	if err != nil {
		return nil, err
	}
	if f.Name != "netCDF" && f.Name != "netCDF-4" {
		return nil, fmt.Errorf("%s: an ensemble of %d members is written as Qout(member, time, rivid) in netCDF: name the file .nc or .nc4", path, members)
	}
	qo, err := o.qoutOpts(ids, f.Name == "netCDF-4")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return NewEnsembleWriter(path, members, ids, times, step, qo)
}
