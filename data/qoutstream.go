package data

import (
	"fmt"
	"os"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// QoutStream writes a classic Qout file from consecutive time chunks of
// every reach: a time-chunked run writes each chunk's discharge while the
// next one is routed, and never holds the whole series. The file is the one
// WriteSeriesWith writes for the whole tensor, byte for byte (the creation
// date apart). Values go straight into the file, as WriteQoutNC's do. The
// file is written under a temporary name and published by Close (synced,
// then renamed); Abort, or a failed Write or Close, leaves nothing at the
// path.
//
// A QoutStream is not safe for concurrent use.
type QoutStream struct {
	path, tmp string
	w         *qoutValues
	order     []int32
	next      int      // the step the next Write starts at
	prev      [2]int64 // byte range of the previous chunk's records
	buf       []byte
	done      bool
}

// StreamsQout says whether NewQoutStream writes path with options o: a
// classic netCDF file.
func StreamsQout(path string, o *SeriesOptions) bool {
	f, err := formatOf(path, o)
	return err == nil && f.Name == "netCDF" && directWrite
}

// NewQoutStream creates the Qout file path for tensors whose rows are the
// reaches ids and whose steps are labelled times (with the given step),
// as WriteSeriesWith(path, q, o) would write the whole tensor q: o.Order
// puts row o.Order[j] at the file's reach j and o.Coords give the reaches'
// coordinates. path must be a classic netCDF file (StreamsQout); there
// must be reaches and steps. Write the chunks with Write, then Close.
func NewQoutStream(path string, ids []int64, times []string, step time.Duration, o *SeriesOptions) (*QoutStream, error) {
	if !StreamsQout(path, o) {
		return nil, fmt.Errorf("data: %s: only classic netCDF files are written in time chunks straight into the file", path)
	}
	N, T := len(ids), len(times)
	if N == 0 || T == 0 {
		return nil, fmt.Errorf("data: %s: no reaches or no steps to write", path)
	}
	if err := checkRivids(ids); err != nil {
		return nil, err
	}
	var order []int32
	fileIDs := ids
	if o != nil && o.Order != nil {
		if _, err := invertOrder(o.Order, N); err != nil {
			return nil, fmt.Errorf("data: %s: %w", path, err)
		}
		order = o.Order
		fileIDs = make([]int64, N)
		for j, k := range order {
			fileIDs[j] = ids[k]
		}
	}
	qo, err := o.qoutOpts(fileIDs, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	qo.Order = order
	opt := qoutOptions(qo)
	if err := opt.check(N); err != nil {
		return nil, err
	}
	tc := makeQoutTime(times, T, step)
	f, err := createTemp(path)
	if err != nil {
		return nil, err
	}
	s := &QoutStream{path: path, tmp: f.Name(), order: order}
	f.Close()
	if err = createQoutHeader(s.tmp, ids, &opt, &tc); err == nil {
		s.w, err = openQoutValues(s.tmp, opt.Var, N, T)
	}
	if err != nil {
		os.Remove(s.tmp)
		return nil, outputError(fmt.Errorf("data: %s: %w", path, err), s.tmp, path)
	}
	return s, nil
}

// Write writes batch member 0 of q, the discharge (m3 s-1) of every reach
// (rows as given to NewQoutStream) for the steps [t0, t0+q.T): t0 must be
// the step after the previous chunk's last (0 first).
func (s *QoutStream) Write(q *diffroute.DataTensor, t0 int) error {
	if s.done {
		return fmt.Errorf("data: %s: Qout stream already closed", s.path)
	}
	switch {
	case q.B < 1 || q.N != s.w.N || len(q.Data) < q.N*q.T:
		return fmt.Errorf("data: %s: a chunk of %d reaches x %d steps for a file of %d reaches", s.path, q.N, q.T, s.w.N)
	case t0 != s.next || t0+q.T > s.w.T:
		return fmt.Errorf("data: %s: steps [%d, %d) written after step %d of %d", s.path, t0, t0+q.T, s.next, s.w.T)
	}
	if err := checkDischargeUnits(q.Units); err != nil {
		return err
	}
	var err error
	s.buf, err = s.w.write(q, t0, s.order, 0, q.N, s.buf)
	if err != nil {
		s.Abort()
		return outputError(err, s.tmp, s.path)
	}
	// The previous chunk has been on its way to disk while this one was
	// routed: wait for it here, where the wait overlaps routing, rather
	// than in the final fsync.
	if s.prev[1] > 0 { // (0 bytes would mean to the end of the file)
		awaitWriteback(s.w.f, s.prev[0], s.prev[1])
	}
	s.prev = [2]int64{s.w.begin + int64(t0)*s.w.recsize, int64(q.T) * s.w.recsize}
	s.next += q.T
	return nil
}

// Close publishes the file once every step has been written: synced,
// renamed into place, the folder synced. Otherwise, or when that fails, it
// removes the temporary file and returns an error.
func (s *QoutStream) Close() error {
	if s.done {
		return fmt.Errorf("data: %s: Qout stream already closed", s.path)
	}
	s.done = true
	s.buf = nil
	err := s.w.close()
	if err == nil && s.next != s.w.T {
		err = fmt.Errorf("data: %s: only steps [0, %d) of %d were written", s.path, s.next, s.w.T)
	}
	if err != nil {
		os.Remove(s.tmp)
		return outputError(err, s.tmp, s.path)
	}
	return publishTemp(s.tmp, s.path)
}

// Abort removes the temporary file; nothing is left at the path. It is a
// no-op after Close or Abort, so it can be deferred.
func (s *QoutStream) Abort() {
	if s.done {
		return
	}
	s.done = true
	s.buf = nil
	s.w.close()
	os.Remove(s.tmp)
}
