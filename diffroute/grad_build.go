package diffroute

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
)

// The kernel build's adjoint: exact parameter gradients of kernels built in
// the frequency domain with ReLU, renormalisation or excluded self pairs
// (Compat "diffroute"), which have no recursive form.
//
// Pair (d, s)'s spectrum is S = Π_{r ∈ path} Ĥ_r, each Ĥ_r reach r's
// spectrum with its magnitude floored at ε; its fine kernel k = IFFT(S)/M,
// ReLU'd, box-summed (again ReLU'd), shifted, reduced to taps K and
// renormalised, K̃ = K/ΣK. Going back from G = ∂L/∂K̃ (the correlation of
// ∂L/∂y_d with x_s, per tap):
//
//   - renormalisation: ∂L/∂K[q] = (G[q] − Σ_j G[j]·K̃[j]) / ΣK;
//   - reduction, shift and box sum are linear: their transposes;
//   - ReLU: the gradient passes where the value was positive;
//   - inverse FFT: for real c = ∂L/∂k, ∂L/∂S_j = w_j·conj(C_j)/M with
//     C = FFT(c) and w_j = 2 except at frequency 0 and Nyquist (1), so that
//     ∂L/∂θ = Re Σ_j ∂L/∂S_j·∂S_j/∂θ;
//   - product: ∂S/∂θ_r = S·∂log Ĥ_r/∂θ_r for every reach r on the path,
//     where ∂log Ĥ_r = ∂Ĥ_r/Ĥ_r, or only its imaginary part where the
//     magnitude is floored.
//
// So ∂L/∂θ_r = Re Σ_j Z_r[j]·∂log Ĥ_r[j]/∂θ_r with Z_r the sum, over every
// pair whose path crosses r, of A = w·conj(C)·S/M: per source, the pairs'
// A summed from the outlet up the path (a suffix sum) and added to each
// reach on it. Cost: one inverse and one forward FFT per pair, as many as
// the build, plus the correlation G of every pair (B·T·Taps each, the
// forward convolution's work); memory: the reaches' spectra and Z (two
// N × (M/2+1) complex128 tables).

// ParamGradsFromBuild reports whether the kernel's parameter gradients come
// from the adjoint of its build (a frequency-domain build, for an IRF with
// parameter gradients), so that BackwardParamsFromTaps gives them from
// ∂L/∂K; otherwise BackwardParams runs the recursive adjoint.
func (kr *KernelRouter) ParamGradsFromBuild() bool {
	return (kr.td == nil || kr.buildAdjointApplies()) && len(kr.tab.irf.GradParams) > 0
}

// buildAdjointApplies reports whether the kernel's parameter gradients come
// from the build's adjoint rather than the recursive one.
func (kr *KernelRouter) buildAdjointApplies() bool {
	o := kr.opts
	return o.ReLU || o.Normalize || o.ExcludeSelf
}

// KernelTapGrad returns ∂L/∂K for every tap of the kernel, in the layout of
// BlockSparse().Vals (zero outside the closure), given the runoff and
// gy = ∂L/∂y: per pair (d, s), G[q] = Σ_b Σ_t gy[b, d, t+q]·x[b, s, t],
// accumulated in float64. A GPU backend computes the same on the device and
// hands it to BackwardParamsFromTaps.
func (kr *KernelRouter) KernelTapGrad(ctx context.Context, runoff, gy *DataTensor) ([]float64, error) {
	tg, err := kr.newTapGrad(runoff, gy)
	if err != nil {
		return nil, err
	}
	bs := kr.bs
	dst := make([]float64, len(bs.Vals))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	parallelChunks(ctx, cancel, max(1, min(kr.opts.Workers, bs.N)), bs.N, 32, func() struct{} { return struct{}{} }, func(_ struct{}, lo, hi int) error {
		for ps := lo; ps < hi; ps++ {
			s := int(bs.Order[ps])
			for d := s; d >= 0; d = kr.net.Down(d) {
				off := bs.offset(kr.net.Pre(d), ps)
				tg.pair(dst[off:off+int64(bs.Taps)], d, s)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return dst, nil
}

// tapGrad correlates ∂L/∂y with runoff per pair.
type tapGrad struct {
	x, gy *DataTensor
	rows  []int // runoff row of each reach
}

func (kr *KernelRouter) newTapGrad(runoff, gy *DataTensor) (*tapGrad, error) {
	idx, err := kr.checkAdjointInput(runoff, gy)
	if err != nil {
		return nil, err
	}
	return &tapGrad{x: runoff, gy: gy, rows: idx}, nil
}

// pair sets G[q] = Σ_b Σ_t gy[b, d, t+q]·x[b, s, t].
func (tg *tapGrad) pair(G []float64, d, s int) {
	clear(G)
	for b := 0; b < tg.x.B; b++ {
		x, g := tg.x.Series(b, tg.rows[s]), tg.gy.Series(b, d)
		T := len(x)
		for q := range G {
			if q >= T {
				break
			}
			acc := 0.0
			for t, v := range g[q:T] {
				acc += float64(v) * float64(x[t])
			}
			G[q] += acc
		}
	}
}

// BackwardParamsFromTaps returns the parameter gradients of a kernel with
// ReLU, renormalisation or excluded self pairs given dK = ∂L/∂K in the
// layout of BlockSparse().Vals (KernelTapGrad, or a device's equivalent):
// the adjoint of the kernel build. Runoff and InitialQ are nil.
func (kr *KernelRouter) BackwardParamsFromTaps(ctx context.Context, dK []float64) (*Gradients, error) {
	if len(dK) != len(kr.bs.Vals) {
		return nil, fmt.Errorf("diffroute: ∂L/∂K has %d values, the kernel %d", len(dK), len(kr.bs.Vals))
	}
	bs := kr.bs
	taps := func(G []float64, d, _, ps int) {
		off := bs.offset(kr.net.Pre(d), ps)
		copy(G, dK[off:off+int64(bs.Taps)])
	}
	if kr.td != nil {
		return kr.buildAdjointTD(ctx, taps)
	}
	return kr.buildAdjoint(ctx, taps)
}

// backwardBuild is BackwardParams for kernels with ReLU, renormalisation or
// excluded self pairs: the correlations per pair are computed on the fly.
func (kr *KernelRouter) backwardBuild(ctx context.Context, runoff, gy *DataTensor) (*Gradients, error) {
	tg, err := kr.newTapGrad(runoff, gy)
	if err != nil {
		return nil, err
	}
	taps := func(G []float64, d, s, _ int) { tg.pair(G, d, s) }
	if kr.td != nil {
		return kr.buildAdjointTD(ctx, taps)
	}
	return kr.buildAdjoint(ctx, taps)
}

// adjWorker holds one goroutine's buffers of the build's adjoint.
type adjWorker struct {
	*kernelWorker
	G, gK []float64    // Taps
	de    []float64    // Taps·f
	c     []float64    // M: ∂L/∂(fine kernel)
	C     []complex128 // M/2+1
	path  [][]complex128
	reach []int
}

// buildGradCheck returns the IRF and an error if the build's adjoint cannot
// give this kernel's parameter gradients.
func (kr *KernelRouter) buildGradCheck() (IRF, error) {
	irf := kr.tab.irf
	if len(irf.GradParams) == 0 {
		return irf, errNoParamGrad(irf)
	}
	if kr.td != nil {
		panic("diffroute: the FFT build's adjoint for a time-domain build")
	}
	return irf, nil
}

// pairWalk visits every pair of the FFT build as the build forms it, per
// source (pre-order position ps) walking down to the outlet: fn gets the
// pair's spectrum in wk.src (not to be modified), wk.h its fine kernel (after
// ReLU), wk.kb, wk.e and wk.K its box sums, shifted kernel and taps before
// renormalisation, m the pair's rank on the path. Self pairs of ExcludeSelf
// (a unit impulse, no parameter) are skipped. Pc holds the reaches' clamped
// spectra.
func (kr *KernelRouter) pairWalk(ctx context.Context, Pc []complex128, newState func() *adjWorker,
	fn func(wk *adjWorker, d, s, ps, m int, boxed bool) error, done func(wk *adjWorker, s, ps int, boxed bool) error) error {
	n := kr.net.Len()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	parallelChunks(ctx, cancel, max(1, min(kr.opts.Workers, n)), n, 16, newState, func(wk *adjWorker, lo, hi int) error {
		for ps := lo; ps < hi; ps++ {
			if err := kr.sourcePairs(wk, Pc, ps, fn, done); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	return context.Cause(ctx)
}

// sourcePairs is pairWalk's visit of the source at pre-order position ps.
func (kr *KernelRouter) sourcePairs(wk *adjWorker, Pc []complex128, ps int,
	fn func(wk *adjWorker, d, s, ps, m int, boxed bool) error, done func(wk *adjWorker, s, ps int, boxed bool) error) error {
	net, o, bs := kr.net, kr.opts, kr.bs
	nf := kr.m/2 + 1
	exclude, compat := o.ExcludeSelf, o.Compat == CompatDiffRoute
	s := int(bs.Order[ps])
	boxed := false
	switch {
	case exclude && !compat:
		for j := range wk.src {
			wk.src[j] = 1
		}
	case o.Lateral == LateralRAPID && !exclude:
		var err error
		if boxed, err = kr.reachClamped(wk.kernelWorker, s, true); err != nil {
			return err
		}
		if boxed {
			copy(wk.src, wk.spec)
		} else {
			copy(wk.src, Pc[s*nf:(s+1)*nf])
		}
	default:
		copy(wk.src, Pc[s*nf:(s+1)*nf])
	}
	m := 0
	for d := s; d >= 0; d = net.Down(d) {
		if !(exclude && d == s) {
			kr.fineFromSpec(wk.kernelWorker, wk.src)
			kr.coarsen(wk.kernelWorker, boxed)
			if err := fn(wk, d, s, ps, m, boxed); err != nil {
				return err
			}
		}
		if dd := net.Down(d); dd >= 0 {
			e := Pc[dd*nf : (dd+1)*nf]
			for j, c := range e {
				wk.src[j] *= c
			}
		}
		m++
	}
	if done != nil {
		return done(wk, s, ps, boxed)
	}
	return nil
}

// clampedSpectra returns every reach's spectrum with its magnitude floored
// at ε, N × (M/2+1), as the build uses them.
func (kr *KernelRouter) clampedSpectra(ctx context.Context) ([]complex128, error) {
	n, nf := kr.net.Len(), kr.m/2+1
	P := make([]complex128, n*nf)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	parallelChunks(ctx, cancel, max(1, min(kr.opts.Workers, n)), n, 256, kr.newWorker, func(wk *kernelWorker, lo, hi int) error {
		for i := lo; i < hi; i++ {
			if _, err := kr.reachClamped(wk, i, false); err != nil {
				return err
			}
			copy(P[i*nf:(i+1)*nf], wk.spec)
		}
		return nil
	})
	return P, context.Cause(ctx)
}

// normalised applies Normalize to taps K (the build's rule) and returns the
// sum it divided by (1 without Normalize).
func (kr *KernelRouter) normalised(K []float64, d, s int) (float64, error) {
	if !kr.opts.Normalize {
		return 1, nil
	}
	sum := 0.0
	for _, v := range K {
		sum += v
	}
	if math.Abs(sum) < kernelZeroSum {
		return 0, fmt.Errorf("diffroute: path kernel from reach %d to reach %d sums to zero (%.3g) and cannot be normalised", kr.net.ID(s), kr.net.ID(d), sum)
	}
	for q := range K {
		K[q] /= sum
	}
	return sum, nil
}

// buildAdjoint runs the adjoint of the kernel build; tapGrad fills G with
// ∂L/∂K of pair (d, s) (source at pre-order position ps).
func (kr *KernelRouter) buildAdjoint(ctx context.Context, tapGrad func(G []float64, d, s, ps int)) (*Gradients, error) {
	irf, err := kr.buildGradCheck()
	if err != nil {
		return nil, err
	}
	o := kr.opts
	n, nf, M := kr.net.Len(), kr.m/2+1, kr.m
	Pc, err := kr.clampedSpectra(ctx)
	if err != nil {
		return nil, err
	}
	Z := make([]complex128, n*nf)
	var Zs []complex128 // source terms that are not the reach's own spectrum
	if o.Lateral == LateralRAPID && !o.ExcludeSelf {
		Zs = make([]complex128, n*nf)
	}
	var locks [64]sync.Mutex
	add := func(dst []complex128, i int, v []complex128) {
		l := &locks[i%len(locks)]
		l.Lock()
		for j, c := range v {
			dst[i*nf+j] += c
		}
		l.Unlock()
	}
	newState := func() *adjWorker {
		return &adjWorker{kernelWorker: kr.newWorker(), G: make([]float64, kr.taps), gK: make([]float64, kr.taps),
			de: make([]float64, kr.w), c: make([]float64, M), C: make([]complex128, nf)}
	}
	pair := func(wk *adjWorker, d, s, ps, m int, boxed bool) error {
		c := wk.c
		if err := kr.tapsAdjoint(c, wk.K, wk.kb, wk.h, wk.G, wk.gK, wk.de, boxed, d, s, ps, tapGrad); err != nil {
			return err
		}
		wk.fft.Coefficients(wk.C, c)
		for len(wk.path) <= m {
			wk.path = append(wk.path, make([]complex128, nf))
			wk.reach = append(wk.reach, 0)
		}
		A := wk.path[m]
		inv := 1 / float64(M)
		for j, cj := range wk.C {
			w := 2 * inv
			if j == 0 || 2*j == M {
				w = inv
			}
			A[j] = complex(w, 0) * complex(real(cj), -imag(cj)) * wk.src[j]
		}
		wk.reach[m] = d
		return nil
	}
	exclude, compat := o.ExcludeSelf, o.Compat == CompatDiffRoute
	done := func(wk *adjWorker, s, ps int, boxed bool) error {
		// the pairs' A summed from the outlet up, added to each reach on the path
		depth := 0
		for d := s; d >= 0; d = kr.net.Down(d) {
			depth++
		}
		acc := wk.C // reused as the running sum
		clear(acc)
		for m := depth - 1; m >= 0; m-- {
			if m > 0 || !exclude {
				for j, a := range wk.path[m] {
					acc[j] += a
				}
			}
			switch {
			case m > 0:
				add(Z, wk.reach[m], acc)
			case exclude && !compat: // s's own IRF is on no path
			case boxed:
				add(Zs, s, acc)
			default:
				add(Z, s, acc)
			}
		}
		return nil
	}
	// wk.reach[0] is set by the self pair, which ExcludeSelf skips: the
	// suffix sums then start at rank 1 and rank 0 is s itself.
	if err := kr.pairWalk(ctx, Pc, newState, pair, done); err != nil {
		return nil, err
	}
	return kr.paramsFromZ(ctx, irf, Z, Zs)
}

// paramsFromZ finishes the build's adjoint: ∂L/∂θ_r = Re Σ_j Z_r[j]·∂log Ĥ_r[j]/∂θ
// (and the same with the source terms' spectra for Zs).
func (kr *KernelRouter) paramsFromZ(ctx context.Context, irf IRF, Z, Zs []complex128) (*Gradients, error) {
	n, nf := kr.net.Len(), kr.m/2+1
	gp := make([]int, len(irf.GradParams))
	for j, name := range irf.GradParams {
		if gp[j] = slices.Index(irf.Params, name); gp[j] < 0 {
			return nil, fmt.Errorf("diffroute: IRF %q lists gradient parameter %q, which is not one of its parameters", irf.Name, name)
		}
	}
	out := make([][]float64, len(gp))
	for j := range out {
		out[j] = make([]float64, n)
	}
	type state struct {
		wk  *kernelWorker
		dl  [][]complex128
		buf []float64
		dh  [][]float64
		ds  [][]Section
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	parallelChunks(ctx, cancel, max(1, min(kr.opts.Workers, n)), n, 64, func() *state {
		st := &state{wk: kr.newWorker(), dl: make([][]complex128, len(irf.Params)), buf: make([]float64, kr.m),
			dh: make([][]float64, len(irf.Params)), ds: make([][]Section, len(irf.Params))}
		for j := range st.dl {
			st.dl[j] = make([]complex128, nf)
			st.dh[j] = make([]float64, kr.w)
		}
		return st
	}, func(st *state, lo, hi int) error {
		for i := lo; i < hi; i++ {
			for k, z := range [2][]complex128{Z, Zs} {
				if z == nil {
					continue
				}
				zi := z[i*nf : (i+1)*nf]
				if !slices.ContainsFunc(zi, func(c complex128) bool { return c != 0 }) {
					continue
				}
				lateral := k == 1
				if err := kr.reachLogGrad(st.wk, irf, i, lateral, st.dl, st.buf, st.dh, st.ds); err != nil {
					return err
				}
				for j, pj := range gp {
					s := 0.0
					for q, c := range st.dl[pj] {
						s += real(zi[q])*real(c) - imag(zi[q])*imag(c)
					}
					out[j][i] += s
				}
			}
		}
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

// reachLogGrad fills dl[p] with ∂log Ĥ_i/∂θ_p per frequency for every
// parameter p with a gradient (Ĥ_i reach i's clamped spectrum, or with
// lateral its rapid lateral step response's, as reachSpec forms them):
// ∂Ĥ/Ĥ where |Ĥ| ≥ ε, its imaginary part only where the magnitude is
// floored (only the phase moves).
func (kr *KernelRouter) reachLogGrad(wk *kernelWorker, irf IRF, i int, lateral bool, dl [][]complex128, buf []float64, dh [][]float64, ds [][]Section) error {
	if _, err := kr.reachSpec(wk, i, lateral); err != nil {
		return err
	}
	H := wk.spec // raw spectrum; wk.secs holds i's sections (nil: convolution form)
	p := kr.tab.params[i]
	secs := wk.secs
	if secs != nil {
		if irf.SectionsGrad == nil {
			return errNoParamGrad(irf)
		}
		for j := range ds {
			ds[j] = slices.Grow(ds[j][:0], len(secs))[:len(secs)]
		}
		if err := irf.SectionsGrad(ds, p, kr.tab.r); err != nil {
			return reachIRFError(kr.net.ID(i), irf.Name, err)
		}
	} else {
		if irf.ImpulseGrad == nil {
			return errNoParamGrad(irf)
		}
		for j := range dh {
			clear(dh[j])
		}
		if err := irf.ImpulseGrad(dh, p, kr.tab.r); err != nil {
			return reachIRFError(kr.net.ID(i), irf.Name, err)
		}
	}
	for j := range dl {
		if !slices.Contains(irf.GradParams, irf.Params[j]) {
			continue
		}
		clear(buf)
		if secs != nil {
			sectionsTangent(buf, secs, ds[j], kr.f, lateral)
		} else {
			copy(buf, dh[j])
		}
		wk.fft.Coefficients(dl[j], buf)
		for q, dH := range dl[j] {
			h := H[q]
			a := math.Hypot(real(h), imag(h))
			switch {
			case a == 0:
				dl[j][q] = 0
			case a < kernelLogEps:
				dl[j][q] = complex(0, imag(dH/h))
			default:
				dl[j][q] = dH / h
			}
		}
	}
	return nil
}

// sectionsTangent writes into dy the derivative of reachSpec's fine
// response through the cascade secs (a unit impulse, or with lateral a box
// of f ones through the first section with B1 folded into B0) given the
// sections' derivatives dsec: forward-mode differentiation of the filters.
func sectionsTangent(dy []float64, secs, dsec []Section, f int, lateral bool) {
	M := len(dy)
	x := make([]float64, M)  // the cascade's signal
	dx := make([]float64, M) // its tangent
	if lateral {
		for n := 0; n < min(f, M); n++ {
			x[n] = 1
		}
	} else if M > 0 {
		x[0] = 1
	}
	for k, s := range secs {
		ds := dsec[k]
		if k == 0 && lateral {
			s = Section{B0: s.B0 + s.B1, A1: s.A1}
			ds = Section{B0: ds.B0 + ds.B1, A1: ds.A1}
		}
		px, pdx, py, pdy := 0.0, 0.0, 0.0, 0.0
		for n := range x {
			xn, dxn := x[n], dx[n]
			y := s.B0*xn + s.B1*px + s.A1*py
			dyn := ds.B0*xn + s.B0*dxn + ds.B1*px + s.B1*pdx + ds.A1*py + s.A1*pdy
			px, pdx, py, pdy = xn, dxn, y, dyn
			x[n], dx[n] = y, dyn
		}
	}
	copy(dy, dx)
}
