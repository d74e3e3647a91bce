package diffroute

import (
	"context"
	"fmt"
	"io"
	"iter"
	"slices"

	"github.com/diffroute-go/route/progress"
)

// StagedRouter routes a network cut into Clusters (see Schedule) one cluster
// at a time, in cluster order, passing the outflow of every cut edge u → v to
// v through a transfer buffer. Transfers are fine-grid upstream inflow
// (docs/design.md, memory strategies), so a staged run equals the unstaged one: exactly for
// the recursive method, and for the kernel method whenever MaxDelay covers
// each path's response. Under Compat "diffroute" transfers are DiffRoute's
// coarse ones instead: u's discharge is added to v's runoff.
//
// Only one cluster's router (its kernel, for the kernel method) and the
// transfer buffers still waiting for their target cluster are alive at a
// time; a buffer is freed as soon as its target cluster has run.
//
// The router keeps state between calls of RouteClusters, so that a series
// can be routed in consecutive time chunks: the recursive method keeps every
// cluster's routing state, the kernel method the last MaxDelay−1 steps of
// each cluster's runoff and of each transfer (upstream clusters are never
// re-routed for warm-up). Route starts from a fresh state. A StagedRouter is
// not safe for concurrent use.
type StagedRouter struct {
	opts Options

	// Progress, when set, follows each time chunk as a task of as many
	// units as clusters: started before its first cluster, updated after
	// each, done after the last (or with the error that stopped it).
	Progress progress.Reporter
	// TimeChunk, when > 0, makes Route split the series into chunks of that
	// many runoff steps (outer loop over chunks, inner loop over clusters).
	TimeChunk int
	// KeepKernels keeps each cluster's kernel between time chunks instead of
	// rebuilding it for every chunk (kernel method; costs the memory of all
	// clusters' kernels).
	KeepKernels bool
	// ClusterRouter, when set, routes each cluster of the kernel method
	// (for example on a GPU, package gpu) instead of KernelRouter.RouteWith;
	// see ClusterRouterFactory.
	ClusterRouter ClusterRouterFactory
	// KernelBuilder, when set, builds each cluster's kernel router instead
	// of NewKernelRouter (for example on a GPU, package gpu); it must
	// return what NewKernelRouter would, up to rounding.
	KernelBuilder func(ctx context.Context, net *Network, opts Options) (*KernelRouter, error)
	// ClusterGrad, when set, gives the kernel method's staged gradient
	// (RouteGrad) each cluster's kernel router for its backward pass, with
	// a backend that runs the cluster's transposed convolution and per-tap
	// correlations (for example on a GPU, package gpu); the rest of the
	// backward pass runs on the CPU. A backend that implements io.Closer
	// is closed once its cluster is done.
	ClusterGrad func(ctx context.Context, cluster int, net *Network, opts Options) (*KernelRouter, ClusterKernelAdjoint, error)

	drop int // test hook: a transfer slot whose inflow is ignored (−1: none)
	st   *stagedState
}

// stagedState is the state of a staged run of one Clusters.
type stagedState struct {
	cl   *Clusters
	b    int // batch members, fixed by the first cluster routed
	seen int // steps of completed chunks
	next int // next cluster of the current chunk
	t    int // steps of the current chunk
	warm int // kernel method: warm-up steps of the current chunk
	// origin counts the steps of history restored by SetState: seen
	// includes them, the run's own step numbers do not.
	origin int
	steps  int64 // runoff steps routed since the start of the run (State)

	rec  []*RecursiveRouter // recursive: per cluster; kernel: transfer-source router
	srcs []map[int32]int32  // kernel: cluster-local index → index in the source router's network
	ker  []*KernelRouter

	bufs   [][]float32           // per slot: this chunk's transfer (fine: B×T·f; coarse: B×T)
	tails  [][]float32           // kernel: per slot, the last warm·f fine values per batch member
	xtails []*DataTensor         // kernel: per cluster, the last warm steps of runoff
	dev    []ClusterKernelRouter // ClusterRouter's routers, per cluster (KeepKernels)

	err error // a failed call leaves the state unusable until Reset
}

// ClusterRunoff is the runoff of one cluster (rows aligned by reach id;
// other rows are ignored) for one time chunk.
type ClusterRunoff struct {
	Cluster int
	Runoff  *DataTensor
}

// ClusterDischarge is the discharge of one cluster for one time chunk.
type ClusterDischarge struct {
	Cluster int
	// Reaches holds the full-network index of each row of Discharge, whose
	// IDs label the rows by reach id.
	Reaches   []int32
	Discharge *DataTensor
	// Start is the first step of the chunk counted from the start of the run.
	Start int
}

// NewStagedRouter prepares staged routing with the given options (Params and
// InitialQ in the full network's index order).
func NewStagedRouter(opts Options) (*StagedRouter, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &StagedRouter{opts: o, drop: -1}, nil
}

// Options returns the options in effect (defaults filled in).
func (s *StagedRouter) Options() Options { return s.opts }

// Reset forgets the state: the next call starts at cluster 0, step 0.
func (s *StagedRouter) Reset() {
	if s.st != nil {
		s.st.closeDevices()
	}
	s.st = nil
}

func (s *StagedRouter) fine() bool { return s.opts.Compat != CompatDiffRoute }

// begin checks cl against the state, creating it on first use.
func (s *StagedRouter) begin(cl *Clusters) error {
	if cl == nil {
		return fmt.Errorf("diffroute: no clusters")
	}
	if s.st != nil && s.st.cl != cl {
		return fmt.Errorf("diffroute: the staged router is in the middle of another schedule (Reset first)")
	}
	if s.st != nil && s.st.err != nil {
		return fmt.Errorf("diffroute: an earlier staged call failed (Reset first): %w", s.st.err)
	}
	if p := s.opts.Params; p != nil {
		for name, v := range p {
			if len(v) != cl.Net.Len() {
				return fmt.Errorf("diffroute: parameter %q has %d values for %d reaches", name, len(v), cl.Net.Len())
			}
		}
	}
	if q := s.opts.InitialQ; q != nil && len(q) != cl.Net.Len() {
		return fmt.Errorf("diffroute: initial discharge has %d values for %d reaches", len(q), cl.Net.Len())
	}
	if s.st == nil {
		k := cl.Len()
		s.st = &stagedState{cl: cl, b: -1, rec: make([]*RecursiveRouter, k), srcs: make([]map[int32]int32, k),
			ker: make([]*KernelRouter, k), bufs: make([][]float32, len(cl.Transfers)),
			tails: make([][]float32, len(cl.Transfers)), xtails: make([]*DataTensor, k),
			dev: make([]ClusterKernelRouter, k)}
	}
	return nil
}

// Route routes a whole runoff tensor (aligned by reach id with the full
// network) through the clusters, from a fresh state, in time chunks of
// TimeChunk steps, and returns the discharge of every reach in the full
// network's order.
func (s *StagedRouter) Route(ctx context.Context, runoff *DataTensor, cl *Clusters) (*DataTensor, error) {
	s.Reset()
	defer s.Reset()
	if err := s.begin(cl); err != nil {
		return nil, err
	}
	return s.routeChunks(ctx, runoff, cl)
}

// routeChunks routes a whole runoff tensor through the clusters in time
// chunks of TimeChunk steps, continuing from the state, and returns the
// discharge of every reach in the full network's order.
func (s *StagedRouter) routeChunks(ctx context.Context, runoff *DataTensor, cl *Clusters) (*DataTensor, error) {
	rows, err := alignRunoff(runoff, cl.Net)
	if err != nil {
		return nil, err
	}
	out := newDischarge(runoff, cl.Net)
	for tc := range TimeChunks(runoff.T, s.TimeChunk, 0) {
		// The routers keep no reference to a cluster's runoff: one buffer
		// serves every cluster.
		for d, err := range s.RouteClusters(ctx, clusterRunoffs(runoff, rows, cl, tc.Start, tc.End, true), cl) {
			if err != nil {
				return nil, err
			}
			for b := 0; b < out.B; b++ {
				for k, i := range d.Reaches {
					copy(out.Series(b, int(i))[tc.Start:tc.End], d.Discharge.Series(b, k))
				}
			}
		}
		if s.st.next != 0 {
			return nil, fmt.Errorf("diffroute: staged run stopped at cluster %d of %d", s.st.next, cl.Len())
		}
	}
	return out, nil
}

// ClusterRunoffs yields, lazily, the runoff of each cluster in order, cut
// from a whole tensor (aligned by reach id) for steps [t0, t1).
func ClusterRunoffs(runoff *DataTensor, cl *Clusters, t0, t1 int) iter.Seq2[ClusterRunoff, error] {
	return func(yield func(ClusterRunoff, error) bool) {
		rows, err := alignRunoff(runoff, cl.Net)
		if err != nil {
			yield(ClusterRunoff{}, err)
			return
		}
		if t0 < 0 || t1 > runoff.T || t0 > t1 {
			yield(ClusterRunoff{}, fmt.Errorf("diffroute: steps [%d, %d) outside [0, %d)", t0, t1, runoff.T))
			return
		}
		for cr, err := range clusterRunoffs(runoff, rows, cl, t0, t1, false) {
			if !yield(cr, err) {
				return
			}
		}
	}
}

func clusterRunoffs(runoff *DataTensor, rows []int, cl *Clusters, t0, t1 int, reuse bool) iter.Seq2[ClusterRunoff, error] {
	return func(yield func(ClusterRunoff, error) bool) {
		var buf []float32
		if reuse {
			buf = make([]float32, runoff.B*cl.MaxClusterNodes()*(t1-t0))
		}
		for k := range cl.Clusters {
			c := &cl.Clusters[k]
			x := gatherRows(runoff, rows, c.Reaches, c.Net.IDs(), t0, t1, buf)
			if !yield(ClusterRunoff{Cluster: k, Runoff: x}, nil) {
				return
			}
		}
	}
}

// RouteClusters consumes the runoff of each cluster lazily, in cluster order,
// and yields each cluster's discharge as soon as it is routed, so that
// neither the whole input nor the whole output need be in memory.
//
// It continues from where the previous call (or WarmUp) stopped: runoff for
// clusters already routed in the current time chunk is skipped; after the
// last cluster a new time chunk begins with cluster 0, continuing the
// series. All clusters of a chunk must have the same batch and steps.
// Breaking out of the loop leaves the state at the next cluster.
func (s *StagedRouter) RouteClusters(ctx context.Context, runoffs iter.Seq2[ClusterRunoff, error], cl *Clusters) iter.Seq2[ClusterDischarge, error] {
	return func(yield func(ClusterDischarge, error) bool) {
		if err := s.begin(cl); err != nil {
			yield(ClusterDischarge{}, err)
			return
		}
		for cr, err := range runoffs {
			if err != nil {
				yield(ClusterDischarge{}, err)
				return
			}
			if cr.Cluster < s.st.next {
				continue
			}
			d, err := s.routeNext(ctx, cr)
			if err != nil {
				yield(ClusterDischarge{}, err)
				return
			}
			if !yield(d, nil) {
				return
			}
		}
	}
}

// WarmUp routes clusters up to (not including) cluster upTo of the current
// time chunk, consuming their runoff and discarding their discharge, so that
// the transfers into cluster upTo and beyond are ready (DiffRoute's
// init_upstream_discharges). A later RouteClusters continues at upTo.
func (s *StagedRouter) WarmUp(ctx context.Context, runoffs iter.Seq2[ClusterRunoff, error], cl *Clusters, upTo int) error {
	if err := s.begin(cl); err != nil {
		return err
	}
	if upTo < 0 || upTo > cl.Len() {
		return fmt.Errorf("diffroute: warm-up up to cluster %d of %d", upTo, cl.Len())
	}
	if s.st.next >= upTo {
		return nil
	}
	for cr, err := range runoffs {
		if err != nil {
			return err
		}
		if cr.Cluster < s.st.next {
			continue
		}
		if _, err := s.routeNext(ctx, cr); err != nil {
			return err
		}
		if s.st.next >= upTo || s.st.next == 0 {
			return nil
		}
	}
	return fmt.Errorf("diffroute: runoff ran out at cluster %d before warming up to cluster %d", s.st.next, upTo)
}

// routeNext routes the next cluster of the current chunk.
func (s *StagedRouter) routeNext(ctx context.Context, cr ClusterRunoff) (ClusterDischarge, error) {
	st := s.st
	k := st.cl.Len()
	if s.Progress != nil && st.next == 0 {
		s.Progress.Start("routing clusters", int64(k))
	}
	d, err := s.routeCluster(ctx, cr)
	if err != nil {
		st.err = err
		if s.Progress != nil {
			s.Progress.Done(err)
		}
		return ClusterDischarge{}, err
	}
	st.next++
	if s.Progress != nil {
		s.Progress.Update(int64(st.next))
		if st.next == k {
			s.Progress.Done(nil)
		}
	}
	if st.next == k {
		for slot, b := range st.bufs {
			if b != nil {
				st.err = fmt.Errorf("diffroute: transfer slot %d was never consumed", slot)
				return ClusterDischarge{}, st.err
			}
		}
		st.seen += st.t
		st.steps += int64(st.t)
		st.next = 0
		st.warm = min(KernelWarmup(s.opts), st.seen)
	}
	return d, nil
}

func (s *StagedRouter) routeCluster(ctx context.Context, cr ClusterRunoff) (ClusterDischarge, error) {
	st := s.st
	k := st.next
	if cr.Cluster != k {
		return ClusterDischarge{}, fmt.Errorf("diffroute: got runoff for cluster %d, expected cluster %d", cr.Cluster, k)
	}
	x := cr.Runoff
	if x == nil {
		return ClusterDischarge{}, fmt.Errorf("diffroute: no runoff for cluster %d", k)
	}
	if err := ctx.Err(); err != nil {
		return ClusterDischarge{}, err
	}
	if k == 0 {
		if st.b >= 0 && x.B != st.b {
			return ClusterDischarge{}, fmt.Errorf("diffroute: cluster 0 runoff has %d batch members, earlier chunks %d", x.B, st.b)
		}
		st.b, st.t = x.B, x.T
	} else if x.B != st.b || x.T != st.t {
		return ClusterDischarge{}, fmt.Errorf("diffroute: cluster %d runoff is %d×%d (batch×steps), the chunk's first cluster %d×%d", k, x.B, x.T, st.b, st.t)
	}
	c := &st.cl.Clusters[k]
	var y *DataTensor
	var err error
	switch {
	case s.opts.Method == Recursive:
		y, err = s.routeRecursive(ctx, c, x)
	case s.fine():
		y, err = s.routeKernelFine(ctx, c, x)
	default:
		y, err = s.routeKernelCoarse(ctx, c, x)
	}
	if err != nil {
		return ClusterDischarge{}, fmt.Errorf("diffroute: cluster %d: %w", k, err)
	}
	return ClusterDischarge{Cluster: k, Reaches: c.Reaches, Discharge: y, Start: st.seen - st.origin}, nil
}

// inflows gathers the fine transfers into cluster c, summing slots that
// enter the same reach, and frees their buffers. Keys are cluster-local.
func (s *StagedRouter) inflows(c *Cluster) (FineFlows, error) {
	st := s.st
	in := FineFlows{}
	for _, slot := range c.In {
		buf := st.bufs[slot]
		if buf == nil {
			tr := st.cl.Transfers[slot]
			return nil, fmt.Errorf("transfer %d → %d (slot %d) has not been routed", st.cl.Net.ID(int(tr.From)), st.cl.Net.ID(int(tr.To)), slot)
		}
		st.bufs[slot] = nil
		if int(slot) == s.drop {
			continue
		}
		v := st.cl.Transfers[slot].DstLocal
		if have, ok := in[v]; ok {
			for j, q := range buf {
				have[j] += q
			}
		} else {
			in[v] = buf
		}
	}
	return in, nil
}

// outflows allocates the fine transfer buffers leaving cluster c, keyed by
// cluster-local source reach.
func (s *StagedRouter) outflows(c *Cluster, n int) FineFlows {
	out := FineFlows{}
	for _, slot := range c.Out {
		buf := make([]float32, n)
		s.st.bufs[slot] = buf
		out[s.st.cl.Transfers[slot].SrcLocal] = buf
	}
	return out
}

func (s *StagedRouter) routeRecursive(ctx context.Context, c *Cluster, x *DataTensor) (*DataTensor, error) {
	st := s.st
	rr := st.rec[c.Index]
	if rr == nil {
		var err error
		if rr, err = NewRecursiveRouter(ctx, c.Net, subsetOptions(s.opts, c.Reaches)); err != nil {
			return nil, err
		}
		s.seedTransferState(rr, c, nil)
		st.rec[c.Index] = rr
	}
	in, err := s.inflows(c)
	if err != nil {
		return nil, err
	}
	return rr.RouteFine(ctx, x, in, s.outflows(c, x.B*x.T*s.opts.SubSteps))
}

// seedTransferState gives reaches fed by transfers the steady upstream
// inflow of an initial discharge (qinit): unstaged, NewRecursiveRouter counts
// the initial discharge of every upstream reach, and transferred ones are
// not in the cluster's network. local maps cluster-local indices to the
// router's (nil: identity).
func (s *StagedRouter) seedTransferState(rr *RecursiveRouter, c *Cluster, local map[int32]int32) {
	q0 := s.opts.InitialQ
	if q0 == nil || len(c.In) == 0 || s.st.b < 0 {
		return
	}
	rr.initState(s.st.b)
	n := rr.net.Len()
	for _, slot := range c.In {
		tr := s.st.cl.Transfers[slot]
		v := tr.DstLocal
		if local != nil {
			lv, ok := local[v]
			if !ok {
				continue
			}
			v = lv
		}
		for b := 0; b < s.st.b; b++ {
			rr.st.uPrev[b*n+int(v)] += q0[tr.From]
		}
	}
}

// kernelFor returns cluster c's kernel router, building it if needed.
func (s *StagedRouter) kernelFor(ctx context.Context, c *Cluster) (*KernelRouter, error) {
	if kr := s.st.ker[c.Index]; kr != nil {
		return kr, nil
	}
	build := NewKernelRouter
	if s.KernelBuilder != nil {
		build = s.KernelBuilder
	}
	kr, err := build(ctx, c.Net, subsetOptions(s.opts, c.Reaches))
	if err != nil {
		return nil, err
	}
	if s.KeepKernels {
		s.st.ker[c.Index] = kr
	}
	return kr, nil
}

// withHistory prepends the kept tail of cluster c's runoff (warm steps) to x
// and keeps the new tail for the next chunk.
func (s *StagedRouter) withHistory(c *Cluster, x *DataTensor) (*DataTensor, error) {
	st := s.st
	xc := x
	if !slices.Equal(x.IDs, c.Net.IDs()) {
		var err error
		if xc, err = x.SelectIDs(c.Net.IDs()); err != nil {
			return nil, err
		}
	}
	ext := xc
	if st.warm > 0 {
		tail := st.xtails[c.Index]
		if tail == nil || tail.T != st.warm {
			return nil, fmt.Errorf("internal error: runoff history missing")
		}
		var err error
		if ext, err = ConcatTime(tail, xc); err != nil {
			return nil, err
		}
	}
	if w := min(KernelWarmup(s.opts), st.seen+st.t); w > 0 {
		st.xtails[c.Index] = ext.SliceTime(ext.T-w, ext.T)
	}
	return ext, nil
}

// fineHistory returns, per batch member, the kept tail of a transfer slot
// followed by this chunk's values, and keeps the new tail.
func (s *StagedRouter) fineHistory(slot int32, buf []float32) []float32 {
	st := s.st
	f := s.opts.SubSteps
	tl, cl := st.warm*f, st.t*f
	nw := min(KernelWarmup(s.opts), st.seen+st.t) * f
	ext := buf
	if tl > 0 {
		ext = make([]float32, st.b*(tl+cl))
		tail := st.tails[slot]
		for b := 0; b < st.b; b++ {
			copy(ext[b*(tl+cl):], tail[b*tl:(b+1)*tl])
			copy(ext[b*(tl+cl)+tl:], buf[b*cl:(b+1)*cl])
		}
	}
	if nw > 0 {
		tail := make([]float32, st.b*nw)
		for b := 0; b < st.b; b++ {
			copy(tail[b*nw:(b+1)*nw], ext[(b+1)*(tl+cl)-nw:(b+1)*(tl+cl)])
		}
		st.tails[slot] = tail
	} else {
		st.tails[slot] = nil
	}
	return ext
}

// routeKernelFine routes cluster c with its kernel; fine transfers enter
// through the kernel's polyphase rows. The fine outflow of the cluster's
// transfer sources, which the kernel (coarse output) does not give, comes
// from a recursive router on their upstream closure within the cluster,
// which carries its own state across chunks.
func (s *StagedRouter) routeKernelFine(ctx context.Context, c *Cluster, x *DataTensor) (*DataTensor, error) {
	st := s.st
	in, err := s.inflows(c)
	if err != nil {
		return nil, err
	}
	// Sources first: their router reads the same inflows for this chunk only.
	if len(c.Out) > 0 {
		rr, err := s.sourceRouter(c)
		if err != nil {
			return nil, err
		}
		local := st.srcs[c.Index]
		sin := FineFlows{}
		for v, q := range in {
			if lv, ok := local[v]; ok {
				sin[lv] = q
			}
		}
		out := s.outflows(c, x.B*x.T*s.opts.SubSteps)
		sout := FineFlows{}
		for u, q := range out {
			sout[local[u]] = q
		}
		xs := x
		var own []int
		if s.opts.ExcludeSelf {
			if xs, own, err = runoffMovedDown(x, rr.net); err != nil {
				return nil, err
			}
		}
		if _, err := rr.RouteFine(ctx, xs, sin, sout); err != nil {
			return nil, err
		}
		if own != nil {
			for lu, q := range sout {
				addOwnRunoff(q, x, own[lu], s.opts.SubSteps)
			}
		}
	}
	ext, err := s.withHistory(c, x)
	if err != nil {
		return nil, err
	}
	var inflow []FineInflow
	for _, slot := range c.In {
		if int(slot) == s.drop {
			continue
		}
		v := st.cl.Transfers[slot].DstLocal
		if q, ok := in[v]; ok {
			inflow = append(inflow, FineInflow{Reach: int(v), Q: s.fineHistory(slot, q)})
			delete(in, v) // slots into the same reach were summed
		}
	}
	kr, err := s.kernelFor(ctx, c)
	if err != nil {
		return nil, err
	}
	return s.routeWith(ctx, c, kr, ext, inflow)
}

// sourceRouter returns the recursive router of cluster c's transfer
// sources (their upstream closure within the cluster), creating it on first
// use. Under ExcludeSelf it routes with the lti rule the runoff moved one
// reach down (runoffMovedDown).
func (s *StagedRouter) sourceRouter(c *Cluster) (*RecursiveRouter, error) {
	st := s.st
	if rr := st.rec[c.Index]; rr != nil {
		return rr, nil
	}
	_, snet, global, local, err := sourceClosure(c, st.cl.Transfers)
	if err != nil {
		return nil, err
	}
	o := subsetOptions(s.opts, global)
	o.Method, o.ReLU, o.Normalize, o.Compat = Recursive, false, false, CompatNone
	if o.ExcludeSelf {
		// The moved runoff and the own runoff added to the transfers
		// (staged here, not by the recursion) make the kernel's outflow.
		o.Lateral, o.ExcludeSelf = LateralLTI, false
	}
	rr, err := NewRecursiveRouter(context.Background(), snet, o)
	if err != nil {
		return nil, err
	}
	st.rec[c.Index], st.srcs[c.Index] = rr, local
	return rr, nil
}

// sourceClosure is the upstream closure within cluster c of its transfer
// sources: the cluster-local index of each of its reaches (sub), as a
// network, their full-network indices (global), and a reach's index in the
// closure by its cluster-local index (local).
func sourceClosure(c *Cluster, transfers []Transfer) (sub []int32, snet *Network, global []int32, local map[int32]int32, err error) {
	ids := make([]int64, 0, len(c.Out))
	for _, slot := range c.Out {
		ids = append(ids, c.Net.ID(int(transfers[slot].SrcLocal)))
	}
	if sub, err = c.Net.UpstreamClosure(ids); err != nil {
		return nil, nil, nil, nil, err
	}
	if snet, err = c.Net.Subnetwork(sub); err != nil {
		return nil, nil, nil, nil, err
	}
	global = make([]int32, len(sub))
	local = make(map[int32]int32, len(sub))
	for j, v := range sub {
		global[j] = c.Reaches[v]
		local[v] = int32(j)
	}
	return sub, snet, global, local, nil
}

// Under ExcludeSelf a reach's own runoff joins its discharge unrouted, and
// the runoff of a reach upstream enters the reach below it as a step of
// inflow: the kernel's path s → d is box ⊛ h_{down s} ⊛ … ⊛ h_d, whatever
// the lateral rule. The outflow of reach i is then
//
//	Q_i = x_i + h_i ⊛ Σ_{u → i} Q_u,
//
// which is x_i (constant over its step's sub-steps) plus the outflow of the
// recursion, lti rule, driven by runoff moved one reach down:
// x'_d = Σ_{u → d} x_u. The transfer out of a cluster carries Q_i, so that
// the target reach routes it with its upstream inflow, as the unstaged
// kernel does.

// runoffMovedDown returns x' for network net (rows in net's order) from
// runoff x (aligned by id), and the row of x of each reach of net.
func runoffMovedDown(x *DataTensor, net *Network) (*DataTensor, []int, error) {
	rows, err := alignRunoff(x, net)
	if err != nil {
		return nil, nil, err
	}
	xs := NewDataTensor(x.B, net.IDs(), x.T)
	xs.Times, xs.Step, xs.Units = x.Times, x.Step, x.Units
	acc := make([]float64, x.T)
	for b := 0; b < x.B; b++ {
		for d := 0; d < net.Len(); d++ {
			up := net.Upstream(d)
			if len(up) == 0 {
				continue
			}
			clear(acc)
			for _, u := range up {
				for t, v := range x.Series(b, rows[u]) {
					acc[t] += float64(v)
				}
			}
			dst := xs.Series(b, d)
			for t, v := range acc {
				dst[t] = float32(v)
			}
		}
	}
	return xs, rows, nil
}

// addOwnRunoff adds row of runoff x, each step's value on each of its f
// sub-steps, to a fine outflow q (B·T·f values).
func addOwnRunoff(q []float32, x *DataTensor, row, f int) {
	T := x.T
	for b := 0; b < x.B; b++ {
		qb := q[b*T*f : (b+1)*T*f]
		for t, v := range x.Series(b, row) {
			for m := range f {
				qb[t*f+m] += v
			}
		}
	}
}

// routeKernelCoarse is DiffRoute's staged routing: the step discharge of
// each transfer source is added to the runoff of its target reach.
func (s *StagedRouter) routeKernelCoarse(ctx context.Context, c *Cluster, x *DataTensor) (*DataTensor, error) {
	st := s.st
	xc, err := x.SelectIDs(c.Net.IDs())
	if err != nil {
		return nil, err
	}
	for _, slot := range c.In {
		buf := st.bufs[slot]
		if buf == nil {
			return nil, fmt.Errorf("transfer slot %d has not been routed", slot)
		}
		st.bufs[slot] = nil
		if int(slot) == s.drop {
			continue
		}
		v := int(st.cl.Transfers[slot].DstLocal)
		for b := 0; b < xc.B; b++ {
			row := xc.Series(b, v)
			for t, q := range buf[b*xc.T : (b+1)*xc.T] {
				row[t] += q
			}
		}
	}
	ext, err := s.withHistory(c, xc)
	if err != nil {
		return nil, err
	}
	kr, err := s.kernelFor(ctx, c)
	if err != nil {
		return nil, err
	}
	y, err := s.routeWith(ctx, c, kr, ext, nil)
	if err != nil {
		return nil, err
	}
	for _, slot := range c.Out {
		u := int(st.cl.Transfers[slot].SrcLocal)
		buf := make([]float32, y.B*y.T)
		for b := 0; b < y.B; b++ {
			copy(buf[b*y.T:], y.Series(b, u))
		}
		st.bufs[slot] = buf
	}
	return y, nil
}

// ---- Device backends ----------------------------------------------------
//
// A StagedRouter can hand the kernel method's convolution of each cluster to
// another implementation, typically a GPU (package gpu implements these
// interfaces; the core never imports it). The staged bookkeeping — warm-up
// history, transfer buffers, the recursive routers giving the fine outflow of
// transfer sources — stays here.

// ClusterJob is one cluster's kernel-method routing for one time chunk.
type ClusterJob struct {
	Cluster int
	// Reaches holds the full-network index of each reach of the cluster's
	// network.
	Reaches []int32
	// Runoff is the cluster's runoff (rows aligned by id with the cluster's
	// network); its first Warmup steps are history.
	Runoff *DataTensor
	// Inflow is the fine transfer inflow into the cluster (cluster-local
	// reach indices), covering all Runoff.T·f sub-steps; nil under Compat
	// "diffroute", whose coarse transfers are already in Runoff.
	Inflow []FineInflow
	Warmup int
	// Start is the step of Runoff's first step counted from the start of the
	// run (the first chunk's step 0); a backend holding the runoff itself
	// (resident pixels) reads steps [Start, Start+Runoff.T).
	Start int
}

// ClusterKernelRouter routes clusters with the kernel method: RouteCluster
// must return what kr.RouteWith(ctx, job.Runoff, job.Inflow, job.Warmup)
// returns for the cluster's KernelRouter kr — the discharge of steps
// [Warmup, T) in the cluster network's order. A router that also implements
// io.Closer is closed when the staged router is done with it.
type ClusterKernelRouter interface {
	RouteCluster(ctx context.Context, job ClusterJob) (*DataTensor, error)
}

// ClusterRouterFactory makes the router of one cluster from its (CPU-built)
// kernel. It is called whenever the staged router builds a cluster's kernel:
// once per cluster and time chunk, or once per cluster with KeepKernels, in
// which case the router is kept with the kernel until Reset.
type ClusterRouterFactory func(ctx context.Context, cluster int, kr *KernelRouter) (ClusterKernelRouter, error)

// routeWith applies cluster c's kernel to runoff ext (warm-up history
// first) and fine inflow, through ClusterRouter when one is set.
func (s *StagedRouter) routeWith(ctx context.Context, c *Cluster, kr *KernelRouter, ext *DataTensor, inflow []FineInflow) (*DataTensor, error) {
	st := s.st
	if s.ClusterRouter == nil {
		return kr.RouteWith(ctx, ext, inflow, st.warm)
	}
	dr := st.dev[c.Index]
	if dr == nil {
		var err error
		if dr, err = s.ClusterRouter(ctx, c.Index, kr); err != nil {
			return nil, err
		}
		if s.KeepKernels {
			st.dev[c.Index] = dr
		} else if cl, ok := dr.(io.Closer); ok {
			defer cl.Close()
		}
	}
	return dr.RouteCluster(ctx, ClusterJob{Cluster: c.Index, Reaches: c.Reaches, Runoff: ext, Inflow: inflow,
		Warmup: st.warm, Start: st.seen - st.warm - st.origin})
}

// closeDevices closes the kept cluster routers.
func (st *stagedState) closeDevices() {
	for k, dr := range st.dev {
		if cl, ok := dr.(io.Closer); ok {
			_ = cl.Close()
		}
		st.dev[k] = nil
	}
}

// TransferKernel returns the polyphase kernel of fine upstream inflow into
// reach v (network index), the one RouteWith applies to a FineInflow into v:
// rows are the network indices d on the path from v to the outlet, and
// vals[r·MaxDelay·f + m] weights the fine inflow z[q·f + f − 1 − m] in the
// discharge of rows[r] at step q (m < MaxDelay·f). Built on first use and
// kept; the slices must not be modified.
func (kr *KernelRouter) TransferKernel(v int) (rows []int32, vals []float32, err error) {
	if v < 0 || v >= kr.net.Len() {
		return nil, nil, fmt.Errorf("diffroute: transfer into reach position %d, outside the network's %d reaches", v, kr.net.Len())
	}
	tk, err := kr.transfer(v)
	if err != nil {
		return nil, nil, err
	}
	return tk.rows, tk.vals, nil
}
