package pipeline

import (
	"context"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/progress"
)

// routeMembers routes an ensemble held in memory member by member through
// one router: the network, parameters and (kernel method) kernel are
// prepared once, the next member is read while one is routed and the
// previous one written, and each member's discharge goes to out as soon as
// it is routed. A member is routed exactly as a single run routes it (the
// router's parallel path for one series), and memory holds a few members,
// not the ensemble. With out "" the members are gathered and returned.
func routeMembers(ctx context.Context, src *runoffSource, net *diffroute.Network, opts diffroute.Options, dev *device, out string, so *data.SeriesOptions, prog progress.Reporter) (*diffroute.DataTensor, error) {
	B, T := src.members, len(src.times)
	router, err := dev.router(ctx, net, opts)
	if err != nil {
		return nil, err
	}
	var w *data.EnsembleWriter
	var all *diffroute.DataTensor
	if out != "" {
		sw, err := newWriter(out, B, net.IDs(), src.times, src.step, so)
		if err != nil {
			return nil, err
		}
		w = sw.(*data.EnsembleWriter)
	}
	ok := false
	defer func() {
		if !ok && w != nil {
			w.Abort()
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type loaded struct {
		x   *diffroute.DataTensor
		err error
	}
	members := make(chan loaded)
	go func() { // reader: one member ahead of the router
		defer close(members)
		for b := 0; b < B; b++ {
			x, err := src.member(b, 0, T)
			select {
			case members <- loaded{x, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// Two discharge buffers: one routed into while the other is written.
	free := make(chan *diffroute.DataTensor, 2)
	type routed struct {
		b int
		q *diffroute.DataTensor
	}
	done := make(chan routed, 1)
	wrote := make(chan error, 1)
	go func() { // writer: one member behind the router
		var werr error
		for r := range done {
			if werr == nil && w != nil {
				werr = w.WriteMember(r.b, r.q, 0)
			}
			free <- r.q
		}
		wrote <- werr
	}()
	prog = stopped{prog}
	prog.Start("routing members", int64(B))
	var rerr error
	b, allocated := 0, 0
	for l := range members {
		if rerr = l.err; rerr != nil {
			break
		}
		var q *diffroute.DataTensor
		if allocated < cap(free) {
			q = diffroute.NewDataTensor(1, net.IDs(), T)
			allocated++
		} else {
			q = <-free
		}
		q.Times, q.Step, q.Units = l.x.Times, l.x.Step, "m3/s"
		router.Reset()
		if rerr = router.RouteTo(ctx, q, l.x); rerr == nil {
			rerr = checkDischarge(q, 0)
		}
		if rerr != nil {
			break
		}
		if w == nil {
			if all == nil {
				all = diffroute.NewDataTensor(B, net.IDs(), T)
				all.Times, all.Step, all.Units = q.Times, q.Step, q.Units
			}
			copy(all.Data[b*q.N*T:], q.Data)
		}
		done <- routed{b, q}
		b++
		prog.Update(int64(b))
	}
	if rerr == nil && b < B {
		if rerr = ctx.Err(); rerr == nil {
			rerr = context.Canceled
		}
	}
	close(done)
	cancel()
	for range members { // let the reader finish
	}
	if werr := <-wrote; rerr == nil {
		rerr = werr
	}
	prog.Done(rerr)
	if rerr != nil {
		return nil, rerr
	}
	if w != nil {
		if err := w.Close(); err != nil {
			return nil, err
		}
	}
	ok = true
	return all, nil
}
