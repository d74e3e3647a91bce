package diffroute

import (
	"context"
	"fmt"
	"iter"
)

// Staged gradients: the forward pass runs cluster by cluster like
// RouteClusters and keeps the transfers (one series per cut edge, the same
// as a staged run holds at most); the backward pass visits the clusters in
// reverse order, runs each cluster's adjoint from its runoff and incoming
// transfers and hands the adjoint of each incoming transfer to the cluster
// it came from. Only one cluster's adjoint (and, for the kernel method, its
// kernel) is alive at a time, so a basin's gradient fits the memory budget
// of its staged forward run plus its transfers.
//
// Each method differentiates its own staged run:
//   - recursive: the recursive adjoint of every cluster (the forward pass
//     is recomputed in float64);
//   - kernel: the derivative of StagedRouter's kernel run, whose clusters
//     are routed by their kernels and whose fine transfers come from the
//     recursion over each cluster's transfer sources: the transposed
//     convolution and the correlation with the transfer kernels for runoff
//     and transfers, the recursive adjoint for the transfer sources, and
//     parameter gradients of the kernels by KernelRouter.Backward's rule
//     (recursive adjoint for time-domain builds, the FFT build's adjoint for
//     convolution IRFs and Compat "diffroute"); under Compat "diffroute"
//     DiffRoute's coarse transfers, whose adjoint is the target cluster's
//     runoff gradient added to the source's discharge gradient. See
//     grad_staged_kernel.go.

// ClusterAdjoint is what the backward pass consumes for one cluster: its
// runoff (as given to the forward pass) and ∂L/∂(its discharge), rows in the
// cluster's network order.
type ClusterAdjoint struct {
	Cluster int
	Runoff  *DataTensor
	Gy      *DataTensor
}

// ClusterGradients are one cluster's gradients.
type ClusterGradients struct {
	Cluster int
	// Reaches holds the full-network index of each reach of the cluster's
	// network: Params and InitialQ are in that order.
	Reaches []int32
	// Runoff is ∂L/∂(the cluster's runoff), in that runoff's layout.
	Runoff *DataTensor
	Params Params
	// InitialQ is nil for the kernel method, which starts from rest.
	InitialQ []float64
	// TransferQ0 adds ∂L/∂q0 to reaches of upstream clusters (full-network
	// index → value): the initial discharge of a transfer's source enters
	// this cluster.
	TransferQ0 map[int32]float64
}

// StagedGrad holds a staged forward pass's transfers for its backward pass.
type StagedGrad struct {
	opts  Options
	cl    *Clusters
	b, t  int
	bufs  [][]float64 // recursive: per slot, the fine transfer, B·T·f values
	dbufs [][]float64 // per slot: ∂L/∂(the transfer), once its target cluster is done
	next  int         // forward: next cluster; backward: counts down

	// the kernel method
	sr    *StagedRouter // its staged forward run
	kbufs [][]float32   // per slot: the transfer its target cluster received (fine B·T·f, or coarse B·T)
}

// NewStagedGrad prepares a staged gradient run of cl with opts (Params and
// InitialQ in the full network's order).
func NewStagedGrad(cl *Clusters, opts Options) (*StagedGrad, error) {
	if cl == nil {
		return nil, fmt.Errorf("diffroute: no clusters")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	sg := &StagedGrad{opts: o, cl: cl, bufs: make([][]float64, len(cl.Transfers)), dbufs: make([][]float64, len(cl.Transfers)), b: -1}
	if o.Method == Kernel {
		sg.sr = &StagedRouter{opts: o, drop: -1}
		sg.kbufs = make([][]float32, len(cl.Transfers))
	}
	return sg, nil
}

// engine prepares cluster c's adjoint with the transfers entering it.
func (sg *StagedGrad) engine(c *Cluster, x *DataTensor, params bool) (*gradRun, []int, error) {
	o := subsetOptions(sg.opts, c.Reaches)
	o.Method = Recursive
	e, err := newGradEngine(c.Net, o, params)
	if err != nil {
		return nil, nil, err
	}
	if sg.b < 0 {
		sg.b, sg.t = x.B, x.T
	} else if x.B != sg.b || x.T != sg.t {
		return nil, nil, fmt.Errorf("diffroute: cluster %d runoff is %d×%d (batch×steps), the first cluster's %d×%d", c.Index, x.B, x.T, sg.b, sg.t)
	}
	g, rows, err := e.prepare(x, nil)
	if err != nil {
		return nil, nil, err
	}
	for _, slot := range c.In {
		tr := sg.cl.Transfers[slot]
		buf := sg.bufs[slot]
		if buf == nil {
			return nil, nil, fmt.Errorf("diffroute: transfer %d → %d (slot %d) has not been routed", sg.cl.Net.ID(int(tr.From)), sg.cl.Net.ID(int(tr.To)), slot)
		}
		v := tr.DstLocal
		if g.in[v] == nil {
			g.in[v] = make([]float64, len(buf))
		}
		for k, q := range buf {
			g.in[v][k] += q
		}
		// The source's initial discharge enters v before the first step
		// (and its gradient goes back to the source, q0 given or not).
		if g.inPrev == nil {
			g.inPrev = make([]float64, c.Net.Len())
		}
		if q0 := sg.opts.InitialQ; q0 != nil {
			g.inPrev[v] += q0[tr.From]
		}
	}
	for _, slot := range c.Out {
		g.out[sg.cl.Transfers[slot].SrcLocal] = make([]float64, x.B*x.T*e.f)
	}
	return g, rows, nil
}

// Forward consumes the clusters' runoff in order and yields each cluster's
// discharge (float64 forward pass), keeping the transfers for Backward.
func (sg *StagedGrad) Forward(ctx context.Context, runoffs iter.Seq2[ClusterRunoff, error]) iter.Seq2[ClusterDischarge, error] {
	return func(yield func(ClusterDischarge, error) bool) {
		for cr, err := range runoffs {
			if err != nil {
				yield(ClusterDischarge{}, err)
				return
			}
			if cr.Cluster != sg.next || cr.Runoff == nil {
				yield(ClusterDischarge{}, fmt.Errorf("diffroute: got runoff for cluster %d, expected cluster %d", cr.Cluster, sg.next))
				return
			}
			if sg.sr != nil {
				d, err := sg.forwardKernel(ctx, cr)
				if err != nil {
					yield(ClusterDischarge{}, err)
					return
				}
				sg.next++
				if !yield(d, nil) {
					return
				}
				continue
			}
			c := &sg.cl.Clusters[cr.Cluster]
			g, _, err := sg.engine(c, cr.Runoff, false)
			if err == nil {
				err = g.run(ctx, nil)
			}
			if err != nil {
				yield(ClusterDischarge{}, fmt.Errorf("diffroute: cluster %d: %w", c.Index, err))
				return
			}
			for _, slot := range c.Out {
				sg.bufs[slot] = g.out[sg.cl.Transfers[slot].SrcLocal]
			}
			y := newDischarge(cr.Runoff, c.Net)
			g.toTensor(y, g.y)
			sg.next++
			if !yield(ClusterDischarge{Cluster: c.Index, Reaches: c.Reaches, Discharge: y}, nil) {
				return
			}
		}
	}
}

// Backward consumes, in reverse cluster order, each cluster's runoff and
// ∂L/∂(its discharge), and yields its gradients. Forward must have run over
// every cluster first.
func (sg *StagedGrad) Backward(ctx context.Context, adjoints iter.Seq2[ClusterAdjoint, error]) iter.Seq2[ClusterGradients, error] {
	return func(yield func(ClusterGradients, error) bool) {
		if sg.next != sg.cl.Len() {
			yield(ClusterGradients{}, fmt.Errorf("diffroute: the staged forward pass stopped at cluster %d of %d", sg.next, sg.cl.Len()))
			return
		}
		irf, err := LookupIRF(sg.opts.IRF)
		if err != nil {
			yield(ClusterGradients{}, err)
			return
		}
		for ca, err := range adjoints {
			if err != nil {
				yield(ClusterGradients{}, err)
				return
			}
			if ca.Cluster != sg.next-1 || ca.Runoff == nil {
				yield(ClusterGradients{}, fmt.Errorf("diffroute: got the adjoint of cluster %d, expected cluster %d (reverse order)", ca.Cluster, sg.next-1))
				return
			}
			c := &sg.cl.Clusters[ca.Cluster]
			var cg ClusterGradients
			if sg.sr != nil {
				cg, err = sg.backwardKernel(ctx, c, ca)
			} else {
				cg, err = sg.backwardCluster(ctx, c, ca, len(irf.GradParams) > 0)
			}
			if err != nil {
				yield(ClusterGradients{}, fmt.Errorf("diffroute: cluster %d: %w", c.Index, err))
				return
			}
			sg.next--
			if !yield(cg, nil) {
				return
			}
		}
	}
}

func (sg *StagedGrad) backwardCluster(ctx context.Context, c *Cluster, ca ClusterAdjoint, params bool) (ClusterGradients, error) {
	g, rows, err := sg.engine(c, ca.Runoff, params)
	if err != nil {
		return ClusterGradients{}, err
	}
	for _, slot := range c.Out {
		d := sg.dbufs[slot]
		if d == nil {
			return ClusterGradients{}, fmt.Errorf("transfer slot %d: its target cluster has no adjoint yet", slot)
		}
		g.gout[sg.cl.Transfers[slot].SrcLocal] = d
		sg.dbufs[slot] = nil
	}
	if err := g.run(ctx, func() error { return g.setGy(ca.Gy) }); err != nil {
		return ClusterGradients{}, err
	}
	for _, slot := range c.In {
		tr := sg.cl.Transfers[slot]
		sg.dbufs[slot] = g.din[tr.DstLocal]
		sg.bufs[slot] = nil
	}
	gr := g.gradients(ca.Runoff, rows, nil)
	cg := ClusterGradients{Cluster: c.Index, Reaches: c.Reaches, Runoff: gr.Runoff, Params: gr.Params, InitialQ: gr.InitialQ}
	if g.dinPrev != nil {
		cg.TransferQ0 = map[int32]float64{}
		for _, slot := range c.In {
			tr := sg.cl.Transfers[slot]
			cg.TransferQ0[tr.From] += g.dinPrev[tr.DstLocal]
		}
	}
	return cg, nil
}

// RouteGrad routes runoff through the clusters, evaluates loss on the
// discharge (full network order) and returns discharge, loss and gradients,
// cluster by cluster (see StagedGrad). Options as for Route; the gradient
// always starts from Options.InitialQ.
func (s *StagedRouter) RouteGrad(ctx context.Context, runoff *DataTensor, cl *Clusters, loss LossFunc) (*DataTensor, float64, *Gradients, error) {
	if loss == nil {
		return nil, 0, nil, fmt.Errorf("diffroute: RouteGrad needs a loss function")
	}
	sg, err := NewStagedGrad(cl, s.opts)
	if err != nil {
		return nil, 0, nil, err
	}
	if sg.sr != nil { // the forward pass on s's backend, and the backward pass's hook
		sg.sr.KernelBuilder, sg.sr.ClusterRouter, sg.sr.ClusterGrad = s.KernelBuilder, s.ClusterRouter, s.ClusterGrad
		defer sg.sr.Reset()
	}
	rows, err := alignRunoff(runoff, cl.Net)
	if err != nil {
		return nil, 0, nil, err
	}
	y := newDischarge(runoff, cl.Net)
	for d, err := range sg.Forward(ctx, clusterRunoffs(runoff, rows, cl, 0, runoff.T, false)) {
		if err != nil {
			return nil, 0, nil, err
		}
		for b := 0; b < y.B; b++ {
			for k, i := range d.Reaches {
				copy(y.Series(b, int(i)), d.Discharge.Series(b, k))
			}
		}
	}
	gy := NewDataTensor(y.B, y.IDs, y.T)
	L, err := loss(y, gy)
	if err != nil {
		return nil, 0, nil, err
	}
	n := cl.Net.Len()
	gr := &Gradients{Runoff: NewDataTensor(runoff.B, runoff.IDs, runoff.T), Params: Params{}}
	if s.opts.Method != Kernel { // the kernel method starts from rest
		gr.InitialQ = make([]float64, n)
	}
	gr.Runoff.Times, gr.Runoff.Step = runoff.Times, runoff.Step
	adjoints := func(yield func(ClusterAdjoint, error) bool) {
		for k := cl.Len() - 1; k >= 0; k-- {
			c := &cl.Clusters[k]
			x := gatherRows(runoff, rows, c.Reaches, c.Net.IDs(), 0, runoff.T, nil)
			cgy := NewDataTensor(gy.B, c.Net.IDs(), gy.T)
			for b := 0; b < gy.B; b++ {
				for j, i := range c.Reaches {
					copy(cgy.Series(b, j), gy.Series(b, int(i)))
				}
			}
			if !yield(ClusterAdjoint{Cluster: k, Runoff: x, Gy: cgy}, nil) {
				return
			}
		}
	}
	for cg, err := range sg.Backward(ctx, adjoints) {
		if err != nil {
			return nil, 0, nil, err
		}
		for b := 0; b < runoff.B; b++ {
			for j, i := range cg.Reaches {
				copy(gr.Runoff.Series(b, rows[i]), cg.Runoff.Series(b, j))
			}
		}
		for name, v := range cg.Params {
			if gr.Params[name] == nil {
				gr.Params[name] = make([]float64, n)
			}
			for j, i := range cg.Reaches {
				gr.Params[name][i] = v[j]
			}
		}
		for j, v := range cg.InitialQ {
			gr.InitialQ[cg.Reaches[j]] += v
		}
		for i, v := range cg.TransferQ0 {
			gr.InitialQ[i] += v
		}
	}
	return y, L, gr, nil
}
