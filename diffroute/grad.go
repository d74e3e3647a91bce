package diffroute

import (
	"context"
	"fmt"
)

// Gradients are the derivatives of a scalar loss L of routed discharge with
// respect to the routing run's inputs (reverse mode, exact up to float64
// rounding).
type Gradients struct {
	// Runoff is ∂L/∂runoff: the runoff's dims, ids and rows, in the units of
	// 1/(runoff units).
	Runoff *DataTensor
	// Params is ∂L/∂θ per IRF parameter name, per reach in network order, in
	// the units of Options.Params (runoff steps for Muskingum's k). Only
	// parameters with a gradient appear (see IRF.GradParams).
	Params Params
	// InitialQ is ∂L/∂q0 per reach in network order (Options.InitialQ, the
	// discharge before the first step, whether given or zero).
	InitialQ []float64
}

// LossFunc evaluates a scalar loss of discharge y and writes ∂L/∂y into gy,
// which has y's dims and ids and arrives zeroed. gy must be finite.
type LossFunc func(y, gy *DataTensor) (float64, error)

// Differentiable is a router that also runs the reverse mode. Gradient runs
// always start from Options.InitialQ (not from a state left by an earlier
// Route call) and leave the router's routing state unchanged.
type Differentiable interface {
	Router
	// RouteGrad routes runoff, evaluates loss on the discharge and returns
	// discharge, loss and gradients: one forward and one backward pass.
	RouteGrad(ctx context.Context, runoff *DataTensor, loss LossFunc) (*DataTensor, float64, *Gradients, error)
	// Backward returns the gradients for runoff given gy = ∂L/∂y (dims and
	// ids of the discharge Route returns). It recomputes what it needs of
	// the forward pass.
	Backward(ctx context.Context, runoff, gy *DataTensor) (*Gradients, error)
}

// Gradient routes runoff through net with opts and returns discharge, the
// loss and its gradients: the three-line entry point for calibration.
func Gradient(ctx context.Context, net *Network, opts Options, runoff *DataTensor, loss LossFunc) (*DataTensor, float64, *Gradients, error) {
	rt, err := NewRouter(ctx, net, opts)
	if err != nil {
		return nil, 0, nil, err
	}
	d, ok := rt.(Differentiable)
	if !ok {
		return nil, 0, nil, fmt.Errorf("diffroute: the %s method has no gradient", opts.Method)
	}
	return d.RouteGrad(ctx, runoff, loss)
}
