package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// overlapBytes is about the size of one chunk's runoff in an overlapped
// run: large enough that a chunk is read and written in few system calls,
// small enough that the first read and the last write, which nothing
// overlaps, are a small part of the run.
var overlapBytes = 4 << 20

// afterChunk, when set (tests), is called with each chunk's first step once
// it is routed.
var afterChunk func(t0 int)

// overlapChunk returns the time chunk (in runoff steps) of an in-order run
// of n reaches, T steps and f sub-steps per step whose reading, routing and
// writing overlap (routeOverlapped), or 0 when the run is better read,
// routed and written whole: when its three chunk buffers would not take
// less memory than the whole series. Chunks are whole blocks of the
// recursive router's 4,096 sub-steps, so that they route as fast as the
// whole series.
func overlapChunk(n, T, f int) int {
	if n <= 0 || f <= 0 {
		return 0
	}
	block := max(1, 4096/f)
	c := block * max(1, overlapBytes/(4*n*block))
	if 3*c > T {
		return 0
	}
	return c
}

// routeOverlapped routes as routeInOrder does (in the recursive router's
// order, in place) and writes the discharge to out as writeDischarge
// would, a time chunk at a time, in three stages that overlap: chunk k+1
// is read while chunk k is routed and chunk k-1 written. Three chunk
// buffers go round, so the run holds three chunks instead of the whole
// series. The file is published once every chunk is written; a run that
// fails or is cancelled leaves no file.
func routeOverlapped(ctx context.Context, src *runoffSource, rapid *data.RAPID, opts diffroute.Options, chunk int, out string, so *data.SeriesOptions, warn func(string, ...any)) error {
	net := rapid.Network
	onet, order, err := net.InRoutingOrder(opts.Workers)
	if err != nil {
		return err
	}
	rows, err := src.orderedRows(rapid, order)
	if err != nil {
		return err
	}
	read := func(t0, count int, into *diffroute.DataTensor) (*diffroute.DataTensor, error) {
		return src.readOrdered(t0, count, rows, into)
	}
	if src.rangesOrdered != nil {
		// The header is read once, not once a chunk.
		r, err := src.rangesOrdered(rows)
		if err != nil {
			return err
		}
		if r != nil {
			read = r
		}
	}
	// The file lists reaches in network order: reach j is row o.Order[j].
	o := data.SeriesOptions{}
	if so != nil {
		o = *so
	}
	o.Order = make([]int32, len(order))
	for k, j := range order {
		o.Order[j] = int32(k)
	}
	if err := os.MkdirAll(dirOf(out), 0o755); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// The chunk buffers are reused and little else is allocated: let
		// the heap grow to twice what is live before collecting, rather
		// than pause routing for a collection every chunk or two.
		if old := debug.SetGCPercent(100); old < 0 || old > 100 {
			debug.SetGCPercent(old) // collection off, or already rarer
		} else {
			defer debug.SetGCPercent(old)
		}
	}
	n, T := net.Len(), len(src.times)
	ids := make([]int64, n) // the rows: the network's reaches in order
	for k, i := range order {
		ids[k] = net.ID(int(i))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Chunk buffers go round: the reader takes a free one, the writer
	// gives it back.
	const nbuf = 3
	free := make(chan []float32, nbuf)
	for range nbuf {
		free <- nil // allocated when first taken
	}
	type piece struct {
		x   *diffroute.DataTensor
		t0  int
		buf []float32
		err error
	}
	loaded := make(chan piece)
	go func() { // reader: one chunk ahead of the router
		defer close(loaded)
		for c := range diffroute.TimeChunks(T, chunk, 0) {
			var buf []float32
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			if buf == nil {
				buf = make([]float32, n*chunk)
			}
			into := &diffroute.DataTensor{B: 1, N: n, T: c.Len(), Data: buf[:n*c.Len()]}
			x, err := read(c.Start, c.Len(), into)
			select {
			case loaded <- piece{x, c.Start, buf, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	routed := make(chan piece, nbuf)
	var stream *data.QoutStream
	wrote := make(chan error, 1)
	go func() { // writer: one chunk behind the router
		// The file's header is written while the first chunk is read and
		// routed. (Every read of a netCDF runoff file has the step of its
		// time coordinate, src.step.)
		var werr error
		// Its errors name the file; they are not usage errors (a full disk,
		// say), as a sequential run's writer's are not.
		if stream, werr = data.NewQoutStream(out, ids, src.times, src.step, &o); werr != nil {
			stream = nil
			cancel()
		}
		for p := range routed {
			if werr == nil {
				werr = stream.Write(p.x, p.t0)
			}
			if werr != nil {
				cancel() // stop reading and routing
			}
			free <- p.buf
		}
		wrote <- werr
	}()

	// The router is built while the first chunk is read.
	next := 0
	rr, rerr := diffroute.NewRecursiveRouter(ctx, onet, ReorderOptions(opts, order))
	if rerr == nil {
		checkWindow(warn, rr)
	}
	for p := range loaded {
		if rerr != nil {
			break
		}
		if rerr = p.err; rerr == nil {
			rerr = rr.RouteTo(ctx, p.x, p.x)
		}
		if rerr == nil {
			p.x.Units = "m3/s"
			rerr = checkDischarge(p.x, p.t0)
		}
		if rerr != nil {
			break
		}
		next = p.t0 + p.x.T
		routed <- p
		if afterChunk != nil {
			afterChunk(p.t0)
		}
	}
	if rerr == nil && next < T {
		// The reader stops early only when the run is cancelled (or the
		// writer failed).
		if rerr = ctx.Err(); rerr == nil {
			rerr = fmt.Errorf("%s: runoff reading stopped at step %d of %d", src.path, next, T)
		}
	}
	cancel()
	close(routed)
	for range loaded { // let the reader finish
	}
	werr := <-wrote
	switch {
	case werr != nil && (rerr == nil || errors.Is(rerr, context.Canceled)):
		rerr = werr // the writer's failure stopped the run
	case rerr == nil:
		if stream == nil {
			return fmt.Errorf("%s: nothing was written", out)
		}
		return stream.Close()
	}
	if stream != nil {
		stream.Abort()
	}
	return rerr
}
