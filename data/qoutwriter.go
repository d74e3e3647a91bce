package data

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// QoutWriter writes a Qout file piece by piece: a staged run hands it the
// discharge of one cluster of reaches and one range of steps at a time, so
// the whole output is never held in memory. The file has the layout of
// WriteQoutNC (same variables, types and attributes). It is written under a
// temporary name next to path and renamed into place by Close once every
// (reach, step) has been written; until then Qout holds netCDF's default
// float fill value (9.96921e+36) where nothing was written.
//
// A QoutWriter is safe for concurrent use; its netCDF calls are serialised
// with every other netCDF call of this package.
type QoutWriter struct {
	mu    sync.Mutex
	path  string
	tmp   string
	ds    netcdf.Dataset
	qv    netcdf.Var // reads (go-netcdf)
	qr    ncRecVar   // writes (C API: time is a record dimension)
	ids   []int64
	pos   map[int64]int
	T     int
	times []time.Time // parsed labels, nil when none
	step  time.Duration
	cover [][]span // per reach position: disjoint, sorted, non-adjacent [a, b)
	done  bool
	buf   []float32
}

// span is a half-open range of steps [a, b).
type span struct{ a, b int }

// NewQoutWriter creates the Qout file for reaches ids (rivid, in this order)
// and steps labelled times (len(times) steps; labels and step are treated as
// by WriteQoutNC: parseable labels give CF seconds since 1970, otherwise the
// step index is stored). ids must be distinct and fit int32. Call Write for
// the pieces, then Close, or Abort to give up.
//
// Qout is time-major, so a Write is fastest when its reaches are contiguous
// in ids: ordering ids cluster by cluster makes each Write a few large
// hyperslabs. Reaches scattered with gaps of at most 1024 positions cost a
// read-back and rewrite of the span; reaches further apart cost netCDF about
// one page access per value (some µs each).
func NewQoutWriter(path string, ids []int64, times []string, step time.Duration, opt *QoutOptions) (*QoutWriter, error) {
	if err := checkRivids(ids); err != nil {
		return nil, err
	}
	pos := make(map[int64]int, len(ids))
	for i, id := range ids {
		if _, dup := pos[id]; dup {
			return nil, fmt.Errorf("data: reach id %d appears twice", id)
		}
		pos[id] = i
	}
	if step < 0 {
		return nil, fmt.Errorf("data: negative step %v", step)
	}
	o := qoutOptions(opt)
	if err := o.check(len(ids)); err != nil {
		return nil, err
	}
	T := len(times)
	tc := makeQoutTime(times, T, step)
	w := &QoutWriter{
		path:  path,
		ids:   slices.Clone(ids),
		pos:   pos,
		T:     T,
		step:  step,
		cover: make([][]span, len(ids)),
	}
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
	qv, qr, err := writeQoutHeader(ds, w.ids, &o, &tc)
	if err != nil {
		ds.Close()
		os.Remove(w.tmp)
		return nil, fmt.Errorf("data: %s: %w", path, err)
	}
	w.ds, w.qv, w.qr = ds, qv, qr
	return w, nil
}

// Path is the final path of the file.
func (w *QoutWriter) Path() string { return w.path }

// Write writes batch member 0 of q, the discharge (m3 s-1) of reaches q.IDs
// for steps [t0, t0+q.T) of the file. Reaches are found by id; an id that is
// not among the writer's is an error naming it, and nothing is written.
// Writing a (reach, step) again overwrites it. When q and the writer both
// have parseable time labels they must agree.
func (w *QoutWriter) Write(q *diffroute.DataTensor, t0 int) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if q.B < 1 {
		return errors.New("data: QoutWriter.Write: the tensor has no batch member")
	}
	if err := checkDischargeUnits(q.Units); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("data: %s: Qout writer already closed", w.path)
	}
	if t0 < 0 || t0+q.T > w.T {
		return fmt.Errorf("data: %s: steps [%d, %d) outside the file's [0, %d)", w.path, t0, t0+q.T, w.T)
	}
	if w.step > 0 && q.Step > 0 && q.Step != w.step {
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

	// Rows of q sorted by file position.
	type row struct{ p, i int }
	rows := make([]row, q.N)
	for i, id := range q.IDs {
		p, ok := w.pos[id]
		if !ok {
			return fmt.Errorf("data: %s: reach %d is not in the Qout file", w.path, id)
		}
		rows[i] = row{p, i}
	}
	sort.Slice(rows, func(a, b int) bool { return rows[a].p < rows[b].p })
	for k := 1; k < len(rows); k++ {
		if rows[k].p == rows[k-1].p {
			return fmt.Errorf("data: %s: reach %d appears twice in the tensor", w.path, w.ids[rows[k].p])
		}
	}
	if q.N == 0 || q.T == 0 {
		return nil
	}

	// Segments of nearby positions, each written as (time, rivid)
	// hyperslabs of at most about 1M values. A segment with gaps (reaches
	// of other clusters between its reaches, at most qoutMaxGap in a row)
	// is read first and patched: one contiguous read and write per row beat
	// a strided write per reach, which costs netCDF a page per value.
	ncMu.Lock()
	defer ncMu.Unlock()
	for k := 0; k < len(rows); {
		e := k + 1
		for e < len(rows) && rows[e].p-rows[e-1].p-1 <= qoutMaxGap {
			e++
		}
		seg := rows[k:e]
		p0 := seg[0].p
		W := seg[len(seg)-1].p - p0 + 1
		dense := W == len(seg)
		nr := max(1, min(q.T, (1<<20)/W))
		if cap(w.buf) < nr*W {
			w.buf = make([]float32, nr*W)
		}
		for r0 := 0; r0 < q.T; r0 += nr {
			n := min(nr, q.T-r0)
			buf := w.buf[:n*W]
			start := []uint64{uint64(t0 + r0), uint64(p0)}
			count := []uint64{uint64(n), uint64(W)}
			if !dense {
				if err := w.qv.ReadFloat32Slice(buf, start, count); err != nil {
					return fmt.Errorf("data: %s: reading back reaches %d..%d, steps [%d, %d): %w",
						w.path, w.ids[p0], w.ids[p0+W-1], t0+r0, t0+r0+n, err)
				}
			}
			for _, rw := range seg {
				c := rw.p - p0
				for r, v := range q.Data[rw.i*q.T+r0 : rw.i*q.T+r0+n] {
					buf[r*W+c] = v
				}
			}
			if err := w.qr.putFloat32(buf, start, count); err != nil {
				return fmt.Errorf("data: %s: writing reaches %d..%d, steps [%d, %d): %w",
					w.path, w.ids[p0], w.ids[p0+W-1], t0+r0, t0+r0+n, err)
			}
		}
		for _, rw := range seg {
			w.cover[rw.p] = addSpan(w.cover[rw.p], span{t0, t0 + q.T})
		}
		k = e
	}
	return nil
}

// qoutMaxGap is the longest run of other reaches' positions that a Write
// reads back and rewrites rather than splitting its hyperslab (a strided
// column write costs netCDF classic about a page per value).
const qoutMaxGap = 1024

// addSpan merges [x.a, x.b) into the sorted, disjoint, non-adjacent spans s.
func addSpan(s []span, x span) []span {
	if x.a >= x.b {
		return s
	}
	// Fast path: after the last span (the usual order of a staged run).
	if n := len(s); n == 0 || s[n-1].b < x.a {
		return append(s, x)
	} else if s[n-1].a <= x.a {
		s[n-1].b = max(s[n-1].b, x.b)
		return s
	}
	// First span that ends at or after x.a, last that starts at or before x.b.
	i := sort.Search(len(s), func(k int) bool { return s[k].b >= x.a })
	j := sort.Search(len(s), func(k int) bool { return s[k].a > x.b })
	if i < j {
		x.a = min(x.a, s[i].a)
		x.b = max(x.b, s[j-1].b)
	}
	return slices.Replace(s, i, j, x)
}

// Close checks that every (reach, step) was written, then flushes, syncs and
// renames the file into place. When some are missing it returns an error
// naming the first reach (in file order) and its first missing steps, and
// removes the temporary file: nothing is left at path. Close after Close or
// Abort is an error.
func (w *QoutWriter) Close() (err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return fmt.Errorf("data: %s: Qout writer already closed", w.path)
	}
	w.done = true
	defer func() {
		if err != nil {
			os.Remove(w.tmp)
			err = outputError(err, w.tmp, w.path)
		}
	}()
	var missing error
	for p, s := range w.cover {
		if w.T == 0 || (len(s) == 1 && s[0].a == 0 && s[0].b == w.T) {
			continue
		}
		a, b := 0, w.T
		if len(s) > 0 {
			if s[0].a > 0 {
				b = s[0].a
			} else {
				a = s[0].b
				if len(s) > 1 {
					b = s[1].a
				}
			}
		}
		missing = fmt.Errorf("data: %s: reach %d (position %d) has no discharge for steps [%d, %d) of %d", w.path, w.ids[p], p, a, b, w.T)
		break
	}
	ncMu.Lock()
	cerr := w.ds.Close()
	ncMu.Unlock()
	w.buf = nil
	if missing != nil {
		return missing
	}
	if cerr != nil {
		return fmt.Errorf("data: %s: %w", w.path, cerr)
	}
	return publishTemp(w.tmp, w.path)
}

// Abort closes and removes the temporary file; nothing is left at path. It
// is a no-op after Close or Abort, so it can be deferred.
func (w *QoutWriter) Abort() {
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
