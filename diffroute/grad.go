package diffroute

import (
	"context"
	"fmt"
	"slices"
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

// RouteGrad implements Differentiable for the recursive method: the forward
// pass runs in float64, keeping every reach's state at checkpoints
// (Options.CheckpointSteps), and the adjoint runs outlets first, backwards in
// time.
func (r *RecursiveRouter) RouteGrad(ctx context.Context, runoff *DataTensor, loss LossFunc) (*DataTensor, float64, *Gradients, error) {
	return r.RouteGradFine(ctx, runoff, nil, loss)
}

// RouteGradFine is RouteGrad with fine-grid upstream inflow into some reaches
// (as RouteFine): the inflow is an input held fixed, as when one cluster of a
// basin is calibrated below its calibrated upstream clusters.
func (r *RecursiveRouter) RouteGradFine(ctx context.Context, runoff *DataTensor, in FineFlows, loss LossFunc) (*DataTensor, float64, *Gradients, error) {
	return r.routeGrad(ctx, runoff, in, loss, nil, nil)
}

// RouteGradTo is RouteGrad into tensors the caller owns, as RouteTo is
// Route: the discharge into y (dims of runoff's batch and time, the
// network's reach ids in network order) and the gradients into dst, whose
// Runoff must have the runoff's dims and ids; dst.Params and dst.InitialQ
// are reused where their lengths fit, else replaced. A loop of gradients
// that keeps y and dst (a calibration's) then allocates no series: fresh
// pages for the tens of MB of each gradient's results cost as much as a
// tenth of it, and garbage for the collector.
func (r *RecursiveRouter) RouteGradTo(ctx context.Context, y *DataTensor, dst *Gradients, runoff *DataTensor, loss LossFunc) (float64, error) {
	if err := checkDst(y, runoff, r.net); err != nil {
		return 0, err
	}
	if dst == nil || dst.Runoff == nil || dst.Runoff.B != runoff.B || dst.Runoff.N != runoff.N || dst.Runoff.T != runoff.T ||
		len(dst.Runoff.Data) != len(runoff.Data) || !slices.Equal(dst.Runoff.IDs, runoff.IDs) {
		return 0, fmt.Errorf("diffroute: RouteGradTo needs dst.Runoff with the runoff's dims (%d, %d, %d) and reach ids", runoff.B, runoff.N, runoff.T)
	}
	_, L, _, err := r.routeGrad(ctx, runoff, nil, loss, y, dst)
	return L, err
}

// routeGrad is RouteGradFine into y and dst where they are not nil.
func (r *RecursiveRouter) routeGrad(ctx context.Context, runoff *DataTensor, in FineFlows, loss LossFunc, y *DataTensor, dst *Gradients) (*DataTensor, float64, *Gradients, error) {
	if loss == nil {
		return nil, 0, nil, fmt.Errorf("diffroute: RouteGrad needs a loss function")
	}
	g, rows, err := r.gradRun(runoff, in)
	if err != nil {
		return nil, 0, nil, err
	}
	if y == nil {
		y = newDischarge(runoff, r.net)
	}
	if dst != nil {
		g.keep = dst
		if len(rows) < runoff.N {
			// Rows of reaches outside the network get no gradient: zero.
			clear(dst.Runoff.Data)
		}
	}
	if g.e.tiles {
		g.y32 = y.Data
		if dst != nil {
			g.dxT = dst.Runoff
		} else {
			g.dxT = newRunoffGrad(runoff)
		}
	}
	var L float64
	err = g.run(ctx, func() error {
		if g.y32 == nil {
			g.toTensor(y, g.y)
		}
		gy := g.e.gyT // the loss fills it and must not keep it
		if gy == nil || gy.B != y.B || gy.T != y.T {
			gy = NewDataTensor(y.B, y.IDs, y.T)
			g.e.gyT, g.e.gyZero = gy, true
		}
		gy.IDs = y.IDs
		if !g.e.gyZero {
			clear(gy.Data)
		}
		g.e.gyZero = false
		var err error
		if L, err = loss(y, gy); err != nil {
			return err
		}
		g.zeroGy = g.e.tiles // the tiled adjoint reads every value once
		return g.setGy(gy)
	})
	if err != nil {
		return nil, 0, nil, err
	}
	g.e.gyZero = g.zeroGy && g.gy32 != nil
	return y, L, g.gradients(runoff, rows, dst), nil
}

// Backward implements Differentiable for the recursive method.
func (r *RecursiveRouter) Backward(ctx context.Context, runoff, gy *DataTensor) (*Gradients, error) {
	g, rows, err := r.gradRun(runoff, nil)
	if err != nil {
		return nil, err
	}
	if g.e.tiles {
		g.noY, g.dxT = true, newRunoffGrad(runoff)
	}
	err = g.run(ctx, func() error { return g.setGy(gy) })
	if err != nil {
		return nil, err
	}
	return g.gradients(runoff, rows, nil), nil
}

// gradRun prepares a gradient computation of r's network and options.
func (r *RecursiveRouter) gradRun(runoff *DataTensor, in FineFlows) (*gradRun, []int, error) {
	if r.grad == nil {
		irf, err := LookupIRF(r.opts.IRF)
		if err != nil {
			return nil, nil, err
		}
		e, err := newGradEngineTaps(r.net, r.opts, len(irf.GradParams) > 0, r.irf.Value())
		if err != nil {
			return nil, nil, err
		}
		r.grad = e
	}
	return r.grad.prepare(runoff, in)
}

// prepare aligns runoff and fine inflow with the network.
func (e *gradEngine) prepare(runoff *DataTensor, in FineFlows) (*gradRun, []int, error) {
	rows, err := alignRunoff(runoff, e.net)
	if err != nil {
		return nil, nil, err
	}
	n, B, T := e.net.Len(), runoff.B, runoff.T
	var lat []float64
	if !e.tiles {
		lat = reuse(&e.latBuf, B*n*T)
		for b := 0; b < B; b++ {
			for i, row := range rows {
				src := runoff.Series(b, row)
				dst := lat[(b*n+i)*T : (b*n+i+1)*T]
				for t, v := range src {
					dst[t] = float64(v)
				}
			}
		}
	}
	g := e.newRun(lat, B, T)
	g.x, g.rows = runoff, rows
	for i, s := range in {
		if int(i) >= n || i < 0 {
			return nil, nil, fmt.Errorf("diffroute: fine inflow for reach position %d, beyond %d reaches", i, n)
		}
		if len(s) != B*T*e.f {
			return nil, nil, fmt.Errorf("diffroute: fine inflow of reach %d has %d values, want %d", e.net.ID(int(i)), len(s), B*T*e.f)
		}
		v := make([]float64, len(s))
		for k, x := range s {
			v[k] = float64(x)
		}
		g.in[i] = v
	}
	return g, rows, nil
}

// toTensor copies network-order float64 values into a discharge tensor.
func (g *gradRun) toTensor(dst *DataTensor, src []float64) {
	for k, v := range src {
		dst.Data[k] = float32(v)
	}
}

// setGy takes ∂L/∂y (network order, the discharge's dims), refusing
// non-finite values.
func (g *gradRun) setGy(gy *DataTensor) error {
	if gy == nil || gy.B != g.B || gy.N != g.N || gy.T != g.T || len(gy.Data) != g.B*g.N*g.T {
		return fmt.Errorf("diffroute: ∂L/∂y must have the discharge's dims (%d, %d, %d)", g.B, g.N, g.T)
	}
	for i, id := range gy.IDs {
		if id != g.e.net.ID(i) {
			return fmt.Errorf("diffroute: ∂L/∂y row %d is reach %d, want %d (network order)", i, id, g.e.net.ID(i))
		}
	}
	if err := gy.CheckFinite(); err != nil {
		return fmt.Errorf("diffroute: ∂L/∂y: %w", err)
	}
	if g.e.tiles && g.dxT != nil {
		g.gy32 = gy.Data // read during the backward pass only
		return nil
	}
	g.gy = reuse(&g.e.gyBuf, len(gy.Data))
	for k, v := range gy.Data {
		g.gy[k] = float64(v)
	}
	return nil
}

// newRunoffGrad allocates ∂L/∂runoff in the runoff's layout.
func newRunoffGrad(runoff *DataTensor) *DataTensor {
	dx := NewDataTensor(runoff.B, runoff.IDs, runoff.T)
	dx.Times, dx.Step = runoff.Times, runoff.Step
	if runoff.Units != "" {
		dx.Units = "1/(" + runoff.Units + ")"
	}
	return dx
}

// gradients packs the results: runoff gradient in the runoff's layout.
func (g *gradRun) gradients(runoff *DataTensor, rows []int, dst *Gradients) *Gradients {
	dx := g.dxT // the tiled adjoint wrote it
	if dx == nil {
		if dst != nil {
			dx = dst.Runoff
		} else {
			dx = newRunoffGrad(runoff)
		}
		for b := 0; b < g.B; b++ {
			for i, row := range rows {
				src := g.dx[(b*g.N+i)*g.T : (b*g.N+i+1)*g.T]
				dst := dx.Series(b, row)
				for t, v := range src {
					dst[t] = float32(v)
				}
			}
		}
	}
	gr := dst
	if gr == nil {
		gr = &Gradients{Params: Params{}}
	}
	gr.Runoff, gr.InitialQ = dx, g.dq0
	if gr.Params == nil {
		gr.Params = Params{}
	}
	for j, name := range g.e.gradNames() {
		gr.Params[name] = g.dth[j]
	}
	return gr
}

var _ Differentiable = (*RecursiveRouter)(nil)
