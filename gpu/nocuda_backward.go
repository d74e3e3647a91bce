//go:build !cuda && !cudaemu

package gpu

import (
	"context"

	"github.com/diffroute-go/route/diffroute"
)

// BackwardRunoff fails with ErrNoCUDA.
func (r *Router) BackwardRunoff(ctx context.Context, runoff, gy *diffroute.DataTensor) (*diffroute.DataTensor, error) {
	return nil, ErrNoCUDA
}

// Backward fails with ErrNoCUDA.
func (r *Router) Backward(ctx context.Context, runoff, gy *diffroute.DataTensor) (*diffroute.Gradients, error) {
	return nil, ErrNoCUDA
}

// RouteGrad fails with ErrNoCUDA.
func (r *Router) RouteGrad(ctx context.Context, runoff *diffroute.DataTensor, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, *diffroute.Gradients, error) {
	return nil, 0, nil, ErrNoCUDA
}

// KernelTapGrad fails with ErrNoCUDA.
func (r *Router) KernelTapGrad(ctx context.Context, runoff, gy *diffroute.DataTensor) ([]float64, error) {
	return nil, ErrNoCUDA
}

// BackwardStats returns the zero value.
func (r *Router) BackwardStats() RouteStats { return RouteStats{} }

var (
	_ diffroute.Differentiable       = (*Router)(nil)
	_ diffroute.ClusterKernelAdjoint = (*Router)(nil)
)
