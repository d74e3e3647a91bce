package diffroute

import (
	"context"
	"fmt"
	"slices"
)

// AlignRows returns, for each reach of net (network order), the row of
// runoff that holds its id: the alignment every router applies, for backends
// outside this package. Rows for other ids are ignored; a reach without a row,
// or an id given twice, is an error.
func AlignRows(runoff *DataTensor, net *Network) ([]int, error) { return alignRunoff(runoff, net) }

// alignRunoff returns, for each network reach, the runoff row holding its id,
// so that routers read runoff by id and never by position. Rows for ids not in
// the network are ignored; a network reach without a row is an error.
func alignRunoff(runoff *DataTensor, net *Network) ([]int, error) {
	if runoff == nil {
		return nil, fmt.Errorf("diffroute: no runoff")
	}
	if err := runoff.Validate(); err != nil {
		return nil, err
	}
	if runoff.B < 1 {
		return nil, fmt.Errorf("diffroute: runoff has no batch members")
	}
	if slices.Equal(runoff.IDs, net.IDs()) {
		// Already in network order (the usual case, and the one worth not
		// building a map of millions of ids for): row i is reach i.
		idx := make([]int, net.Len())
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	rows := make(map[int64]int, runoff.N)
	for j, id := range runoff.IDs {
		if k, dup := rows[id]; dup {
			return nil, fmt.Errorf("diffroute: runoff has reach %d twice (rows %d and %d)", id, k, j)
		}
		rows[id] = j
	}
	idx := make([]int, net.Len())
	missing := 0
	var first int64
	for i, id := range net.IDs() {
		j, ok := rows[id]
		if !ok {
			if missing == 0 {
				first = id
			}
			missing++
			continue
		}
		idx[i] = j
	}
	if missing > 0 {
		return nil, fmt.Errorf("diffroute: runoff lacks %d of the network's %d reaches (first: reach %d)", missing, net.Len(), first)
	}
	return idx, nil
}

// newDischarge allocates the output tensor for net with runoff's batch and
// time labels.
func newDischarge(runoff *DataTensor, net *Network) *DataTensor {
	y := NewDataTensor(runoff.B, net.IDs(), runoff.T)
	if len(runoff.Times) == runoff.T {
		y.Times = append([]string(nil), runoff.Times...)
	}
	y.Step = runoff.Step
	y.Units = "m3/s"
	return y
}

// Router is a router prepared for one network. Route takes runoff aligned by
// reach id and returns discharge for every reach, in network order; RouteTo
// writes the same discharge into a tensor the caller owns (dims of runoff's
// batch and time, the network's reach ids in network order), so that routing
// chunk after chunk allocates no output. State is explicit: a router whose
// method carries state between calls (the recursive method, so that
// consecutive time chunks route as one series) continues from the previous
// call until Reset; Reset on a stateless method does nothing.
// *RecursiveRouter, *KernelRouter and the gpu package's Router implement it.
type Router interface {
	Route(ctx context.Context, runoff *DataTensor) (*DataTensor, error)
	RouteTo(ctx context.Context, dst, runoff *DataTensor) error
	Reset()
	Network() *Network
}

var (
	_ Router = (*RecursiveRouter)(nil)
	_ Router = (*KernelRouter)(nil)
)

// NewRouter prepares the method that opts select (recursive by default) for
// net; the options are checked here, so a bad enum value or a contradiction
// is reported before any routing. Building the kernel method's kernel
// honours ctx.
func NewRouter(ctx context.Context, net *Network, opts Options) (Router, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Device != nil {
		dev := opts.Device
		opts.Device = nil
		return dev.NewRouter(ctx, net, opts)
	}
	if o.Method == Kernel {
		kr, err := NewKernelRouter(ctx, net, opts)
		if err != nil {
			return nil, err // not a nil *KernelRouter in a non-nil Router
		}
		return kr, nil
	}
	rr, err := NewRecursiveRouter(ctx, net, opts)
	if err != nil {
		return nil, err
	}
	return rr, nil
}

// checkDst reports a destination tensor whose dims or reach ids differ from
// what routing runoff through net gives.
func checkDst(dst, runoff *DataTensor, net *Network) error {
	if runoff == nil {
		return fmt.Errorf("diffroute: no runoff")
	}
	if dst == nil || dst.B != runoff.B || dst.T != runoff.T || dst.N != net.Len() || len(dst.Data) != dst.B*dst.N*dst.T || len(dst.IDs) != dst.N {
		return fmt.Errorf("diffroute: RouteTo needs a destination of dims (%d, %d, %d)", runoff.B, net.Len(), runoff.T)
	}
	for i, id := range dst.IDs {
		if id != net.ID(i) {
			return fmt.Errorf("diffroute: RouteTo destination row %d is reach %d, want %d (network order)", i, id, net.ID(i))
		}
	}
	return nil
}

// LTIRouter routes runoff with fixed options through whatever network it is
// given, preparing the method for each network (the prepared router of the
// last network is kept and reused). It mirrors DiffRoute's LTIRouter.
type LTIRouter struct {
	opts Options
	last Router
}

// NewLTIRouter returns a router with the given options.
func NewLTIRouter(opts Options) *LTIRouter { return &LTIRouter{opts: opts} }

// Route routes runoff through net from the initial state.
func (r *LTIRouter) Route(ctx context.Context, runoff *DataTensor, net *Network) (*DataTensor, error) {
	if r.last == nil || r.last.Network() != net {
		rt, err := NewRouter(ctx, net, r.opts)
		if err != nil {
			return nil, err
		}
		r.last = rt
	}
	r.last.Reset()
	return r.last.Route(ctx, runoff)
}
