package calibrate

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// Basin is one routing problem: a network, its routing options, runoff and
// gauges, and the search space over its reaches.
type Basin struct {
	Net     *diffroute.Network
	Options diffroute.Options // Options.Params is replaced by the Space's
	Runoff  *diffroute.DataTensor
	Gauges  *Gauges
	Space   *Space
	// Inflow, when set, is upstream inflow entering some reaches on the
	// fine grid for the whole series (staged transfers; see Sequential).
	Inflow diffroute.FineFlows
}

// Gradient routes runoff with the given parameters and returns discharge,
// the loss and ∂L/∂θ per parameter per reach (network order, in
// Options.Params units).
type Gradient func(ctx context.Context, b *Basin, p diffroute.Params, runoff *diffroute.DataTensor, in diffroute.FineFlows, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, diffroute.Params, error)

// Forward routes runoff with the given parameters.
type Forward func(ctx context.Context, b *Basin, p diffroute.Params, runoff *diffroute.DataTensor, in diffroute.FineFlows) (*diffroute.DataTensor, error)

// Config is a calibration run.
type Config struct {
	Basin
	Loss Loss
	// Warmup is the number of steps at the start of every routed window
	// left out of the loss (DiffHydro's init_len): routing starts from
	// Options.InitialQ (zero by default) at each window.
	Warmup int
	// TrainUntil splits time: steps [0, TrainUntil) train, [TrainUntil, T)
	// validate (the validation run routes the whole series, so the
	// validation period starts from the state the training period leaves).
	// 0 trains on the whole series.
	TrainUntil int
	// Valid, when set, validates on another basin (learning a map:
	// Valid.Space has the same Map kind and shares the free variables).
	// Its loss is taken over all its steps after Warmup.
	Valid *Basin
	// Window is the number of loss steps of each Adam iteration's random
	// window (DiffHydro's pred_len), routed after Warmup more steps; 0
	// uses the whole training period at every iteration. L-BFGS always
	// uses the whole training period.
	Window int
	// Optimizer is "adam" (default) or "lbfgs"; LR is Adam's learning rate
	// (default 0.1).
	Optimizer string
	LR        float64
	// Epochs is the number of optimizer iterations (one window each for
	// Adam); default 100. ValidEvery validates every so many iterations
	// (default 1); Patience stops after that many validations without
	// improvement (0: never).
	Epochs, ValidEvery, Patience int
	Seed                         uint64
	// Start, when set, is where the free variables start; by default the
	// Space's fit of the prior parameters (Options.Params).
	Start []float64
	// Ridge > 0 adds Ridge·mean((z − z₀)²) to the training loss, z₀ being
	// the start: a prior term that keeps free variables the gauges cannot
	// tell apart (most reaches' own k under a per-reach map) at the prior
	// instead of letting the optimizer wander along flat directions.
	Ridge float64
	// Progress, when set, is called after every iteration.
	Progress func(Epoch)
	// Gradient and Forward default to the core's routing: CoreGradient's
	// gradients (into tensors kept from one iteration to the next) and
	// CoreForward.
	Gradient Gradient
	Forward  Forward
}

// Epoch records one optimizer iteration.
type Epoch struct {
	Epoch int
	// Train is the training loss of the iteration's window (Adam) or of the
	// whole training period (L-BFGS); Valid the validation loss, NaN when
	// not validated at this iteration.
	Train, Valid float64
	Elapsed      time.Duration
}

// Result is a calibration's outcome.
type Result struct {
	Z      []float64        // free variables kept: the best validation, else the last
	Params diffroute.Params // the basin's parameters for Z
	Prior  []float64        // the free variables the run started from
	// History has one entry per iteration; Best is the index of the kept
	// iteration (−1: the prior was best).
	History []Epoch
	Best    int
	Stopped string // why the run stopped
}

func (c *Config) defaults() error {
	if c.Loss == "" {
		c.Loss = NSE
	}
	if c.Optimizer == "" {
		c.Optimizer = "adam"
	}
	if c.Optimizer != "adam" && c.Optimizer != "lbfgs" {
		return fmt.Errorf("calibrate: unknown optimizer %q (want adam or lbfgs)", c.Optimizer)
	}
	if c.LR == 0 {
		c.LR = 0.1
	}
	if c.Epochs == 0 {
		c.Epochs = 100
	}
	if c.ValidEvery == 0 {
		c.ValidEvery = 1
	}
	if c.Gradient == nil {
		c.Gradient = keptGradient()
	}
	if c.Forward == nil {
		c.Forward = CoreForward
	}
	T := c.Runoff.T
	if c.TrainUntil == 0 {
		c.TrainUntil = T
	}
	switch {
	case !(c.LR > 0) || math.IsInf(c.LR, 0):
		return fmt.Errorf("calibrate: learning rate %v must be positive", c.LR)
	case c.Epochs < 0 || c.Patience < 0 || c.Warmup < 0 || c.Window < 0 || c.ValidEvery < 0:
		return fmt.Errorf("calibrate: epochs, patience, warm-up, window, validation interval must be ≥ 0")
	case !(c.Ridge >= 0) || math.IsInf(c.Ridge, 0):
		return fmt.Errorf("calibrate: ridge %v must be finite and ≥ 0", c.Ridge)
	case c.Start != nil && len(c.Start) != c.Space.Map.NumVars():
		return fmt.Errorf("calibrate: %d starting values for %d free variables", len(c.Start), c.Space.Map.NumVars())
	case c.TrainUntil < 0 || c.TrainUntil > T:
		return fmt.Errorf("calibrate: training period of %d steps outside the %d runoff steps", c.TrainUntil, T)
	case c.Warmup >= c.TrainUntil:
		return fmt.Errorf("calibrate: the warm-up of %d steps leaves nothing of the %d training steps", c.Warmup, c.TrainUntil)
	}
	return nil
}

// CoreGradient is the default Gradient: the core's reverse mode through
// diffroute.Gradient, or RecursiveRouter.RouteGradFine with inflows.
func CoreGradient(ctx context.Context, b *Basin, p diffroute.Params, runoff *diffroute.DataTensor, in diffroute.FineFlows, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, diffroute.Params, error) {
	o := b.Options
	o.Params = p
	var (
		y   *diffroute.DataTensor
		l   float64
		g   *diffroute.Gradients
		err error
	)
	if in != nil {
		rr, err := diffroute.NewRecursiveRouter(context.Background(), b.Net, o)
		if err != nil {
			return nil, 0, nil, err
		}
		y, l, g, err = rr.RouteGradFine(ctx, runoff, in, loss)
	} else {
		y, l, g, err = diffroute.Gradient(ctx, b.Net, o, runoff, loss)
	}
	if err != nil {
		return nil, 0, nil, err
	}
	return y, l, g.Params, nil
}

// keptGradient is CoreGradient for one calibration run: with the
// recursive method and no fine inflows it routes into tensors it keeps from
// one gradient to the next (RouteGradTo), so that an iteration allocates no
// series (fresh pages and garbage cost a quarter of a gradient on large
// basins). The discharge and gradients it returns are overwritten by its
// next call.
func keptGradient() Gradient {
	var y *diffroute.DataTensor
	var dst *diffroute.Gradients
	return func(ctx context.Context, b *Basin, p diffroute.Params, runoff *diffroute.DataTensor, in diffroute.FineFlows, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, diffroute.Params, error) {
		if in != nil {
			return CoreGradient(ctx, b, p, runoff, in, loss)
		}
		o := b.Options
		o.Params = p
		rt, err := diffroute.NewRouter(ctx, b.Net, o)
		if err != nil {
			return nil, 0, nil, err
		}
		rr, ok := rt.(*diffroute.RecursiveRouter)
		if !ok {
			d, ok := rt.(diffroute.Differentiable)
			if !ok {
				return nil, 0, nil, fmt.Errorf("calibrate: the %s method has no gradient", o.Method)
			}
			y, l, g, err := d.RouteGrad(ctx, runoff, loss)
			if err != nil {
				return nil, 0, nil, err
			}
			return y, l, g.Params, nil
		}
		if y == nil || y.B != runoff.B || y.T != runoff.T || dst.Runoff.N != runoff.N || !slices.Equal(dst.Runoff.IDs, runoff.IDs) {
			y = diffroute.NewDataTensor(runoff.B, b.Net.IDs(), runoff.T)
			dst = &diffroute.Gradients{Runoff: diffroute.NewDataTensor(runoff.B, runoff.IDs, runoff.T)}
		}
		l, err := rr.RouteGradTo(ctx, y, dst, runoff, loss)
		if err != nil {
			return nil, 0, nil, err
		}
		return y, l, dst.Params, nil
	}
}

// CoreForward is the default Forward.
func CoreForward(ctx context.Context, b *Basin, p diffroute.Params, runoff *diffroute.DataTensor, in diffroute.FineFlows) (*diffroute.DataTensor, error) {
	o := b.Options
	o.Params = p
	if in != nil {
		rr, err := diffroute.NewRecursiveRouter(context.Background(), b.Net, o)
		if err != nil {
			return nil, err
		}
		return rr.RouteFine(ctx, runoff, in, nil)
	}
	rt, err := diffroute.NewRouter(ctx, b.Net, o)
	if err != nil {
		return nil, err
	}
	return rt.Route(ctx, runoff)
}

// sliceFine cuts fine inflows to runoff steps [t0, t1) of f sub-steps each
// (single batch member).
func sliceFine(in diffroute.FineFlows, t0, t1, f int) diffroute.FineFlows {
	if in == nil {
		return nil
	}
	out := make(diffroute.FineFlows, len(in))
	for k, v := range in {
		out[k] = v[t0*f : t1*f]
	}
	return out
}

func subSteps(o diffroute.Options) int { return max(o.SubSteps, 1) }

// Run calibrates: it starts from the Space's fit of the prior parameters
// (Options.Params) and minimises the loss over the training period.
func Run(ctx context.Context, c Config) (*Result, error) {
	if err := c.defaults(); err != nil {
		return nil, err
	}
	if err := c.Gauges.Check(c.Net, c.Runoff.T); err != nil {
		return nil, err
	}
	z0 := c.Start
	if z0 == nil {
		var err error
		if z0, err = c.Space.Init(c.Options.Params, c.Net); err != nil {
			return nil, err
		}
	}
	c.Start = z0 // the ridge's centre
	res := &Result{Prior: append([]float64(nil), z0...), Best: -1}
	z := append([]float64(nil), z0...)
	best := append([]float64(nil), z0...)
	bestValid := math.Inf(1)
	var err error
	hasValid := c.Valid != nil || c.TrainUntil < c.Runoff.T
	if hasValid {
		if bestValid, err = c.validate(ctx, z); err != nil {
			return nil, err
		}
	}
	sinceBest := 0
	start := time.Now()
	// record validates when due and reports whether to stop.
	record := func(it int, zz []float64, train float64) (bool, error) {
		e := Epoch{Epoch: it, Train: train, Valid: math.NaN()}
		stop := false
		if hasValid && (it%c.ValidEvery == 0 || it == c.Epochs) {
			v, err := c.validate(ctx, zz)
			if err != nil {
				return true, err
			}
			e.Valid = v
			if v < bestValid {
				bestValid, sinceBest = v, 0
				copy(best, zz)
				res.Best = len(res.History)
			} else if sinceBest++; c.Patience > 0 && sinceBest >= c.Patience {
				stop = true
				res.Stopped = fmt.Sprintf("early stop: no better validation loss in %d validations", c.Patience)
			}
		}
		e.Elapsed = time.Since(start)
		res.History = append(res.History, e)
		if c.Progress != nil {
			c.Progress(e)
		}
		return stop, ctx.Err()
	}
	switch c.Optimizer {
	case "adam":
		rng := rand.New(rand.NewPCG(c.Seed, 0xada))
		opt := &Adam{LR: c.LR}
		for it := 1; it <= c.Epochs; it++ {
			t0, t1 := c.window(rng)
			l, g, err := c.lossGrad(ctx, z, t0, t1)
			if err != nil {
				return nil, err
			}
			opt.Step(z, g)
			stop, err := record(it, z, l)
			if err != nil {
				return nil, err
			}
			if stop {
				break
			}
		}
	case "lbfgs":
		zz, err := lbfgs(func(z, grad []float64) (float64, error) {
			l, g, err := c.lossGrad(ctx, z, 0, c.TrainUntil)
			copy(grad, g)
			return l, err
		}, z, c.Epochs, func(it int, zz []float64, f float64) (bool, error) {
			return record(it, zz, f)
		})
		if err != nil {
			return nil, err
		}
		copy(z, zz)
	}
	if res.Stopped == "" {
		res.Stopped = fmt.Sprintf("%d iterations", len(res.History))
	}
	if !hasValid {
		copy(best, z)
		res.Best = len(res.History) - 1
	}
	res.Z = best
	res.Params = c.Space.Params(best)
	return res, nil
}

// window draws the routed steps [t0, t1) of one Adam iteration: Warmup
// steps then Window loss steps, inside the training period.
func (c *Config) window(rng *rand.Rand) (int, int) {
	n := c.Warmup + c.Window
	if c.Window == 0 || n >= c.TrainUntil {
		return 0, c.TrainUntil
	}
	t0 := rng.IntN(c.TrainUntil - n + 1)
	return t0, t0 + n
}

// lossGrad routes steps [t0, t1) with parameters z and returns the loss
// and ∂L/∂z.
func (c *Config) lossGrad(ctx context.Context, z []float64, t0, t1 int) (float64, []float64, error) {
	p := c.Space.Params(z)
	x := c.Runoff
	if t0 != 0 || t1 != x.T {
		x = x.SliceTime(t0, t1)
	}
	in := c.Inflow
	if in != nil && (t0 != 0 || t1 != c.Runoff.T) {
		in = sliceFine(in, t0, t1, subSteps(c.Options))
	}
	_, l, gp, err := c.Gradient(ctx, &c.Basin, p, x, in, c.Gauges.LossFunc(c.Loss, Window{Start: t0, Warmup: c.Warmup}))
	if err != nil {
		return 0, nil, err
	}
	if math.IsNaN(l) || math.IsInf(l, 0) {
		return 0, nil, fmt.Errorf("calibrate: the loss is %v", l)
	}
	g := c.Space.Grad(z, gp)
	if c.Ridge > 0 && len(z) > 0 {
		w := c.Ridge / float64(len(z))
		for k, v := range z {
			d := v - c.Start[k]
			l += w * d * d
			g[k] += 2 * w * d
		}
	}
	return l, g, nil
}

// validate returns the validation loss of free variables z.
func (c *Config) validate(ctx context.Context, z []float64) (float64, error) {
	if c.Valid != nil {
		v := c.Valid
		y, err := c.Forward(ctx, v, v.Space.Params(z), v.Runoff, v.Inflow)
		if err != nil {
			return 0, err
		}
		return v.Gauges.Eval(c.Loss, Window{Warmup: c.Warmup}, y)
	}
	y, err := c.Forward(ctx, &c.Basin, c.Space.Params(z), c.Runoff, c.Inflow)
	if err != nil {
		return 0, err
	}
	return c.Gauges.Eval(c.Loss, Window{Warmup: c.TrainUntil}, y)
}
