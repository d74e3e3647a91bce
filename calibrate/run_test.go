package calibrate

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

// fdGradient is a Gradient by central finite differences of the forward
// routing: slow, but independent of the core's reverse mode, so the
// driver's tests check the driver alone.
func fdGradient(ctx context.Context, b *Basin, p diffroute.Params, runoff *diffroute.DataTensor, in diffroute.FineFlows, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, diffroute.Params, error) {
	eval := func(p diffroute.Params) (*diffroute.DataTensor, float64, error) {
		y, err := CoreForward(ctx, b, p, runoff, in)
		if err != nil {
			return nil, 0, err
		}
		gy := diffroute.NewDataTensor(y.B, y.IDs, y.T)
		l, err := loss(y, gy)
		return y, l, err
	}
	y, l, err := eval(p)
	if err != nil {
		return nil, 0, nil, err
	}
	g := diffroute.Params{}
	for _, name := range b.Space.Names {
		v := p[name]
		gv := make([]float64, len(v))
		for i := range v {
			old := v[i]
			h := 1e-4 * max(math.Abs(old), 1e-3)
			v[i] = old + h
			_, lp, err := eval(p)
			if err != nil {
				return nil, 0, nil, err
			}
			v[i] = old - h
			_, lm, err := eval(p)
			if err != nil {
				return nil, 0, nil, err
			}
			v[i] = old
			gv[i] = (lp - lm) / (2 * h)
		}
		g[name] = gv
	}
	return y, l, g, nil
}

// twin is a small twin experiment: a generated network, true Muskingum
// parameters, observations = routed truth at some gauges, and a prior off
// by a factor.
type twin struct {
	net    *diffroute.Network
	opts   diffroute.Options
	runoff *diffroute.DataTensor
	truth  diffroute.Params
	gauges *Gauges
}

func newTwin(t *testing.T, n, steps, f int, seed uint64) *twin {
	t.Helper()
	net := diffroute.SyntheticNetwork(n, seed)
	rng := rand.New(rand.NewPCG(seed, 77))
	truth := diffroute.Params{"k": make([]float64, n), "x": make([]float64, n)}
	for i := range n {
		truth["k"][i] = 0.2 + 0.6*rng.Float64() // runoff steps
		truth["x"][i] = 0.1 + 0.2*rng.Float64()
	}
	opts := diffroute.Options{SubSteps: f, Params: truth}
	runoff := diffroute.SyntheticRunoff(net, 1, steps, seed)
	q, err := diffroute.NewRouter(context.Background(), net, opts)
	if err != nil {
		t.Fatal(err)
	}
	y, err := q.Route(context.Background(), runoff)
	if err != nil {
		t.Fatal(err)
	}
	// Gauges at the largest outlets' reaches and a few inner reaches.
	g := &Gauges{}
	for _, o := range net.Outlets() {
		if net.Size(o) >= 3 {
			g.IDs = append(g.IDs, net.ID(o))
		}
	}
	for k, id := range g.IDs {
		i, _ := net.Index(id)
		s := y.Series(0, i)
		obs := make([]float64, len(s))
		for t, v := range s {
			obs[t] = float64(v)
			if (t+k)%11 == 0 {
				obs[t] = math.NaN() // missing observations are ignored
			}
		}
		g.Obs = append(g.Obs, obs)
	}
	return &twin{net: net, opts: opts, runoff: runoff, truth: truth, gauges: g}
}

func (tw *twin) prior(scale float64) diffroute.Params {
	p := diffroute.Params{"k": make([]float64, tw.net.Len()), "x": make([]float64, tw.net.Len())}
	for i := range p["k"] {
		p["k"][i] = 0.45 * scale
		p["x"][i] = 0.2
	}
	return p
}

func (tw *twin) config(t *testing.T, m Map, prior diffroute.Params) Config {
	sp, err := NewSpace([]string{"k", "x"}, []Transform{Sigmoid{0.05, 2}, Sigmoid{0, 0.45}}, m, tw.net.Len(), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := tw.opts
	o.Params = prior
	return Config{Basin: Basin{Net: tw.net, Options: o, Runoff: tw.runoff, Gauges: tw.gauges, Space: sp}, Gradient: fdGradient}
}

// Calibration by Adam and by L-BFGS lowers the loss of a wrong prior well
// below its start, with the driver's own gradients (finite differences
// here, so the driver is tested apart from the core's reverse mode).
func TestRunTwinSmall(t *testing.T) {
	tw := newTwin(t, 12, 120, 2, 3)
	for _, opt := range []string{"adam", "lbfgs"} {
		c := tw.config(t, PerReach{P: 2, N: tw.net.Len()}, tw.prior(2.5))
		c.Optimizer, c.Epochs, c.Warmup, c.TrainUntil, c.LR = opt, 60, 10, 90, 0.1
		var first float64
		c.Progress = func(e Epoch) {
			if e.Epoch == 1 {
				first = e.Train
			}
		}
		res, err := Run(context.Background(), c)
		if err != nil {
			t.Fatalf("%s: %v", opt, err)
		}
		last := res.History[len(res.History)-1]
		kept := res.History[max(res.Best, 0)]
		t.Logf("%s: train loss %.4g → %.4g, validation %.4g (kept epoch %d, %s)", opt, first, last.Train, kept.Valid, kept.Epoch, res.Stopped)
		if !(last.Train < 0.05*first) || !(kept.Valid < 0.01) {
			t.Errorf("%s: loss %v → %v, validation %v", opt, first, last.Train, kept.Valid)
		}
		if len(res.Params["k"]) != tw.net.Len() {
			t.Errorf("%s: parameters for %d reaches", opt, len(res.Params["k"]))
		}
	}
}

// The whole chain with the core's reverse mode (routing, loss over gauges,
// transforms, map) against central differences of the loss in the free
// variables. Discharge is float32, so the differences are taken with a
// larger step and compared at 1e-3.
func TestCoreGradientChain(t *testing.T) {
	tw := newTwin(t, 10, 80, 3, 5)
	rng := rand.New(rand.NewPCG(1, 1))
	attrs := &Attributes{Names: []string{"a", "b"}}
	for range tw.net.Len() {
		attrs.Values = append(attrs.Values, []float64{1 + rng.Float64(), rng.NormFloat64()})
	}
	st, err := FitStandardization(attrs)
	if err != nil {
		t.Fatal(err)
	}
	x, err := st.Apply(attrs)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []Map{PerReach{P: 2, N: tw.net.Len()}, &MLP{P: 2, H: 3, Attr: x, Seed: 2}} {
		for _, l := range Losses {
			c := tw.config(t, m, tw.prior(1.7))
			c.Loss, c.Warmup = l, 5
			if err := c.defaults(); err != nil {
				t.Fatal(err)
			}
			c.Gradient = CoreGradient
			z, err := c.Space.Init(c.Options.Params, tw.net)
			if err != nil {
				t.Fatal(err)
			}
			_, g, err := c.lossGrad(context.Background(), z, 0, tw.runoff.T)
			if err != nil {
				t.Fatal(err)
			}
			f := func(z []float64) float64 {
				y, err := CoreForward(context.Background(), &c.Basin, c.Space.Params(z), tw.runoff, nil)
				if err != nil {
					t.Fatal(err)
				}
				v, err := c.Gauges.Eval(l, Window{Warmup: c.Warmup}, y)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
			if err := checkGrad(f, z, g, 1000, 2e-3); err != nil {
				t.Errorf("%s, %s: %v", m.Kind(), l, err)
			}
		}
	}
}

// Adam on random windows stays inside the training period, and early
// stopping ends a run whose validation loss stops improving, keeping the
// best iteration's variables.
func TestRunWindowsAndEarlyStopping(t *testing.T) {
	tw := newTwin(t, 12, 120, 2, 3)
	c := tw.config(t, PerReach{P: 2, N: tw.net.Len()}, tw.prior(2.5))
	c.Optimizer, c.Epochs, c.Warmup, c.TrainUntil, c.Window, c.LR, c.Patience = "adam", 400, 10, 90, 30, 0.3, 3
	var spans [][2]int
	grad := c.Gradient
	c.Gradient = func(ctx context.Context, b *Basin, p diffroute.Params, x *diffroute.DataTensor, in diffroute.FineFlows, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, diffroute.Params, error) {
		spans = append(spans, [2]int{x.T, len(x.Times)})
		return grad(ctx, b, p, x, in, loss)
	}
	res, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range spans {
		if s[0] != 40 {
			t.Fatalf("window of %d steps, want warm-up 10 + 30", s[0])
		}
	}
	if len(res.History) >= 400 || !strings.Contains(res.Stopped, "early stop") {
		t.Fatalf("ran %d iterations: %s", len(res.History), res.Stopped)
	}
	best := res.History[res.Best].Valid
	for _, e := range res.History {
		if e.Valid < best {
			t.Fatalf("kept validation loss %v, but epoch %d had %v", best, e.Epoch, e.Valid)
		}
	}
	if got := c.Space.Params(res.Z); got["k"][0] != res.Params["k"][0] {
		t.Error("Params do not belong to Z")
	}
}

// The ridge term's gradient joins the chain's: lossGrad with a ridge
// against central differences of the NSE loss plus Ridge·mean((z − z₀)²),
// written out here.
func TestRidgeGradient(t *testing.T) {
	tw := newTwin(t, 10, 80, 3, 5)
	c := tw.config(t, PerReach{P: 2, N: tw.net.Len()}, tw.prior(1.7))
	c.Warmup, c.Ridge, c.Gradient = 5, 0.3, CoreGradient
	if err := c.defaults(); err != nil {
		t.Fatal(err)
	}
	z0, err := c.Space.Init(c.Options.Params, tw.net)
	if err != nil {
		t.Fatal(err)
	}
	c.Start = z0
	z := slices.Clone(z0)
	rng := rand.New(rand.NewPCG(4, 4))
	for k := range z {
		z[k] += 0.3 * rng.NormFloat64()
	}
	_, g, err := c.lossGrad(context.Background(), z, 0, tw.runoff.T)
	if err != nil {
		t.Fatal(err)
	}
	f := func(z []float64) float64 {
		y, err := CoreForward(context.Background(), &c.Basin, c.Space.Params(z), tw.runoff, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Gauges.Eval(NSE, Window{Warmup: c.Warmup}, y)
		if err != nil {
			t.Fatal(err)
		}
		for k := range z {
			v += c.Ridge * (z[k] - z0[k]) * (z[k] - z0[k]) / float64(len(z))
		}
		return v
	}
	if err := checkGrad(f, z, g, 1000, 2e-3); err != nil {
		t.Error(err)
	}
}

// The default Gradient (the core's, into tensors kept from one iteration
// to the next) calibrates exactly as CoreGradient does, window by window
// (Adam) and over the whole period (L-BFGS), and returns CoreGradient's
// loss and gradients.
func TestDefaultGradientEqualsCoreGradient(t *testing.T) {
	tw := newTwin(t, 12, 120, 2, 3)
	for _, opt := range []string{"adam", "lbfgs"} {
		run := func(g Gradient) *Result {
			c := tw.config(t, PerReach{P: 2, N: tw.net.Len()}, tw.prior(2.5))
			c.Optimizer, c.Epochs, c.Warmup, c.TrainUntil, c.Window, c.LR = opt, 12, 10, 90, 30, 0.3
			c.Gradient = g
			res, err := Run(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		core, kept := run(CoreGradient), run(nil)
		if !slices.Equal(kept.Z, core.Z) || len(kept.History) != len(core.History) {
			t.Fatalf("%s: the default gradient calibrated to %v, CoreGradient to %v", opt, kept.Z, core.Z)
		}
		for k := range core.History {
			if kept.History[k].Train != core.History[k].Train {
				t.Fatalf("%s: iteration %d: training loss %v, CoreGradient's %v", opt, k, kept.History[k].Train, core.History[k].Train)
			}
		}
	}
	// Called directly, twice into the same tensors: CoreGradient's results.
	c := tw.config(t, PerReach{P: 2, N: tw.net.Len()}, tw.prior(1))
	g := keptGradient()
	loss := c.Gauges.LossFunc(NSE, Window{})
	for _, scale := range []float64{1, 1.7} {
		p := tw.prior(scale)
		_, l, gp, err := g(context.Background(), &c.Basin, p, tw.runoff, nil, loss)
		if err != nil {
			t.Fatal(err)
		}
		_, lc, gc, err := CoreGradient(context.Background(), &c.Basin, p, tw.runoff, nil, loss)
		if err != nil {
			t.Fatal(err)
		}
		if l != lc || !slices.Equal(gp["k"], gc["k"]) || !slices.Equal(gp["x"], gc["x"]) {
			t.Errorf("prior ×%v: kept gradient %v differs from CoreGradient's %v", scale, l, lc)
		}
	}
}
