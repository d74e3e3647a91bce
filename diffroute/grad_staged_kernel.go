package diffroute

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
)

// ClusterKernelAdjoint runs the heavy parts of one cluster's kernel-method
// backward pass: BackwardRunoff and KernelTapGrad must return what the
// cluster's KernelRouter methods of those names return, up to rounding
// (a KernelRouter is one).
type ClusterKernelAdjoint interface {
	BackwardRunoff(ctx context.Context, runoff, gy *DataTensor) (*DataTensor, error)
	KernelTapGrad(ctx context.Context, runoff, gy *DataTensor) ([]float64, error)
}

// Staged gradients of the kernel method: the exact derivative of the staged
// kernel run (StagedRouter with Method Kernel), cluster by cluster in
// reverse order. With fine transfers a cluster's discharge is
//
//	y = K ⊛ x + Σ_v T_v ⊛ z_v,   z_out = R(x, z)
//
// (K the cluster's kernel, T_v the polyphase kernel of the fine inflow z_v
// into reach v, R the recursion that gives the fine outflow of the
// cluster's transfer sources), so its adjoint is
//
//   - ∂L/∂x = Kᵀ ḡ (the transposed convolution) + Rᵀ(∂L/∂z_out);
//   - ∂L/∂z_v = T_vᵀ ḡ (a correlation with the rows of T_v) + the recursion's
//     adjoint at v, handed to the cluster the transfer came from, where it
//     is ∂L/∂(its source's fine outflow);
//   - ∂L/∂θ: for K and T_v by the kernel's own rule (KernelRouter.Backward:
//     the recursive adjoint for time-domain builds, the adjoint of the FFT
//     build otherwise), for R by the recursive adjoint.
//
// Under Compat "diffroute" transfers are coarse: a source's discharge is
// added to its target's runoff, so ∂L/∂(runoff of the target) is added to
// ∂L/∂(discharge of the source) before the source's cluster runs its
// KernelRouter.Backward. Every reach belongs to one cluster, and K, T_v and
// R of a cluster hold only its own reaches' IRFs: a parameter's gradient
// comes whole from its own cluster.

// forwardKernel routes cluster cr with the kernel method, keeping the
// transfers that enter it for the backward pass.
func (sg *StagedGrad) forwardKernel(ctx context.Context, cr ClusterRunoff) (ClusterDischarge, error) {
	sr := sg.sr
	if err := sr.begin(sg.cl); err != nil {
		return ClusterDischarge{}, err
	}
	c := &sg.cl.Clusters[cr.Cluster]
	for _, slot := range c.In {
		// routing sums the slots that enter one reach in place: keep a copy
		sg.kbufs[slot] = slices.Clone(sr.st.bufs[slot])
	}
	d, err := sr.routeNext(ctx, cr)
	if err != nil {
		return ClusterDischarge{}, err
	}
	if sg.b < 0 {
		sg.b, sg.t = cr.Runoff.B, cr.Runoff.T
	}
	return d, nil
}

// backwardKernel is backwardCluster for the kernel method.
func (sg *StagedGrad) backwardKernel(ctx context.Context, c *Cluster, ca ClusterAdjoint) (ClusterGradients, error) {
	if ca.Runoff.B != sg.b || ca.Runoff.T != sg.t {
		return ClusterGradients{}, fmt.Errorf("runoff is %d×%d (batch×steps), the forward pass's %d×%d", ca.Runoff.B, ca.Runoff.T, sg.b, sg.t)
	}
	x, err := ca.Runoff.SelectIDs(c.Net.IDs())
	if err != nil {
		return ClusterGradients{}, err
	}
	var kr *KernelRouter
	var adj ClusterKernelAdjoint
	if sg.sr.ClusterGrad != nil {
		kr, adj, err = sg.sr.ClusterGrad(ctx, c.Index, c.Net, subsetOptions(sg.opts, c.Reaches))
		if cl, ok := adj.(io.Closer); ok {
			defer cl.Close()
		}
	} else {
		kr, err = sg.sr.kernelFor(ctx, c)
		adj = kr
	}
	if err != nil {
		return ClusterGradients{}, err
	}
	var gr *Gradients
	if sg.sr.fine() {
		gr, err = sg.backwardKernelFine(ctx, c, kr, adj, x, ca.Gy)
	} else {
		gr, err = sg.backwardKernelCoarse(ctx, c, kr, adj, x, ca.Gy)
	}
	if err != nil {
		return ClusterGradients{}, err
	}
	// back to the layout of the runoff given
	dx := gr.Runoff
	if !slices.Equal(ca.Runoff.IDs, dx.IDs) {
		full := newRunoffGrad(ca.Runoff)
		rows, err := alignRunoff(ca.Runoff, c.Net)
		if err != nil {
			return ClusterGradients{}, err
		}
		for b := 0; b < full.B; b++ {
			for i, row := range rows {
				copy(full.Series(b, row), dx.Series(b, i))
			}
		}
		dx = full
	}
	for _, slot := range c.In {
		sg.kbufs[slot] = nil
	}
	return ClusterGradients{Cluster: c.Index, Reaches: c.Reaches, Runoff: dx, Params: gr.Params}, nil
}

// backwardKernelCoarse: DiffRoute's transfers (Compat "diffroute"). The
// adjoints of the transfers leaving the cluster are added to ∂L/∂y of their
// sources in float64 (rounding their sum to float32 would cost a digit and
// more where the renormalised kernels' derivatives cancel).
func (sg *StagedGrad) backwardKernelCoarse(ctx context.Context, c *Cluster, kr *KernelRouter, adj ClusterKernelAdjoint, x, gy *DataTensor) (*Gradients, error) {
	B, T := x.B, x.T
	// the runoff the kernel saw: transfers added at their target reaches
	xin := x.Clone()
	for _, slot := range c.In {
		v := int(sg.cl.Transfers[slot].DstLocal)
		for b := 0; b < B; b++ {
			row := xin.Series(b, v)
			for t, q := range sg.kbufs[slot][b*T : (b+1)*T] {
				row[t] += q
			}
		}
	}
	extra := map[int][]float64{} // source reach → ∂L/∂(its transfer), B·T
	for _, slot := range c.Out {
		d, err := sg.takeAdjoint(slot)
		if err != nil {
			return nil, err
		}
		extra[int(sg.cl.Transfers[slot].SrcLocal)] = d
	}
	var gr *Gradients
	var err error
	if len(extra) > 0 && kr.ParamGradsFromBuild() {
		gr, err = kr.backwardPlus(ctx, adj, xin, gy, extra)
	} else {
		g := gy
		if len(extra) > 0 {
			g = gy.Clone()
			for u, d := range extra {
				for b := 0; b < B; b++ {
					row := g.Series(b, u)
					for t, v := range d[b*T : (b+1)*T] {
						row[t] = float32(float64(row[t]) + v)
					}
				}
			}
		}
		gr, err = kr.backwardWith(ctx, adj, xin, g)
	}
	if err != nil {
		return nil, err
	}
	// ∂L/∂(runoff of each target reach), with the build's float64 taps
	// (the stored float32 ones lose digits the upstream parameter
	// gradients, through renormalised kernels, need)
	var Pc []complex128
	if kr.td == nil {
		if Pc, err = kr.clampedSpectra(ctx); err != nil {
			return nil, err
		}
	}
	dtr := map[int32][]float64{}
	gd := make([]float64, T)
	for _, slot := range c.In {
		v := sg.cl.Transfers[slot].DstLocal
		if dtr[v] != nil {
			sg.dbufs[slot] = dtr[v]
			continue
		}
		acc := make([]float64, B*T)
		err := kr.sourceColumn64(Pc, int(v), func(d int, K []float64) {
			for b := 0; b < B; b++ {
				for t, a := range gy.Series(b, d) {
					gd[t] = float64(a)
				}
				if e := extra[d]; e != nil {
					for t, a := range e[b*T : (b+1)*T] {
						gd[t] += a
					}
				}
				ab := acc[b*T : (b+1)*T]
				for k, a := range K {
					if a == 0 || k >= T {
						continue
					}
					for t, g := range gd[k:] {
						ab[t] += a * g
					}
				}
			}
		})
		if err != nil {
			return nil, err
		}
		dtr[v], sg.dbufs[slot] = acc, acc
	}
	gr.InitialQ = nil
	return gr, nil
}

// sourceColumn64 calls fn with the float64 taps of every pair (d, s) of
// source s, d from s down to its outlet, as the build forms them before
// storing them in float32 (renormalised under Normalize). Pc holds the
// clamped spectra of an FFT build (nil for a time-domain build). K is valid
// during the call.
func (kr *KernelRouter) sourceColumn64(Pc []complex128, s int, fn func(d int, K []float64)) error {
	net := kr.net
	K := make([]float64, kr.taps)
	emit := func(d int, taps []float64) error {
		copy(K, taps)
		if _, err := kr.normalised(K, d, s); err != nil {
			return err
		}
		fn(d, K)
		return nil
	}
	if kr.td != nil {
		wt := kr.newTDWorker()
		boxed := kr.tdSource(wt, s)
		for d := s; d >= 0; d = net.Down(d) {
			if d != s {
				filterRuns(wt.g, kr.td.reach(d), false)
			}
			kr.coarsenTD(wt, boxed)
			if err := emit(d, wt.kw.K); err != nil {
				return err
			}
		}
		return nil
	}
	wk := &adjWorker{kernelWorker: kr.newWorker()}
	if kr.opts.ExcludeSelf { // the self pair: a unit impulse
		clear(wk.h)
		wk.h[0] = 1
		kr.coarsen(wk.kernelWorker, false)
		if err := emit(s, wk.K); err != nil {
			return err
		}
	}
	return kr.sourcePairs(wk, Pc, net.Pre(s), func(wk *adjWorker, d, _, _, _ int, _ bool) error {
		return emit(d, wk.K)
	}, nil)
}

// backwardWith is Backward with the transposed convolution and the per-tap
// correlations of a build's adjoint run by adj.
func (kr *KernelRouter) backwardWith(ctx context.Context, adj ClusterKernelAdjoint, runoff, gy *DataTensor) (*Gradients, error) {
	if adj == ClusterKernelAdjoint(kr) {
		return kr.Backward(ctx, runoff, gy)
	}
	dx, err := adj.BackwardRunoff(ctx, runoff, gy)
	if err != nil {
		return nil, err
	}
	var gr *Gradients
	if kr.ParamGradsFromBuild() {
		gr, err = kr.buildParams(ctx, adj, runoff, gy, nil)
	} else {
		gr, err = kr.BackwardParams(ctx, runoff, gy)
	}
	if err != nil {
		return nil, err
	}
	gr.Runoff = dx
	return gr, nil
}

// buildParams is the build's adjoint with the per-tap correlations of
// runoff and gy (plus, for extra, those of float64 rows of ∂L/∂y) from adj.
func (kr *KernelRouter) buildParams(ctx context.Context, adj ClusterKernelAdjoint, runoff, gy *DataTensor, extra func(G []float64, d, s int)) (*Gradients, error) {
	var taps func(G []float64, d, s, ps int)
	if adj == ClusterKernelAdjoint(kr) {
		tg, err := kr.newTapGrad(runoff, gy)
		if err != nil {
			return nil, err
		}
		taps = func(G []float64, d, s, _ int) { tg.pair(G, d, s) }
	} else {
		dK, err := adj.KernelTapGrad(ctx, runoff, gy)
		if err != nil {
			return nil, err
		}
		if len(dK) != len(kr.bs.Vals) {
			return nil, fmt.Errorf("diffroute: ∂L/∂K has %d values, the kernel %d", len(dK), len(kr.bs.Vals))
		}
		taps = func(G []float64, d, _, ps int) {
			off := kr.bs.offset(kr.net.Pre(d), ps)
			copy(G, dK[off:off+int64(kr.bs.Taps)])
		}
	}
	if extra != nil {
		inner := taps
		taps = func(G []float64, d, s, ps int) {
			inner(G, d, s, ps)
			extra(G, d, s)
		}
	}
	if kr.td != nil {
		return kr.buildAdjointTD(ctx, taps)
	}
	return kr.buildAdjoint(ctx, taps)
}

// backwardPlus is Backward for a kernel whose parameter gradients come from
// its build, given ∂L/∂y as gy plus float64 extras on some rows (reach →
// B·T values); adj runs the transposed convolution and per-tap
// correlations of gy.
func (kr *KernelRouter) backwardPlus(ctx context.Context, adj ClusterKernelAdjoint, runoff, gy *DataTensor, extra map[int][]float64) (*Gradients, error) {
	dx, err := adj.BackwardRunoff(ctx, runoff, gy)
	if err != nil {
		return nil, err
	}
	rows, err := alignRunoff(runoff, kr.net)
	if err != nil {
		return nil, err
	}
	net, bs := kr.net, kr.bs
	B, T := runoff.B, runoff.T
	acc := make([]float64, T)
	for u, g := range extra {
		// the transposed convolution of row u, in float64
		for ps := net.Pre(u); ps < net.Pre(u)+net.Size(u); ps++ {
			s := int(bs.Order[ps])
			K := bs.entry(net.Pre(u), ps)
			for b := 0; b < B; b++ {
				clear(acc)
				gb := g[b*T : (b+1)*T]
				for k, a := range K {
					if a == 0 || k >= T {
						continue
					}
					for t, v := range gb[k:] {
						acc[t] += float64(a) * v
					}
				}
				dst := dx.Series(b, rows[s])
				for t, v := range acc {
					dst[t] = float32(float64(dst[t]) + v)
				}
			}
		}
	}
	gr, err := kr.buildParams(ctx, adj, runoff, gy, func(G []float64, d, s int) {
		g, ok := extra[d]
		if !ok {
			return
		}
		for b := 0; b < B; b++ {
			xs, gb := runoff.Series(b, rows[s]), g[b*T:(b+1)*T]
			for q := range G {
				if q >= T {
					break
				}
				a := 0.0
				for t, v := range gb[q:] {
					a += v * float64(xs[t])
				}
				G[q] += a
			}
		}
	})
	if err != nil {
		return nil, err
	}
	gr.Runoff = dx
	return gr, nil
}

// takeAdjoint returns and forgets ∂L/∂(transfer slot), which its target
// cluster's backward pass left.
func (sg *StagedGrad) takeAdjoint(slot int32) ([]float64, error) {
	d := sg.dbufs[slot]
	if d == nil {
		return nil, fmt.Errorf("transfer slot %d: its target cluster has no adjoint yet", slot)
	}
	sg.dbufs[slot] = nil
	return d, nil
}

// backwardKernelFine: fine transfers.
func (sg *StagedGrad) backwardKernelFine(ctx context.Context, c *Cluster, kr *KernelRouter, adj ClusterKernelAdjoint, x, gy *DataTensor) (*Gradients, error) {
	B, T, f := x.B, x.T, sg.opts.SubSteps
	// the fine inflow per target reach, slots into one reach summed
	zin := FineFlows{}
	for _, slot := range c.In {
		v := sg.cl.Transfers[slot].DstLocal
		if have, ok := zin[v]; ok {
			for k, q := range sg.kbufs[slot] {
				have[k] += q
			}
		} else {
			zin[v] = slices.Clone(sg.kbufs[slot])
		}
	}
	targets := slices.Sorted(maps.Keys(zin))
	dx, err := adj.BackwardRunoff(ctx, x, gy)
	if err != nil {
		return nil, err
	}
	dz := map[int32][]float64{}
	for _, v := range targets {
		d := make([]float64, B*T*f)
		if err := kr.inflowAdjoint(d, gy, int(v)); err != nil {
			return nil, err
		}
		dz[v] = d
	}
	gr, err := sg.kernelParamGrads(ctx, c, kr, adj, x, gy, zin)
	if err != nil {
		return nil, err
	}
	if len(c.Out) > 0 {
		src, err := sg.sourceAdjoint(ctx, c, x, zin)
		if err != nil {
			return nil, err
		}
		for k, v := range src.dx.Data {
			dx.Data[k] = float32(float64(dx.Data[k]) + float64(v))
		}
		for v, d := range src.dz {
			for k, a := range d {
				dz[v][k] += a
			}
		}
		for name, g := range src.params {
			if gr.Params[name] == nil {
				gr.Params[name] = make([]float64, c.Net.Len())
			}
			for i, a := range g {
				gr.Params[name][i] += a
			}
		}
	}
	for _, slot := range c.In {
		sg.dbufs[slot] = dz[sg.cl.Transfers[slot].DstLocal]
	}
	gr.Runoff, gr.InitialQ = dx, nil
	return gr, nil
}

// kernelParamGrads returns ∂L/∂θ of the cluster's kernel part K ⊛ x +
// Σ_v T_v ⊛ z_v, by the rule KernelRouter.Backward uses.
func (sg *StagedGrad) kernelParamGrads(ctx context.Context, c *Cluster, kr *KernelRouter, adj ClusterKernelAdjoint, x, gy *DataTensor, zin FineFlows) (*Gradients, error) {
	irf, err := LookupIRF(kr.opts.IRF)
	if err != nil {
		return nil, err
	}
	if len(irf.GradParams) == 0 {
		return &Gradients{Params: Params{}}, nil
	}
	if kr.td == nil { // the FFT build's adjoint, for K and each T_v
		gr, err := kr.buildParams(ctx, adj, x, gy, nil)
		if err != nil {
			return nil, err
		}
		if len(zin) > 0 {
			gt, err := kr.transferBuildAdjoint(ctx, gy, zin)
			if err != nil {
				return nil, err
			}
			gr.Params.add(gt.Params)
		}
		return gr, nil
	}
	// Time-domain build: T_v is the recursion's response to inflow at v.
	if len(zin) > 0 && (kr.opts.ReLU || kr.opts.Normalize) {
		return nil, fmt.Errorf("diffroute: staged kernel gradients with fine transfers have no ReLU or renormalisation of a time-domain build: use Compat \"diffroute\" (coarse transfers) or no ReLU and renormalisation")
	}
	o := subsetOptions(sg.opts, c.Reaches)
	o.Method, o.ReLU, o.Normalize, o.ExcludeSelf, o.Compat, o.Device = Recursive, false, false, false, CompatNone, nil
	rec := func(runoff *DataTensor) (*Gradients, error) {
		e, err := newGradEngine(c.Net, o, true)
		if err != nil {
			return nil, err
		}
		g, rows, err := e.prepare(runoff, zin)
		if err != nil {
			return nil, err
		}
		if err := g.run(ctx, func() error { return g.setGy(gy) }); err != nil {
			return nil, err
		}
		return g.gradients(runoff, rows, nil), nil
	}
	if !kr.buildAdjointApplies() {
		gr, err := rec(x) // K and every T_v in one recursive adjoint
		if err != nil {
			return nil, err
		}
		return &Gradients{Params: gr.Params}, nil
	}
	// K by the time-domain build's adjoint (excluded self pairs), T_v by
	// the recursion driven by the inflows alone.
	gr, err := kr.buildParams(ctx, adj, x, gy, nil)
	if err != nil || len(zin) == 0 {
		return gr, err
	}
	gt, err := rec(NewDataTensor(x.B, c.Net.IDs(), x.T))
	if err != nil {
		return nil, err
	}
	gr.Params.add(gt.Params)
	return gr, nil
}

// sourceGrads are the gradients of the fine outflow of a cluster's transfer
// sources: cluster-local.
type sourceGrads struct {
	dx     *DataTensor          // ∂L/∂runoff, in the cluster's runoff layout
	dz     map[int32][]float64  // ∂L/∂(fine inflow) of target reaches
	params map[string][]float64 // per cluster reach
}

// sourceAdjoint runs the adjoint of the recursion that gave cluster c's
// transfer sources their fine outflow (StagedRouter.sourceRouter's; under
// ExcludeSelf driven by the runoff moved one reach down, plus each source's
// own runoff) given ∂L/∂(those outflows) from the downstream clusters.
func (sg *StagedGrad) sourceAdjoint(ctx context.Context, c *Cluster, x *DataTensor, zin FineFlows) (*sourceGrads, error) {
	tr := sg.cl.Transfers
	sub, snet, global, local, err := sourceClosure(c, tr)
	if err != nil {
		return nil, err
	}
	o := subsetOptions(sg.opts, global)
	exclude := o.ExcludeSelf
	if exclude { // the runoff moved one reach down, as the forward run's
		o.Lateral = LateralLTI
	}
	o.Method, o.ReLU, o.Normalize, o.ExcludeSelf, o.Compat, o.Device = Recursive, false, false, false, CompatNone, nil
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return nil, err
	}
	xs := x
	var own []int
	if exclude {
		if xs, own, err = runoffMovedDown(x, snet); err != nil {
			return nil, err
		}
	}
	e, err := newGradEngine(snet, o, len(irf.GradParams) > 0)
	if err != nil {
		return nil, err
	}
	sin := FineFlows{}
	for v, q := range zin {
		if lv, ok := local[v]; ok {
			sin[lv] = q
		}
	}
	g, rows, err := e.prepare(xs, sin)
	if err != nil {
		return nil, err
	}
	gout := map[int32][]float64{} // snet index → ∂L/∂(its fine outflow)
	for _, slot := range c.Out {
		d, err := sg.takeAdjoint(slot)
		if err != nil {
			return nil, err
		}
		lu := local[tr[slot].SrcLocal]
		g.gout[lu], gout[lu] = d, d
	}
	zero := NewDataTensor(x.B, snet.IDs(), x.T)
	if err := g.run(ctx, func() error { return g.setGy(zero) }); err != nil {
		return nil, err
	}
	gr := g.gradients(xs, rows, nil)
	dx := gr.Runoff
	if exclude {
		dx = ownRunoffAdjoint(x, snet, own, gr.Runoff, gout, sg.opts.SubSteps)
	}
	out := &sourceGrads{dx: dx, dz: map[int32][]float64{}, params: map[string][]float64{}}
	for v := range zin {
		if lv, ok := local[v]; ok && g.din[lv] != nil {
			out.dz[v] = g.din[lv]
		}
	}
	for name, gj := range gr.Params {
		p := make([]float64, c.Net.Len())
		for j, v := range sub {
			p[v] = gj[j]
		}
		out.params[name] = p
	}
	return out, nil
}

// ownRunoffAdjoint is ∂L/∂x (x's layout) of the sources' outflow under
// ExcludeSelf (runoffMovedDown) given dxs = ∂L/∂x' (snet's order) and, per
// source (snet index), ∂L/∂(its fine outflow): a reach's runoff drives x' of
// the reach below it, and a source's runoff its own outflow, sub-step by
// sub-step.
func ownRunoffAdjoint(x *DataTensor, snet *Network, own []int, dxs *DataTensor, gout map[int32][]float64, f int) *DataTensor {
	dx := newRunoffGrad(x)
	T := x.T
	for b := 0; b < x.B; b++ {
		for j := range snet.Len() {
			dst := dx.Series(b, own[j])
			if d := snet.Down(j); d >= 0 {
				copy(dst, dxs.Series(b, d))
				continue
			}
			g := gout[int32(j)]
			if g == nil {
				continue
			}
			for t := range dst {
				a := 0.0
				for _, v := range g[(b*T+t)*f : (b*T+t+1)*f] {
					a += v
				}
				dst[t] = float32(a)
			}
		}
	}
	return dx
}

// inflowAdjoint adds to dz (B·T·f values) ∂L/∂z for fine inflow z into
// reach v given gy = ∂L/∂y: the transpose of the polyphase rows RouteWith
// applies, y_d[q] += Σ_m Kf[m]·z[q·f + f − 1 − m].
//
// The rows are the build's float64 values, not the stored float32 ones: the
// result is handed upstream, where parameter gradients need its digits.
func (kr *KernelRouter) inflowAdjoint(dz []float64, gy *DataTensor, v int) error {
	f := kr.f
	B, T := gy.B, gy.T
	return kr.transferRows(v, func(d int, row []float64) error {
		for b := 0; b < B; b++ {
			g := gy.Series(b, d)
			z := dz[b*T*f : (b+1)*T*f]
			for q, gq := range g {
				if gq == 0 {
					continue
				}
				top := q*f + f - 1
				a := float64(gq)
				for m, k := range row[:min(len(row), top+1)] {
					z[top-m] += a * k
				}
			}
		}
		return nil
	})
}

// inflowTapGrad sets G[m] = Σ_b Σ_q gy[b, d, q]·z[b, q·f + f − 1 − m], the
// gradient of the polyphase row of d for inflow z.
func inflowTapGrad(G []float64, gy *DataTensor, d int, z []float32, f int) {
	clear(G)
	B, T := gy.B, gy.T
	for b := 0; b < B; b++ {
		g := gy.Series(b, d)
		zb := z[b*T*f : (b+1)*T*f]
		for q, gq := range g {
			if gq == 0 {
				continue
			}
			top := q*f + f - 1
			a := float64(gq)
			for m := range G[:min(len(G), top+1)] {
				G[m] += a * float64(zb[top-m])
			}
		}
	}
}

// transferBuildAdjoint returns ∂L/∂θ of Σ_v T_v ⊛ z_v for an FFT build:
// per target v, each row d's spectrum S = Π_{r = v..d} Ĥ_r (clamped), its
// fine kernel, box sum, shift and (under Normalize) renormalisation, as
// transferRows forms them; G = ∂L/∂row goes back through those to
// A = w·conj(FFT(∂L/∂k))·S/M, which every reach of the path v → d gets
// (paramsFromZ finishes).
func (kr *KernelRouter) transferBuildAdjoint(ctx context.Context, gy *DataTensor, zin FineFlows) (*Gradients, error) {
	irf, err := kr.buildGradCheck()
	if err != nil {
		return nil, err
	}
	net := kr.net
	n, nf, M, f := net.Len(), kr.m/2+1, kr.m, kr.f
	Pc, err := kr.clampedSpectra(ctx)
	if err != nil {
		return nil, err
	}
	Z := make([]complex128, n*nf)
	wk := kr.newWorker()
	wf := kr.taps * f
	G, de, c := make([]float64, wf), make([]float64, kr.w), make([]float64, M)
	C := make([]complex128, nf)
	avg := kr.opts.Sampling == SampleAvg
	var path []int
	var As [][]complex128
	for _, v := range slices.Sorted(maps.Keys(zin)) {
		z := zin[v]
		for j := range wk.src {
			wk.src[j] = 1
		}
		path = path[:0]
		m := 0
		for d := int(v); d >= 0; d = net.Down(d) {
			for j, e := range Pc[d*nf : (d+1)*nf] {
				wk.src[j] *= e
			}
			kr.fineFromSpec(wk, wk.src)
			kr.shifted(wk, avg)
			inflowTapGrad(G, gy, d, z, f)
			if err := kr.transferRowAdjoint(c, G, de, wk, int(v), d); err != nil {
				return nil, err
			}
			wk.fft.Coefficients(C, c)
			if len(As) <= m {
				As = append(As, make([]complex128, nf))
			}
			A := As[m]
			inv := 1 / float64(M)
			for j, cj := range C {
				w := 2 * inv
				if j == 0 || 2*j == M {
					w = inv
				}
				A[j] = complex(w, 0) * complex(real(cj), -imag(cj)) * wk.src[j]
			}
			path = append(path, d)
			m++
		}
		// reach path[k] is on the paths to path[k..]: suffix sums
		clear(C)
		for k := len(path) - 1; k >= 0; k-- {
			for j, a := range As[k] {
				C[j] += a
			}
			zr := Z[path[k]*nf : (path[k]+1)*nf]
			for j, a := range C {
				zr[j] += a
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return kr.paramsFromZ(ctx, irf, Z, nil)
}

// transferRowAdjoint sets c = ∂L/∂(fine path response wk.h, ReLU'd) given
// G = ∂L/∂(polyphase row) and the forward's box sums wk.kb and shifted
// values wk.e (transferRows's rule): back through the renormalisation, the
// mean (avg), the shift, the box sum and ReLU.
func (kr *KernelRouter) transferRowAdjoint(c, G, de []float64, wk *kernelWorker, v, d int) error {
	o, f := kr.opts, kr.f
	avg := o.Sampling == SampleAvg
	scale := 1.0
	if avg {
		scale = 1 / float64(f)
	}
	clear(de)
	if o.Normalize {
		sum := 0.0
		for _, x := range wk.e[:len(G)] {
			sum += x * scale
		}
		if sum > -kernelZeroSum && sum < kernelZeroSum {
			return fmt.Errorf("diffroute: transfer kernel from reach %d to reach %d sums to zero (%.3g) and cannot be normalised", kr.net.ID(v), kr.net.ID(d), sum)
		}
		dot := 0.0
		for m, g := range G {
			dot += g * wk.e[m] * scale / sum
		}
		for m, g := range G {
			de[m] = (g - dot) / sum * scale
		}
	} else {
		for m, g := range G {
			de[m] = g * scale
		}
	}
	boxAdjoint(c, de, wk.kb, wk.h, f, avg, o.Average == AverageStart, o.ReLU)
	return nil
}
