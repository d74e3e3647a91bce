package diffroute

import (
	"context"
)

// Time-domain path kernels.
//
// When every reach's IRF has an exact recursive form (IRF.Sections: Muskingum,
// linear storage, Nash cascades of integer n) path kernels are built in the
// time domain instead of through FFTs. Walking down from each source s, one
// fine-grid response g of W = MaxDelay·f taps is kept: it starts as the
// source's own term (the rapid lateral step response, or h_s, or nothing under
// ExcludeSelf), and at each reach d on the way down d's sections run over g in
// place as recursive filters. g is then the path response s → d, exactly: a
// truncated linear convolution of the causal IRFs has no circular wrap-around
// and no truncation of the single-reach responses, and the first W fine taps
// are all that the coarse MaxDelay taps need (coarsen reads only those). Cost
// per pair: W multiply-adds per section plus the coarsening, no exp, no sincos
// and no FFT; memory: a few W-length buffers per worker and no per-reach
// spectra.
//
// The coarse kernel is formed exactly as on the FFT path: the same start/end
// shift, box mean (avg) or last value (sample), ReLU on the fine kernel,
// Normalize, ExcludeSelf and the truncated-mass record. Without ReLU the
// lti response is driven by a box of f ones from the start (box ⊛ h = the
// box sum of h, which the FFT path forms after the inverse FFT), so that
// every pair is coarsened from a whole-step response. The transfer
// (fine-input) kernels of RouteInflow and the fine-output and fine-inflow
// kernels of RouteFine are built the same way when the time-domain build
// applies.
//
// FFTPad matters only on the FFT path, which remains for IRFs with no
// recursive form (pure_lag, hayami, fractional Nash cascades, user IRFs
// without Sections) and for Compat "diffroute", whose length-W FFT with its
// circular wrap-around is part of DiffRoute's numbers. KernelStats.FFTLen is
// 0 for a time-domain build.

// kernelForceFFT makes NewKernelRouter build on the FFT path even where the
// time-domain build applies (tests compare the two; benchmarks time both).
var kernelForceFFT = false

// secRun is a run of n identical sections (a Nash cascade is one run).
type secRun struct {
	Section
	n int
}

// tdTable holds every reach's recursive form for the time-domain build.
type tdTable struct {
	off  []int // reach i's runs are runs[off[i]:off[i+1]]
	runs []secRun
}

func (t *tdTable) reach(i int) []secRun { return t.runs[t.off[i]:t.off[i+1]] }

func (t *tdTable) bytes() int64 { return int64(len(t.off))*8 + int64(len(t.runs))*32 }

// newTDTable returns the recursive forms of all reaches, or nil (no error)
// when the time-domain build does not apply: the FFT path is forced, Compat
// "diffroute" is set, or some reach has no recursive form.
func newTDTable(tab *irfTable, net *Network, o Options) (*tdTable, error) {
	if kernelForceFFT || o.Compat == CompatDiffRoute || tab.irf.Sections == nil {
		return nil, nil
	}
	n := net.Len()
	t := &tdTable{off: make([]int, n+1), runs: make([]secRun, 0, n)}
	var buf []Section
	for i := 0; i < n; i++ {
		s, err := tab.irf.Sections(buf[:0], tab.params[i], tab.r)
		if err != nil {
			return nil, reachIRFError(net.ID(i), tab.irf.Name, err)
		}
		if len(s) == 0 {
			return nil, nil
		}
		for _, sec := range s {
			if k := len(t.runs); k > t.off[i] && t.runs[k-1].Section == sec {
				t.runs[k-1].n++
			} else {
				t.runs = append(t.runs, secRun{sec, 1})
			}
		}
		buf = s
		t.off[i+1] = len(t.runs)
	}
	return t, nil
}

// filterSection runs one section over g in place, from zero state:
// y[n] = B0·g[n] + B1·g[n−1] + A1·y[n−1].
//
// The recursion is one long dependency chain (a multiply and an add per
// sample); it is taken four samples at a time with the look-ahead form
// y[n+j] = v_j + A1^(j+1)·y[n−1], v_j = Σ_{i≤j} A1^(j−i)·u[n+i],
// u = B0·g[n] + B1·g[n−1], so that the chain carried from block to block is a
// single multiply-add per four samples and the rest runs in parallel. It
// differs from the plain recursion by rounding only (|A1| < 1 for every
// stable section; the powers are at most the fourth).
func filterSection(g []float64, s Section) {
	b0, b1, a1 := s.B0, s.B1, s.A1
	a2 := a1 * a1
	a3, a4 := a2*a1, a2*a2
	px, py := 0.0, 0.0
	n := 0
	if b1 == 0 { // storage sections (linear storage, Nash): no B1 term
		for ; n+4 <= len(g); n += 4 {
			x := g[n : n+4 : n+4]
			u0 := b0 * x[0]
			v1 := b0*x[1] + a1*u0
			v2 := b0*x[2] + a1*v1
			v3 := b0*x[3] + a1*v2
			x[0] = u0 + a1*py
			x[1] = v1 + a2*py
			x[2] = v2 + a3*py
			py = v3 + a4*py
			x[3] = py
		}
	}
	for ; n+4 <= len(g); n += 4 {
		x := g[n : n+4 : n+4]
		x0, x1, x2, x3 := x[0], x[1], x[2], x[3]
		u0 := b0*x0 + b1*px
		v1 := b0*x1 + b1*x0 + a1*u0
		v2 := b0*x2 + b1*x1 + a1*v1
		v3 := b0*x3 + b1*x2 + a1*v2
		x[0] = u0 + a1*py
		x[1] = v1 + a2*py
		x[2] = v2 + a3*py
		py = v3 + a4*py
		x[3] = py
		px = x3
	}
	for ; n < len(g); n++ {
		x := g[n]
		py = b0*x + b1*px + a1*py
		px = x
		g[n] = py
	}
}

// filterRuns runs a cascade of sections over g in place. With lateral set the
// first section is the rapid lateral rule's: B1 folded into B0 (both I(n) and
// I(n+1) carry the current step's runoff), so that driven by a box of f ones
// it gives the lateral step response g_s.
func filterRuns(g []float64, runs []secRun, lateral bool) {
	for k, r := range runs {
		n := r.n
		if lateral && k == 0 {
			filterSection(g, Section{B0: r.B0 + r.B1, A1: r.A1})
			n--
		}
		for range n {
			filterSection(g, r.Section)
		}
	}
}

// setBox sets g to a box of f ones (the fine series of a unit runoff step).
func setBox(g []float64, f int) {
	clear(g)
	for n := range min(f, len(g)) {
		g[n] = 1
	}
}

// setImpulse sets g to a unit impulse.
func setImpulse(g []float64) {
	clear(g)
	g[0] = 1
}

// tdWorker holds one goroutine's buffers for the time-domain build.
type tdWorker struct {
	g  []float64 // W: the running fine path response
	kw kernelWorker
}

func (kr *KernelRouter) newTDWorker() *tdWorker {
	return &tdWorker{
		g: make([]float64, kr.w),
		kw: kernelWorker{h: make([]float64, kr.w), kb: make([]float64, kr.w),
			e: make([]float64, kr.w), K: make([]float64, kr.taps)},
	}
}

// reluInto sets dst = g, with negative values clipped under ReLU.
func (kr *KernelRouter) reluInto(dst, g []float64) {
	if !kr.opts.ReLU {
		copy(dst, g)
		return
	}
	for n, v := range g {
		dst[n] = max(v, 0)
	}
}

// coarsenTD sets wt.kw.K from the fine path response wt.g as coarsen does
// from the FFT path's fine kernel. boxed says g is a response to a whole unit
// runoff step.
func (kr *KernelRouter) coarsenTD(wt *tdWorker, boxed bool) {
	if kr.opts.ReLU || !boxed {
		kr.reluInto(wt.kw.h, wt.g)
		kr.coarsen(&wt.kw, boxed)
		return
	}
	// Boxed without ReLU: e[n] = g[n − shift], then the mean (or the last) of
	// each step's f values, read straight from g.
	f, g, K := kr.f, wt.g, wt.kw.K
	shift := 0
	if kr.opts.Average == AverageStart {
		shift = 1
	}
	if kr.opts.Sampling == SampleLast {
		for p := range K {
			if n := p*f + f - 1 - shift; n >= 0 {
				K[p] = g[n]
			} else {
				K[p] = 0
			}
		}
		return
	}
	inv := 1 / float64(f)
	p := 0
	if shift > 0 {
		s := 0.0
		for _, v := range g[:f-shift] {
			s += v
		}
		K[0] = s * inv
		p = 1
	}
	for ; p < len(K); p++ {
		seg := g[p*f-shift : p*f+f-shift]
		var s0, s1, s2, s3 float64 // four short chains rather than one of f adds
		j := 0
		for ; j+4 <= len(seg); j += 4 {
			s0 += seg[j]
			s1 += seg[j+1]
			s2 += seg[j+2]
			s3 += seg[j+3]
		}
		for ; j < len(seg); j++ {
			s0 += seg[j]
		}
		K[p] = ((s0 + s1) + (s2 + s3)) * inv
	}
}

// tdSource sets wt.g to the fine response of the pair (s, s), the source's
// own term, and reports whether it is a response to a whole runoff step
// (boxed):
//
//   - ExcludeSelf: a unit impulse (box without ReLU);
//   - rapid: the lateral step response g_s;
//   - lti: h_s (box ⊛ h_s without ReLU).
func (kr *KernelRouter) tdSource(wt *tdWorker, s int) (boxed bool) {
	o := kr.opts
	g := wt.g
	switch {
	case o.ExcludeSelf:
		if o.ReLU {
			setImpulse(g)
			return false
		}
		setBox(g, kr.f)
		return true
	case o.Lateral == LateralRAPID:
		setBox(g, kr.f)
		filterRuns(g, kr.td.reach(s), true)
		return true
	case o.ReLU:
		setImpulse(g)
		filterRuns(g, kr.td.reach(s), false)
		return false
	default:
		setBox(g, kr.f)
		filterRuns(g, kr.td.reach(s), false)
		return true
	}
}

// buildTD computes every path kernel in the time domain into kr.bs.
func (kr *KernelRouter) buildTD(ctx context.Context, cancel context.CancelCauseFunc, workers int, tr *truncRecord) {
	net, bs := kr.net, kr.bs
	n := net.Len()
	parallelChunks(ctx, cancel, workers, n, 32, kr.newTDWorker, func(wt *tdWorker, lo, hi int) error {
		acc := newPairAcc()
		for ps := lo; ps < hi; ps++ {
			s := int(bs.Order[ps])
			boxed := kr.tdSource(wt, s)
			for d := s; d >= 0; d = net.Down(d) {
				if d != s {
					filterRuns(wt.g, kr.td.reach(d), false)
				}
				kr.coarsenTD(wt, boxed)
				if err := kr.storePair(&acc, wt.kw.K, d, s, ps); err != nil {
					return err
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		tr.add(&acc)
		return nil
	})
}

// transferTD is transfer's time-domain form: the fine path response from v
// to each d downstream, into wk.h (W taps), one reach at a time.
func (kr *KernelRouter) transferTD(v int, row func(d int, wk *kernelWorker) error) error {
	wt := kr.newTDWorker()
	setImpulse(wt.g)
	for d := v; d >= 0; d = kr.net.Down(d) {
		filterRuns(wt.g, kr.td.reach(d), false)
		kr.reluInto(wt.kw.h, wt.g)
		if err := row(d, &wt.kw); err != nil {
			return err
		}
	}
	return nil
}

// fineOutTD is fineOut's time-domain form. In pre-order over u's closure,
// levels[L] is the impulse response from the reach at depth L below u to u's
// outflow, A(s) = h_s ⊛ A(down s); the pair (u, s) is the source's own term
// applied to A(down s) (a box first for the rapid rule: the lateral step
// response g_s ⊛ A(down s) = S'_s(box ⊛ A(down s))).
func (kr *KernelRouter) fineOutTD(u int, fk *fineOutKernel) {
	net, o, w, f := kr.net, kr.opts, kr.w, kr.f
	wt := kr.newTDWorker()
	delta := make([]float64, w)
	delta[0] = 1
	var levels [][]float64
	order := net.PreOrder()
	du := net.Depth(u)
	for p := net.Pre(u); p < net.Pre(u)+net.Size(u); p++ {
		s := int(order[p])
		lv := net.Depth(s) - du
		above := delta
		if lv > 0 {
			above = levels[lv-1]
		}
		if lv >= len(levels) {
			levels = append(levels, make([]float64, w))
		}
		a := levels[lv]
		copy(a, above)
		filterRuns(a, kr.td.reach(s), false)
		g := wt.g
		boxed := false
		switch {
		case o.ExcludeSelf:
			copy(g, above)
		case o.Lateral == LateralRAPID:
			run := 0.0
			for n, v := range above {
				run += v
				if n >= f {
					run -= above[n-f]
				}
				g[n] = run
			}
			filterRuns(g, kr.td.reach(s), true)
			boxed = true
		default:
			copy(g, a)
		}
		kr.reluInto(wt.kw.h, g)
		kr.shifted(&wt.kw, !boxed)
		fk.srcs = append(fk.srcs, int32(s))
		for _, v := range wt.kw.kb {
			fk.vals = append(fk.vals, float32(v))
		}
	}
}

// fineInflowTD is fineInflowKernel's time-domain form: the fine path response
// h_v ⊛ … ⊛ h_u, first len(k) taps.
func (kr *KernelRouter) fineInflowTD(u, v int, k []float32) {
	g := make([]float64, kr.w)
	setImpulse(g)
	for d := v; ; d = kr.net.Down(d) {
		filterRuns(g, kr.td.reach(d), false)
		if d == u {
			break
		}
	}
	kr.reluInto(g, g)
	for m := range k {
		k[m] = float32(g[m])
	}
}
