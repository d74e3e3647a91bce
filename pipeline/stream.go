package pipeline

import (
	"context"
	"fmt"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/progress"
)

// streamRoute routes in time chunks: the next chunk is read while the
// current one is routed cluster by cluster, and each chunk's discharge is
// written while the next is routed, so neither the whole runoff nor the
// whole discharge is ever in memory.
func streamRoute(ctx context.Context, src *runoffSource, net *diffroute.Network, cl *diffroute.Clusters, opts diffroute.Options, dev *device, chunk int, out string, so *data.SeriesOptions, prog progress.Reporter, ss *streamState) error {
	T := len(src.times)
	if ss != nil && ss.rs.every > 0 {
		chunk = min(chunk, ss.rs.every) // states are taken between chunks
	}
	ids := net.IDs()
	if ss != nil && ss.keep != nil {
		ids = ss.keep
	}
	w, err := newWriter(out, max(1, src.members), ids, src.times, src.step, so)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()
	sr, err := diffroute.NewStagedRouter(opts)
	if err != nil {
		return err
	}
	if err := dev.stage(sr); err != nil {
		return err
	}
	if ss != nil && ss.in != nil {
		if err := sr.SetState(ss.in, cl); err != nil {
			return fmt.Errorf("--state-in %s: %w", ss.rs.in, err)
		}
	}
	type loaded struct {
		c   diffroute.TimeChunk
		x   *diffroute.DataTensor
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan loaded)
	go func() { // reader: one chunk ahead of the router
		defer close(chunks)
		for c := range diffroute.TimeChunks(T, chunk, 0) {
			x, err := src.read(c.Start, c.Len())
			select {
			case chunks <- loaded{c, x, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// Each chunk's discharge is gathered for all reaches and written as
	// whole rows: Qout files are time-major, so per-cluster columns would be
	// strided writes. The writer runs one chunk behind the router.
	type piece struct {
		q  *diffroute.DataTensor
		t0 int
	}
	pieces := make(chan piece, 1)
	wrote := make(chan error, 1)
	go func() {
		var werr error
		for p := range pieces {
			if werr == nil {
				werr = w.Write(p.q, p.t0)
			}
		}
		wrote <- werr
	}()
	nChunks := (T + chunk - 1) / chunk
	prog = stopped{prog}
	prog.Start("routing chunks", int64(nChunks))
	var rerr error
	k := 0
	for l := range chunks {
		if rerr = l.err; rerr != nil {
			break
		}
		q := diffroute.NewDataTensor(l.x.B, net.IDs(), l.x.T)
		q.Times, q.Step, q.Units = l.x.Times, l.x.Step, "m3/s"
		for cd, err := range sr.RouteClusters(ctx, diffroute.ClusterRunoffs(l.x, cl, 0, l.x.T), cl) {
			if err != nil {
				rerr = err
				break
			}
			for b := 0; b < q.B; b++ {
				for j, g := range cd.Reaches {
					copy(q.Series(b, int(g)), cd.Discharge.Series(b, j))
				}
			}
		}
		if rerr == nil {
			rerr = checkDischarge(q, l.c.Start)
		}
		if rerr != nil {
			break
		}
		if ss != nil && ss.keep != nil {
			if q, rerr = q.SelectIDs(ss.keep); rerr != nil {
				break
			}
		}
		pieces <- piece{q, l.c.Start}
		if ss != nil {
			if rerr = ss.after(sr, cl, src.times, l.c.End); rerr != nil {
				break
			}
		}
		k++
		prog.Update(int64(k))
	}
	if rerr == nil && k < nChunks {
		// The reader stops early only when the run is cancelled: say so,
		// rather than let the writer complain of missing steps.
		if rerr = ctx.Err(); rerr == nil {
			rerr = fmt.Errorf("%s: runoff reading stopped after %d of %d chunks", src.path, k, nChunks)
		}
	}
	close(pieces)
	cancel()
	for range chunks { // let the reader finish
	}
	if werr := <-wrote; rerr == nil {
		rerr = werr
	}
	prog.Done(rerr)
	if rerr != nil {
		return rerr
	}
	if err := w.Close(); err != nil {
		return err
	}
	ok = true
	if ss != nil {
		return ss.rs.finish(stagedStep{sr, cl}, ss.cfg, src.times, ss.step)
	}
	return nil
}
