//go:build cuda || cudaemu

package gpu

import (
	"context"
	"fmt"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// BackwardRunoff returns ∂L/∂runoff given gy = ∂L/∂y (the dims and network
// order of the discharge Route returns), in the runoff's layout: the
// transposed block-sparse convolution, run on the device over time chunks
// like Route (dr_bsconv_adj). It needs no forward pass: the convolution is
// linear in runoff.
func (r *Router) BackwardRunoff(ctx context.Context, runoff, gy *diffroute.DataTensor) (*diffroute.DataTensor, error) {
	net := r.cpu.Network()
	idx, err := alignRows(runoff, net)
	if err != nil {
		return nil, err
	}
	if err := checkGy(gy, net, runoff.B, runoff.T); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	bs := r.cpu.BlockSparse()
	grow := make([]int, bs.N)   // ∂L/∂y row of position p
	xrow := make([]int32, bs.N) // runoff row of position p
	for p, v := range bs.Order {
		grow[p], xrow[p] = int(v), int32(idx[v])
	}
	dx := runoffGrad(runoff)
	if runoff.T == 0 || bs.N == 0 {
		return dx, nil
	}
	// The whole network is one adjoint job: Taps−1 steps of lookahead.
	j := &clusterJob{kr: r.cpu, bs: bs, dk: r.k, B: runoff.B, T: runoff.T, hist: bs.Taps - 1, adj: true}
	tc, err := r.conv.chunkSteps(j)
	if err != nil {
		return nil, err
	}
	r.conv.resetTiming()
	pack := func(dst []float32, c chunk) { packAhead(dst, gy, grow, c) }
	unpack := func(src []float32, c chunk) { unpackChunk(dx, src, xrow, c, 0) }
	host, err := runChunks(ctx, r.conv, j, tc, pack, unpack)
	if err != nil {
		return nil, err
	}
	r.backStats = r.callStats(j, tc, host, start)
	return dx, nil
}

// BackwardStats describes the last BackwardRunoff call (Backward and
// RouteGrad make one).
func (r *Router) BackwardStats() RouteStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backStats
}

// Backward implements diffroute.Differentiable: ∂L/∂runoff on the device
// (BackwardRunoff) and the parameter gradients of the kernel method. Where
// those come from the adjoint of the kernel build
// (diffroute.KernelRouter.ParamGradsFromBuild: kernels built from spectra,
// or with ReLU, renormalisation or excluded self pairs): ∂L/∂ taps on the
// device (KernelTapGrad), the chain to the IRF parameters on the host
// (diffroute.KernelRouter.BackwardParamsFromTaps). Otherwise the CPU runs
// the recursive adjoint (diffroute.KernelRouter.BackwardParams) while the
// device runs BackwardRunoff.
func (r *Router) Backward(ctx context.Context, runoff, gy *diffroute.DataTensor) (*diffroute.Gradients, error) {
	if r.cpu.ParamGradsFromBuild() {
		dx, err := r.BackwardRunoff(ctx, runoff, gy)
		if err != nil {
			return nil, err
		}
		dk, err := r.KernelTapGrad(ctx, runoff, gy)
		if err != nil {
			return nil, err
		}
		g, err := r.cpu.BackwardParamsFromTaps(ctx, dk)
		if err != nil {
			return nil, err
		}
		g.Runoff = dx
		return g, nil
	}
	type result struct {
		g   *diffroute.Gradients
		err error
	}
	done := make(chan result, 1)
	go func() {
		g, err := r.cpu.BackwardParams(ctx, runoff, gy)
		done <- result{g, err}
	}()
	dx, err := r.BackwardRunoff(ctx, runoff, gy)
	res := <-done
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, res.err
	}
	res.g.Runoff = dx
	return res.g, nil
}

// RouteGrad implements diffroute.Differentiable: Route on the device, the
// loss and its ∂L/∂y on the host, then Backward.
func (r *Router) RouteGrad(ctx context.Context, runoff *diffroute.DataTensor, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, *diffroute.Gradients, error) {
	if loss == nil {
		return nil, 0, nil, fmt.Errorf("gpu: RouteGrad needs a loss function")
	}
	y, err := r.Route(ctx, runoff)
	if err != nil {
		return nil, 0, nil, err
	}
	gy := diffroute.NewDataTensor(y.B, y.IDs, y.T)
	L, err := loss(y, gy)
	if err != nil {
		return nil, 0, nil, err
	}
	g, err := r.Backward(ctx, runoff, gy)
	if err != nil {
		return nil, 0, nil, err
	}
	return y, L, g, nil
}

var _ diffroute.Differentiable = (*Router)(nil)
