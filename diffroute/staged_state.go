package diffroute

import (
	"context"
	"fmt"
)

// State returns the state of a staged run between two time chunks, for the
// whole network (see State). The recursive method's is the same as an
// unstaged run's (every reach's filter state, wherever the cuts are); the
// kernel method's holds the runoff history of every reach, and for fine
// transfers the last (MaxDelay−1)·f fine outflows of each transfer source and
// the state of the recursive routers that compute them.
func (s *StagedRouter) State() (*State, error) {
	st := s.st
	switch {
	case st == nil || st.b < 0:
		return nil, fmt.Errorf("diffroute: no routing state yet: route some steps first")
	case st.err != nil:
		return nil, fmt.Errorf("diffroute: an earlier staged call failed (%w): no consistent state", st.err)
	case st.next != 0:
		return nil, fmt.Errorf("diffroute: the staged run is in the middle of a time chunk (cluster %d of %d): no consistent state", st.next, st.cl.Len())
	}
	net := st.cl.Net
	out := newStateHeader(s.opts, net, st.b, st.steps)
	if s.opts.Method == Recursive {
		var parts []*State
		for k, rr := range st.rec {
			if rr == nil {
				return nil, fmt.Errorf("diffroute: cluster %d has not been routed yet: no state", k)
			}
			p, err := rr.State()
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		}
		out.Vars = mergeStateVars(parts, "")
		return out, nil
	}
	h := KernelWarmup(s.opts)
	if h == 0 {
		return out, nil
	}
	f := s.opts.SubSteps
	hv := StateVar{Name: "runoff_history", Width: h}
	var hids []int64
	var parts [][]float64
	for k := range st.cl.Clusters {
		c := &st.cl.Clusters[k]
		x := st.xtails[k]
		if x == nil || x.B != st.b {
			return nil, fmt.Errorf("diffroute: cluster %d has no runoff history yet: no state", k)
		}
		hids = append(hids, c.Net.IDs()...)
		parts = append(parts, float64s(lastSteps(x, h).Data))
	}
	hv.IDs, hv.Data = hids, interleave(parts, st.b)
	out.Vars = append(out.Vars, hv)
	if !s.fine() || len(st.cl.Transfers) == 0 {
		return out, nil
	}
	tv := StateVar{Name: "transfer_history", Width: h * f}
	parts = parts[:0]
	for slot, tr := range st.cl.Transfers {
		tail := st.tails[slot]
		nw := 0
		if tail != nil {
			nw = len(tail) / st.b
		}
		pad := make([]float64, st.b*h*f)
		for b := 0; b < st.b; b++ {
			for k, v := range tail[b*nw : (b+1)*nw] {
				pad[b*h*f+h*f-nw+k] = float64(v)
			}
		}
		tv.IDs = append(tv.IDs, net.ID(int(tr.From)))
		parts = append(parts, pad)
	}
	tv.Data = interleave(parts, st.b)
	out.Vars = append(out.Vars, tv)
	var srcs []*State
	for k, rr := range st.rec {
		if rr == nil {
			if len(st.cl.Clusters[k].Out) > 0 {
				return nil, fmt.Errorf("diffroute: cluster %d has not been routed yet: no state", k)
			}
			continue
		}
		p, err := rr.State()
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, p)
	}
	out.Vars = append(out.Vars, mergeStateVars(srcs, "source_")...)
	return out, nil
}

// interleave joins per-part arrays laid out [b][rows][width] into one with
// the parts' rows one after the other for each batch member.
func interleave(parts [][]float64, b int) []float64 {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]float64, 0, n)
	for bi := 0; bi < b; bi++ {
		for _, p := range parts {
			m := len(p) / b
			out = append(out, p[bi*m:(bi+1)*m]...)
		}
	}
	return out
}

// mergeStateVars joins the variables of states over disjoint reaches (the
// clusters of a staged run) into variables over all of them, renamed with
// prefix. Every part must have the same batch.
func mergeStateVars(parts []*State, prefix string) []StateVar {
	var names []string
	width := map[string]int{}
	for _, p := range parts {
		for _, v := range p.Vars {
			if _, ok := width[v.Name]; !ok {
				names = append(names, v.Name)
				width[v.Name] = v.Width
			}
			width[v.Name] = max(width[v.Name], v.Width)
		}
	}
	var out []StateVar
	for _, name := range names {
		w := width[name]
		mv := StateVar{Name: prefix + name, Width: w}
		var data [][]float64
		b := 0
		for _, p := range parts {
			v := p.Var(name)
			if v == nil {
				continue
			}
			b = p.B
			ids := p.rowIDs(v)
			mv.IDs = append(mv.IDs, ids...)
			d := v.Data
			if v.Width != w { // pad rows to the widest part
				d = make([]float64, p.B*len(ids)*w)
				for r := 0; r < p.B*len(ids); r++ {
					copy(d[r*w:], v.Data[r*v.Width:(r+1)*v.Width])
				}
			}
			data = append(data, d)
		}
		mv.Data = interleave(data, b)
		out = append(out, mv)
	}
	return out
}

// SetState makes the next call continue a staged run of cl from s, a state
// of the whole network (see State) that a staged or unstaged run with the
// same method, IRF, parameters, sub-steps and conventions wrote. Recursive
// states do not depend on the cuts; kernel-method states with fine transfers
// need the same transfer sources (the same clusters).
func (s *StagedRouter) SetState(state *State, cl *Clusters) error {
	s.Reset()
	if err := s.begin(cl); err != nil {
		return err
	}
	if err := CheckState(state, cl.Net, s.opts); err != nil {
		s.Reset()
		return err
	}
	if err := s.loadState(state); err != nil {
		s.Reset()
		return err
	}
	return nil
}

func (s *StagedRouter) loadState(state *State) error {
	st := s.st
	st.b, st.steps = state.B, state.Steps
	if s.opts.Method == Recursive {
		for k := range st.cl.Clusters {
			c := &st.cl.Clusters[k]
			rr, err := NewRecursiveRouter(context.Background(), c.Net, subsetOptions(s.opts, c.Reaches))
			if err != nil {
				return err
			}
			if err := rr.loadState(state, ""); err != nil {
				return err
			}
			st.rec[k] = rr
		}
		return nil
	}
	h := KernelWarmup(s.opts)
	st.seen, st.warm, st.origin = h, h, h
	if h == 0 {
		return nil
	}
	for k := range st.cl.Clusters {
		x, err := historyTensor(state, st.cl.Clusters[k].Net.IDs(), h)
		if err != nil {
			return err
		}
		st.xtails[k] = x
	}
	if !s.fine() {
		return nil
	}
	f := s.opts.SubSteps
	for slot, tr := range st.cl.Transfers {
		v, err := state.gather("transfer_history", []int64{st.cl.Net.ID(int(tr.From))}, h*f)
		if err != nil {
			return err
		}
		st.tails[slot] = float32s(v)
	}
	for k := range st.cl.Clusters {
		c := &st.cl.Clusters[k]
		if len(c.Out) == 0 {
			continue
		}
		rr, err := s.sourceRouter(c)
		if err != nil {
			return err
		}
		if err := rr.loadState(state, "source_"); err != nil {
			return err
		}
	}
	return nil
}

// RouteNext routes the next steps of a series (aligned by reach id with the
// full network) through the clusters, continuing from the state the previous
// call or SetState left, in time chunks of TimeChunk steps, and returns the
// discharge of every reach in the full network's order. Unlike Route it
// keeps the state for State and later calls.
func (s *StagedRouter) RouteNext(ctx context.Context, runoff *DataTensor, cl *Clusters) (*DataTensor, error) {
	if err := s.begin(cl); err != nil {
		return nil, err
	}
	if s.st.next != 0 {
		return nil, fmt.Errorf("diffroute: the staged run is in the middle of a time chunk (cluster %d of %d)", s.st.next, cl.Len())
	}
	return s.routeChunks(ctx, runoff, cl)
}
