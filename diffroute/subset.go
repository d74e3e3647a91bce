package diffroute

import (
	"context"
	"fmt"
	"iter"
	"slices"
)

// Subnetwork returns the network made of the given reaches (network indices),
// in that order: reach k of the result is reaches[k] of net. A reach whose
// downstream reach is not in the list becomes an outlet. Duplicates and
// out-of-range indices are errors.
func (net *Network) Subnetwork(reaches []int32) (*Network, error) {
	n := net.Len()
	local := make(map[int32]int, len(reaches))
	ids := make([]int64, len(reaches))
	for k, i := range reaches {
		if i < 0 || int(i) >= n {
			return nil, fmt.Errorf("diffroute: reach position %d outside the network's %d reaches", i, n)
		}
		if _, dup := local[i]; dup {
			return nil, fmt.Errorf("diffroute: reach %d listed twice for a subnetwork", net.ids[i])
		}
		local[i] = k
		ids[k] = net.ids[i]
	}
	down := make([]int, len(reaches))
	for k, i := range reaches {
		down[k] = -1
		if d := net.down[i]; d >= 0 {
			if j, ok := local[d]; ok {
				down[k] = j
			}
		}
	}
	return NewNetworkIndex(ids, down)
}

// UpstreamClosure returns the network indices of the reaches with the given
// ids and of every reach draining into them, in PreOrder (each outlet of the
// closure followed by its upstream reaches). Unknown ids are an error.
func (net *Network) UpstreamClosure(ids []int64) ([]int32, error) {
	in := make([]bool, net.Len())
	t := net.t()
	for _, id := range ids {
		i, ok := net.Index(id)
		if !ok {
			return nil, fmt.Errorf("diffroute: reach %d is not in the network", id)
		}
		p := t.pre[i]
		for _, v := range t.order[p : p+t.size[i]] {
			in[v] = true
		}
	}
	var out []int32
	for _, v := range t.order {
		if in[v] {
			out = append(out, v)
		}
	}
	return out, nil
}

// Subset returns the parameters of the given reaches (network indices), in
// that order, for use with a Subnetwork of the same reaches.
func (p Params) Subset(reaches []int32) Params {
	if p == nil {
		return nil
	}
	q := make(Params, len(p))
	for name, v := range p {
		s := make([]float64, len(reaches))
		for k, i := range reaches {
			if int(i) < len(v) {
				s[k] = v[i]
			}
		}
		q[name] = s
	}
	return q
}

// subsetOptions restricts the per-reach fields of o to reaches.
func subsetOptions(o Options, reaches []int32) Options {
	o.Params = o.Params.Subset(reaches)
	if o.InitialQ != nil {
		q := make([]float64, len(reaches))
		for k, i := range reaches {
			q[k] = o.InitialQ[i]
		}
		o.InitialQ = q
	}
	return o
}

// Selection is the part of a network needed to compute the discharge of a
// few reaches (gauges): their upstream closure, as a network of its own, with
// options restricted to it. Routing the selection gives the listed reaches
// the same discharge as routing the whole network.
type Selection struct {
	Net     *Network // the upstream closure of Outputs
	Opts    Options  // Params and InitialQ restricted to Net
	Reaches []int32  // network index in the full network of each reach of Net
	Outputs []int64  // the reach ids asked for, in the order given
}

// Select restricts routing to the listed reaches and what drains into them.
func Select(net *Network, opts Options, ids []int64) (*Selection, error) {
	if len(ids) == 0 {
		return nil, fmt.Errorf("diffroute: no reaches selected")
	}
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return nil, fmt.Errorf("diffroute: reach %d selected twice", id)
		}
		seen[id] = true
	}
	reaches, err := net.UpstreamClosure(ids)
	if err != nil {
		return nil, err
	}
	sub, err := net.Subnetwork(reaches)
	if err != nil {
		return nil, err
	}
	if opts.InitialQ != nil && len(opts.InitialQ) != net.Len() {
		return nil, fmt.Errorf("diffroute: initial discharge has %d values for %d reaches", len(opts.InitialQ), net.Len())
	}
	return &Selection{Net: sub, Opts: subsetOptions(opts, reaches), Reaches: reaches, Outputs: slices.Clone(ids)}, nil
}

// Route routes the selection unstaged, with the method of its options, and
// returns the discharge of the selected reaches only, in the order they were
// listed. Runoff is aligned by reach id and may hold other reaches too.
func (s *Selection) Route(ctx context.Context, runoff *DataTensor) (*DataTensor, error) {
	var y *DataTensor
	o, err := s.Opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Method == Kernel {
		kr, err := NewKernelRouter(ctx, s.Net, s.Opts)
		if err != nil {
			return nil, err
		}
		if y, err = kr.Route(ctx, runoff); err != nil {
			return nil, err
		}
	} else {
		rr, err := NewRecursiveRouter(ctx, s.Net, s.Opts)
		if err != nil {
			return nil, err
		}
		if y, err = rr.Route(ctx, runoff); err != nil {
			return nil, err
		}
	}
	return y.SelectIDs(s.Outputs)
}

// RowBlock is a range [Start, End) of rows.
type RowBlock struct{ Start, End int }

// RowBlocks splits n rows into consecutive blocks of at most size rows
// (size ≤ 0: one block).
func RowBlocks(n, size int) iter.Seq[RowBlock] {
	return func(yield func(RowBlock) bool) {
		if size <= 0 {
			size = max(n, 1)
		}
		for s := 0; s < n; s += size {
			if !yield(RowBlock{s, min(n, s+size)}) {
				return
			}
		}
	}
}

// SpaceChunks splits the outputs of a network (reach ids; nil = every reach)
// into blocks of at most rows reaches, taken in PreOrder so that each block's
// upstream closure stays compact, and yields the Selection of each block.
// Routing every block and gathering their outputs gives the discharge of all
// outputs, with at most one block's closure in memory at a time.
func SpaceChunks(net *Network, opts Options, outputs []int64, rows int) iter.Seq2[*Selection, error] {
	return func(yield func(*Selection, error) bool) {
		var order []int64
		if outputs == nil {
			order = make([]int64, 0, net.Len())
			for _, v := range net.PreOrder() {
				order = append(order, net.ID(int(v)))
			}
		} else {
			pos := make([]int32, 0, len(outputs))
			for _, id := range outputs {
				i, ok := net.Index(id)
				if !ok {
					yield(nil, fmt.Errorf("diffroute: reach %d is not in the network", id))
					return
				}
				pos = append(pos, int32(net.Pre(i)))
			}
			slices.Sort(pos)
			for _, p := range pos {
				order = append(order, net.ID(int(net.PreOrder()[p])))
			}
		}
		for blk := range RowBlocks(len(order), rows) {
			sel, err := Select(net, opts, order[blk.Start:blk.End])
			if !yield(sel, err) || err != nil {
				return
			}
		}
	}
}
