package diffroute

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// The adjoint of the time-domain kernel build, for kernels with ReLU,
// renormalisation or excluded self pairs set by hand on an IRF with a
// recursive form (without them the recursive adjoint is the derivative).
//
// Walking down from source s the build keeps one fine response g of W taps:
// g_0 is the source's own term (the lateral step response, h_s, or under
// ExcludeSelf an impulse or box without s's IRF), and at each reach d on the
// way down g_m = F_d(g_{m−1}), F_d the cascade of d's sections. Pair m's
// taps come from g_m as on the FFT path (ReLU, box sums, shift, reduction,
// renormalisation), so their adjoint gives c_m = ∂L/∂g_m from ∂L/∂K. Going
// back up the path, λ = Σ_{m' ≥ m} (∂g_{m'}/∂g_m)ᵀ c_{m'} is carried
// through the transposed cascades, λ ← F_dᵀ λ, and each cascade's
// coefficient sums (λ_n·x_n, λ_n·x_{n−1}, λ_n·y_{n−1}, the adjoint of a
// recursive filter backwards in time) give ∂L/∂θ_d through
// IRF.SectionsGrad. Cost per pair: a few W-length passes per section, as
// the build, plus the correlation ∂L/∂K.

// tdGradTable holds every reach's sections and their derivatives.
type tdGradTable struct {
	start []int       // reach i's sections are secs[start[i]:start[i+1]]
	secs  []Section   //
	dsecs [][]Section // [j][section]: ∂section/∂ GradParams[j]
}

func (kr *KernelRouter) newTDGradTable(irf IRF) (*tdGradTable, error) {
	if irf.Sections == nil || irf.SectionsGrad == nil {
		return nil, errNoParamGrad(irf)
	}
	gp := make([]int, len(irf.GradParams))
	for j, name := range irf.GradParams {
		if gp[j] = slices.Index(irf.Params, name); gp[j] < 0 {
			return nil, fmt.Errorf("diffroute: IRF %q lists gradient parameter %q, which is not one of its parameters", irf.Name, name)
		}
	}
	n := kr.net.Len()
	t := &tdGradTable{start: make([]int, n+1), dsecs: make([][]Section, len(gp))}
	ds := make([][]Section, len(irf.Params))
	for i := 0; i < n; i++ {
		s, err := irf.Sections(nil, kr.tab.params[i], kr.tab.r)
		if err != nil {
			return nil, reachIRFError(kr.net.ID(i), irf.Name, err)
		}
		for j := range ds {
			ds[j] = slices.Grow(ds[j][:0], len(s))[:len(s)]
			clear(ds[j])
		}
		if err := irf.SectionsGrad(ds, kr.tab.params[i], kr.tab.r); err != nil {
			return nil, reachIRFError(kr.net.ID(i), irf.Name, err)
		}
		t.secs = append(t.secs, s...)
		for j, pj := range gp {
			t.dsecs[j] = append(t.dsecs[j], ds[pj]...)
		}
		t.start[i+1] = len(t.secs)
	}
	return t, nil
}

// tdAdjWorker holds one goroutine's buffers.
type tdAdjWorker struct {
	*tdWorker
	G, gK, de []float64
	levels    [][]float64 // g_m along the current path
	cs        [][]float64 // c_m along the current path
	reach     []int
	lam, src  []float64
	inter     [][]float64 // a cascade's intermediate signals
	dth       [][]float64 // [j][reach]: this worker's sums
}

// buildAdjointTD is buildAdjoint for a time-domain build.
func (kr *KernelRouter) buildAdjointTD(ctx context.Context, tapGrad func(G []float64, d, s, ps int)) (*Gradients, error) {
	irf := kr.tab.irf
	if len(irf.GradParams) == 0 {
		return nil, errNoParamGrad(irf)
	}
	tab, err := kr.newTDGradTable(irf)
	if err != nil {
		return nil, err
	}
	net, o, bs, W := kr.net, kr.opts, kr.bs, kr.w
	n, P := net.Len(), len(irf.GradParams)
	var mu sync.Mutex
	out := make([][]float64, P)
	for j := range out {
		out[j] = make([]float64, n)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	newState := func() *tdAdjWorker {
		wk := &tdAdjWorker{tdWorker: kr.newTDWorker(), G: make([]float64, kr.taps), gK: make([]float64, kr.taps),
			de: make([]float64, W), lam: make([]float64, W), src: make([]float64, W), dth: make([][]float64, P)}
		for j := range wk.dth {
			wk.dth[j] = make([]float64, n)
		}
		return wk
	}
	level := func(bufs *[][]float64, m int) []float64 {
		for len(*bufs) <= m {
			*bufs = append(*bufs, make([]float64, W))
		}
		return (*bufs)[m]
	}
	parallelChunks(ctx, cancel, max(1, min(o.Workers, n)), n, 16, newState, func(wk *tdAdjWorker, lo, hi int) error {
		for ps := lo; ps < hi; ps++ {
			s := int(bs.Order[ps])
			boxed := kr.tdSource(wk.tdWorker, s)
			m := 0
			for d := s; d >= 0; d = net.Down(d) {
				g := level(&wk.levels, m)
				if d == s {
					copy(g, wk.g)
				} else {
					copy(g, wk.levels[m-1])
					filterRuns(g, kr.td.reach(d), false)
				}
				c := level(&wk.cs, m)
				for len(wk.reach) <= m {
					wk.reach = append(wk.reach, 0)
				}
				wk.reach[m] = d
				if o.ExcludeSelf && d == s { // a unit impulse or box: no parameter
					clear(c)
				} else {
					copy(wk.g, g)
					// coarsenTD leaves ReLU(g) in kw.h and the box sums in
					// kw.kb where the adjoint needs them (ReLU, or not boxed)
					kr.coarsenTD(wk.tdWorker, boxed)
					if err := kr.tapsAdjoint(c, wk.kw.K, wk.kw.kb, wk.kw.h, wk.G, wk.gK, wk.de, boxed, d, s, ps, tapGrad); err != nil {
						return err
					}
				}
				m++
			}
			// Back up the path: λ through the transposed cascades.
			lam := wk.lam
			clear(lam)
			for k := m - 1; k >= 1; k-- {
				addTo(lam, wk.cs[k])
				d := wk.reach[k]
				cascadeAdjoint(lam, wk.levels[k-1], tab, d, false, &wk.inter, wk.dth)
			}
			if !o.ExcludeSelf {
				addTo(lam, wk.cs[0])
				// the source's own term: a box (rapid, or lti without ReLU)
				// or an impulse through s's cascade, its first section
				// folded under rapid
				if o.Lateral == LateralRAPID || !o.ReLU {
					setBox(wk.src, kr.f)
				} else {
					setImpulse(wk.src)
				}
				cascadeAdjoint(lam, wk.src, tab, s, o.Lateral == LateralRAPID, &wk.inter, wk.dth)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		mu.Lock()
		for j, v := range wk.dth {
			addTo(out[j], v)
			clear(v)
		}
		mu.Unlock()
		return nil
	})
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	gr := &Gradients{Params: Params{}}
	for j, name := range irf.GradParams {
		gr.Params[name] = out[j]
	}
	return gr, nil
}

func addTo(dst, v []float64) {
	for i, x := range v {
		dst[i] += x
	}
}

// tapsAdjoint sets c = ∂L/∂(fine response) of pair (d, s) whose taps K
// (before renormalisation; renormalised here), box sums kb and ReLU'd fine
// response h the build formed: G = ∂L/∂K̃ from tapGrad, back through the
// renormalisation, the reduction to taps, the shift, the box sums and ReLU.
// c has the length of h.
func (kr *KernelRouter) tapsAdjoint(c, K, kb, h, G, gK, de []float64, boxed bool, d, s, ps int, tapGrad func(G []float64, d, s, ps int)) error {
	o, f := kr.opts, kr.f
	sum, err := kr.normalised(K, d, s)
	if err != nil {
		return err
	}
	tapGrad(G, d, s, ps)
	dot := 0.0
	if o.Normalize {
		for q, g := range G {
			dot += g * K[q]
		}
	}
	for q, g := range G {
		gK[q] = (g - dot) / sum
	}
	clear(de)
	for p, g := range gK {
		if o.Sampling == SampleLast {
			de[p*f+f-1] = g
			continue
		}
		for u := p * f; u < p*f+f; u++ {
			de[u] = g / float64(f)
		}
	}
	boxAdjoint(c, de, kb, h, f, !boxed, o.Average == AverageStart, o.ReLU)
	return nil
}

// boxAdjoint takes de = ∂L/∂(the fine response as sampled) back to
// c = ∂L/∂h, h the impulse response: through the shift by one sub-step
// of start averaging, the box of f sub-steps (a step's runoff spread over
// them, when box) and the ReLU of the boxed response kb and of h. de is
// overwritten.
func boxAdjoint(c, de, kb, h []float64, f int, box, start, relu bool) {
	dkb := de
	if start {
		copy(dkb, de[1:])
		dkb[len(dkb)-1] = 0
	}
	M := len(c)
	clear(c)
	if box {
		if relu {
			for i, v := range kb {
				if v <= 0 {
					dkb[i] = 0
				}
			}
		}
		run := 0.0
		for j := len(dkb) - 1; j >= 0; j-- {
			run += dkb[j]
			if j+f < len(dkb) {
				run -= dkb[j+f]
			}
			if j < M {
				c[j] = run
			}
		}
	} else {
		copy(c, dkb[:min(M, len(dkb))])
	}
	if relu {
		for j, v := range h {
			if v <= 0 {
				c[j] = 0
			}
		}
	}
}

// cascadeAdjoint: y = F_i(u), F_i reach i's sections run over u from zero
// state (the first with B1 folded into B0 when lateral). Given lam = ∂L/∂y
// it adds ∂L/∂θ_i to dth[j][i] and overwrites lam with ∂L/∂u.
func cascadeAdjoint(lam, u []float64, tab *tdGradTable, i int, lateral bool, inter *[][]float64, dth [][]float64) {
	secs := tab.secs[tab.start[i]:tab.start[i+1]]
	W := len(u)
	for len(*inter) <= len(secs) {
		*inter = append(*inter, make([]float64, W))
	}
	bufs := *inter
	copy(bufs[0], u)
	eff := func(k int) Section {
		s := secs[k]
		if k == 0 && lateral {
			s = Section{B0: s.B0 + s.B1, A1: s.A1}
		}
		return s
	}
	for k := range secs {
		s := eff(k)
		x, y := bufs[k], bufs[k+1]
		px, py := 0.0, 0.0
		for n, v := range x {
			py = s.B0*v + s.B1*px + s.A1*py
			px = v
			y[n] = py
		}
	}
	for k := len(secs) - 1; k >= 0; k-- {
		s := eff(k)
		x, y := bufs[k], bufs[k+1]
		var dB0, dB1, dA1 float64
		nu := 0.0 // ν[n+1]
		for n := W - 1; n >= 0; n-- {
			v := lam[n] + s.A1*nu
			dB0 += v * x[n]
			if n > 0 {
				dB1 += v * x[n-1]
				dA1 += v * y[n-1]
			}
			lam[n] = s.B0*v + s.B1*nu
			nu = v
		}
		for j := range dth {
			ds := tab.dsecs[j][tab.start[i]+k]
			if k == 0 && lateral {
				ds = Section{B0: ds.B0 + ds.B1, A1: ds.A1}
			}
			dth[j][i] += dB0*ds.B0 + dB1*ds.B1 + dA1*ds.A1
		}
	}
}
