package diffroute

import (
	"context"
	"fmt"
)

// The kernel method's reverse mode. Discharge is y_d = Σ_s K_{d,s} ⊛ x_s, so
// the runoff gradient is the transposed block-sparse convolution
//
//	∂L/∂x_s[t] = Σ_{d ⊇ s} Σ_k K_{d,s}[k]·ḡ_d[t+k],
//
// a correlation with every path kernel that starts at s, walked from s down
// to its outlet. Parameter gradients:
//
//   - kernels built in the time domain (IRFs with a recursive form, no
//     Compat): the path kernels are exactly the recursion's path responses,
//     so the recursive adjoint gives the kernel method's derivative wherever
//     MaxDelay covers each path's response (the kernel's truncated mass,
//     Stats().TruncatedMass, says how well), at O(N·T·f);
//   - kernels built in the frequency domain (convolution IRFs, Compat
//     "diffroute"): the FFT's circular wrap-around, the ε floor of the
//     spectra and ReLU, renormalisation or excluded self pairs make them
//     differ from the recursion, so their gradients come from the adjoint
//     of the build itself (grad_build.go), exact for the kernel as built;
//   - ReLU, renormalisation or excluded self pairs on a time-domain build
//     (set by hand with an IRF that has a recursive form): the adjoint of
//     the time-domain build (grad_build_td.go), exact for the kernel as
//     built.

// RouteGrad implements Differentiable for the kernel method.
func (kr *KernelRouter) RouteGrad(ctx context.Context, runoff *DataTensor, loss LossFunc) (*DataTensor, float64, *Gradients, error) {
	if loss == nil {
		return nil, 0, nil, fmt.Errorf("diffroute: RouteGrad needs a loss function")
	}
	y, err := kr.Route(ctx, runoff)
	if err != nil {
		return nil, 0, nil, err
	}
	gy := NewDataTensor(y.B, y.IDs, y.T)
	L, err := loss(y, gy)
	if err != nil {
		return nil, 0, nil, err
	}
	gr, err := kr.Backward(ctx, runoff, gy)
	if err != nil {
		return nil, 0, nil, err
	}
	return y, L, gr, nil
}

// Backward implements Differentiable for the kernel method: the runoff
// gradient by the transposed convolution, the parameter gradients by the
// recursive adjoint (time-domain builds) or by the adjoint of the kernel's
// frequency-domain build (see above). InitialQ is set only by the
// recursive adjoint: the kernel method starts from rest.
func (kr *KernelRouter) Backward(ctx context.Context, runoff, gy *DataTensor) (*Gradients, error) {
	dx, err := kr.BackwardRunoff(ctx, runoff, gy)
	if err != nil {
		return nil, err
	}
	gr, err := kr.BackwardParams(ctx, runoff, gy)
	if err != nil {
		return nil, err
	}
	gr.Runoff = dx
	return gr, nil
}

// BackwardParams is Backward without the runoff gradient (Runoff is nil):
// the parameter and initial-discharge gradients, for a backend that runs
// the transposed convolution itself (a GPU).
func (kr *KernelRouter) BackwardParams(ctx context.Context, runoff, gy *DataTensor) (*Gradients, error) {
	gr := &Gradients{Params: Params{}}
	o := kr.opts
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return nil, err
	}
	if len(irf.GradParams) == 0 {
		return gr, nil
	}
	if kr.td == nil || kr.buildAdjointApplies() { // not the recursion's kernels
		return kr.backwardBuild(ctx, runoff, gy)
	}
	kr.tmu.Lock()
	e := kr.grad
	if e == nil {
		ro := o
		ro.Method = Recursive
		if e, err = newGradEngine(kr.net, ro, true); err != nil {
			kr.tmu.Unlock()
			return nil, err
		}
		kr.grad = e
	}
	kr.tmu.Unlock()
	g, rows, err := e.prepare(runoff, nil)
	if err != nil {
		return nil, err
	}
	if g.e.tiles {
		// As RecursiveRouter.Backward: no float64 discharge, ∂L/∂y read
		// in float32 and ∂L/∂runoff written in float32 (and dropped: the
		// kernel's own is BackwardRunoff's), 4 bytes a value instead of 28.
		g.noY, g.dxT = true, newRunoffGrad(runoff)
	}
	if err := g.run(ctx, func() error { return g.setGy(gy) }); err != nil {
		return nil, err
	}
	rec := g.gradients(runoff, rows, nil)
	gr.Params, gr.InitialQ = rec.Params, rec.InitialQ
	return gr, nil
}

// BackwardRunoff returns ∂L/∂runoff given gy = ∂L/∂y (the discharge's dims
// and ids, network order) by the transposed block-sparse convolution. It
// accumulates in float64.
func (kr *KernelRouter) BackwardRunoff(ctx context.Context, runoff, gy *DataTensor) (*DataTensor, error) {
	idx, err := kr.checkAdjointInput(runoff, gy)
	if err != nil {
		return nil, err
	}
	net := kr.net
	B, T, n := runoff.B, runoff.T, net.Len()
	dx := NewDataTensor(B, runoff.IDs, T)
	dx.Times, dx.Step = runoff.Times, runoff.Step
	if runoff.Units != "" {
		dx.Units = "1/(" + runoff.Units + ")"
	}
	bs := kr.bs
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := max(1, min(kr.opts.Workers, n))
	// Each worker's buffer: the float64 accumulator, then the taps in float64.
	parallelChunks(ctx, cancel, workers, n, 64, func() []float64 { return make([]float64, T+bs.Taps) }, func(buf []float64, lo, hi int) error {
		acc, k64 := buf[:T], buf[T:]
		for q := lo; q < hi; q++ {
			s := int(bs.Order[q])
			for b := 0; b < B; b++ {
				clear(acc)
				for d := s; d >= 0; d = net.Down(d) {
					if g, K := gy.Series(b, d), bs.entry(net.Pre(d), q); !corrVector(acc, g, K, k64) {
						corrPair(acc, g, K)
					}
				}
				dst := dx.Series(b, idx[s])
				for t, v := range acc {
					dst[t] = float32(v)
				}
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return nil
	})
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return dx, nil
}

// corrPair adds Σ_k K[k]·g[t+k] to acc[t]: the adjoint of convPair.
func corrPair(acc []float64, g, K []float32) {
	T := len(g)
	for k, a := range K {
		if a == 0 || k >= T {
			continue
		}
		c := float64(a)
		gg := g[k:T]
		aa := acc[:len(gg)]
		for t, v := range gg {
			aa[t] += c * float64(v)
		}
	}
}

var _ Differentiable = (*KernelRouter)(nil)

// checkAdjointInput checks that gy = ∂L/∂y has the discharge's dims and the
// network's reach order and is finite, and returns each reach's runoff row.
func (kr *KernelRouter) checkAdjointInput(runoff, gy *DataTensor) ([]int, error) {
	net := kr.net
	idx, err := alignRunoff(runoff, net)
	if err != nil {
		return nil, err
	}
	B, T, n := runoff.B, runoff.T, net.Len()
	if gy == nil || gy.B != B || gy.N != n || gy.T != T || len(gy.Data) != B*n*T {
		return nil, fmt.Errorf("diffroute: ∂L/∂y must have the discharge's dims (%d, %d, %d)", B, n, T)
	}
	for i, id := range gy.IDs {
		if id != net.ID(i) {
			return nil, fmt.Errorf("diffroute: ∂L/∂y row %d is reach %d, want %d (network order)", i, id, net.ID(i))
		}
	}
	if err := gy.CheckFinite(); err != nil {
		return nil, fmt.Errorf("diffroute: ∂L/∂y: %w", err)
	}
	return idx, nil
}
