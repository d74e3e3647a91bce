package diffroute

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The gradient checks compare the adjoint with central differences of the
// float64 forward pass for a loss that is not linear in the discharge:
// L = Σ w·y + ½ Σ c·y², so ∂L/∂y = w + c·y.

type gradCase struct {
	irf      string
	lat      LateralRule
	avg      Average
	smp      Sampling
	f, B, T  int
	q0       bool
	ckpt     int // CheckpointSteps
	maxDelay int
	general  bool // run the general engine, not the tiled adjoint
}

func (c gradCase) String() string {
	s := fmt.Sprintf("%s/%s/%s/%s/f%d/B%d/q0=%v/ckpt%d", c.irf, c.lat, c.avg, c.smp, c.f, c.B, c.q0, c.ckpt)
	if c.general {
		s += "/general"
	}
	return s
}

type gradFixture struct {
	net  *Network
	opts Options
	x    *DataTensor
	w, c []float64 // loss weights, network order [b][i][t]
}

func newGradFixture(t testing.TB, rng *rand.Rand, c gradCase, n int) *gradFixture {
	net := kRandomNetwork(t, rng, n, 3)
	irf := c.irf
	p := kRandomParams(rng, irf, n)
	if irf == "nash_fractional" {
		irf = "nash_cascade"
	}
	o := Options{IRF: irf, Params: p, SubSteps: c.f, Lateral: c.lat, Average: c.avg, Sampling: c.smp,
		MaxDelay: max(c.maxDelay, 1), CheckpointSteps: c.ckpt, Workers: 2}
	if c.maxDelay == 0 {
		o.MaxDelay = 6
	}
	if c.q0 {
		o.InitialQ = make([]float64, n)
		for i := range o.InitialQ {
			o.InitialQ[i] = 5 * rng.Float64()
		}
	}
	x := kRandomRunoff(rng, net, c.B, c.T)
	fx := &gradFixture{net: net, opts: o, x: x, w: make([]float64, c.B*n*c.T), c: make([]float64, c.B*n*c.T)}
	for k := range fx.w {
		fx.w[k] = rng.NormFloat64()
		fx.c[k] = 0.05 * rng.Float64()
	}
	return fx
}

// loss evaluates L on the coarse discharge of a finished forward pass.
func (fx *gradFixture) loss(y []float64) float64 {
	L := 0.0
	for k, v := range y {
		L += fx.w[k]*v + 0.5*fx.c[k]*v*v
	}
	return L
}

// diff returns (L(y⁺) − L(y⁻))/(2h), summed term by term so that the
// difference does not drown in the rounding of two large sums.
func (fx *gradFixture) diff(yp, ym []float64, h float64) float64 {
	s := 0.0
	for k := range yp {
		s += (fx.w[k] + 0.5*fx.c[k]*(yp[k]+ym[k])) * (yp[k] - ym[k])
	}
	return s / (2 * h)
}

// forward runs the float64 forward pass with the given options and lateral
// runoff (network order) and returns the discharge.
func (fx *gradFixture) forward(t testing.TB, o Options, lat []float64) []float64 {
	t.Helper()
	e, err := newGradEngine(fx.net, o, false)
	if err != nil {
		t.Fatal(err)
	}
	g := e.newRun(lat, fx.x.B, fx.x.T)
	if err := g.run(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return g.y
}

// grad runs forward and backward and returns the run holding the results.
func (fx *gradFixture) grad(t testing.TB, o Options, lat []float64) *gradRun {
	t.Helper()
	e, err := newGradEngine(fx.net, o, true)
	if err != nil {
		t.Fatal(err)
	}
	g := e.newRun(lat, fx.x.B, fx.x.T)
	err = g.run(context.Background(), func() error {
		g.gy = make([]float64, len(g.y))
		for k, v := range g.y {
			g.gy[k] = fx.w[k] + fx.c[k]*v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// lat returns the runoff in network order as float64.
func (fx *gradFixture) lat(t testing.TB) []float64 {
	rows, err := alignRunoff(fx.x, fx.net)
	if err != nil {
		t.Fatal(err)
	}
	n, T := fx.net.Len(), fx.x.T
	lat := make([]float64, fx.x.B*n*T)
	for b := 0; b < fx.x.B; b++ {
		for i, row := range rows {
			for q, v := range fx.x.Series(b, row) {
				lat[(b*n+i)*T+q] = float64(v)
			}
		}
	}
	return lat
}

func relErr(a, b float64) float64 {
	d := math.Abs(a - b)
	if d == 0 {
		return 0
	}
	return d / max(math.Abs(a), math.Abs(b), 1e-12)
}

func dot(a, b []float64) float64 {
	s := 0.0
	for k := range a {
		s += a[k] * b[k]
	}
	return s
}

// checkGrad compares the adjoint with central differences along random
// directions of runoff, initial discharge and every parameter, and for a
// few single reaches. It returns the worst relative error.
func checkGrad(t *testing.T, rng *rand.Rand, fx *gradFixture) float64 {
	t.Helper()
	lat := fx.lat(t)
	g := fx.grad(t, fx.opts, lat)
	worst := 0.0
	note := func(what string, ana, num float64) {
		e := relErr(ana, num)
		if e > worst {
			worst = e
		}
		if e > 1e-6 {
			t.Errorf("%s: adjoint %.12g, central difference %.12g (rel. error %.2g)", what, ana, num, e)
		}
	}
	// Runoff: L is quadratic in runoff, so a central difference is exact
	// up to rounding.
	v := make([]float64, len(lat))
	for k := range v {
		v[k] = rng.NormFloat64()
	}
	h := 1e-3
	lp, lm := slices.Clone(lat), slices.Clone(lat)
	for k := range v {
		lp[k] += h * v[k]
		lm[k] -= h * v[k]
	}
	note("runoff (direction)", dot(g.dx, v), fx.diff(fx.forward(t, fx.opts, lp), fx.forward(t, fx.opts, lm), h))
	// Initial discharge.
	if fx.opts.InitialQ != nil {
		v := make([]float64, len(fx.opts.InitialQ))
		for k := range v {
			v[k] = rng.NormFloat64()
		}
		op, om := fx.opts, fx.opts
		op.InitialQ, om.InitialQ = slices.Clone(fx.opts.InitialQ), slices.Clone(fx.opts.InitialQ)
		for k := range v {
			op.InitialQ[k] += h * v[k]
			om.InitialQ[k] -= h * v[k]
		}
		note("initial discharge (direction)", dot(g.dq0, v), fx.diff(fx.forward(t, op, lat), fx.forward(t, om, lat), h))
	}
	// Parameters: along a random relative direction, then single reaches.
	irf, _ := LookupIRF(fx.opts.IRF)
	for j, name := range irf.GradParams {
		base := fx.opts.Params[name]
		at := func(dir []float64, h float64) []float64 {
			o := fx.opts
			o.Params = Params{}
			for k, v := range fx.opts.Params {
				o.Params[k] = v
			}
			p := slices.Clone(base)
			for k := range p {
				p[k] += h * dir[k]
			}
			o.Params[name] = p
			return fx.forward(t, o, lat)
		}
		dir := make([]float64, len(base))
		for k := range dir {
			dir[k] = (rng.Float64() - 0.5) * base[k]
		}
		// Five-point stencil: truncation O(h⁴), so h can be large enough
		// for rounding not to matter.
		stencil := func(dir []float64, h float64) float64 {
			return (4*fx.diff(at(dir, h), at(dir, -h), h) - fx.diff(at(dir, 2*h), at(dir, -2*h), 2*h)) / 3
		}
		note(name+" (direction)", dot(g.dth[j], dir), stencil(dir, 1e-3))
		for range 3 {
			i := rng.IntN(len(base))
			one := make([]float64, len(base))
			one[i] = 1
			num := stencil(one, 1e-3*max(math.Abs(base[i]), 1e-3))
			if math.Abs(num) < 1e-8*math.Abs(fx.loss(g.y)) {
				continue // no influence worth resolving
			}
			note(fmt.Sprintf("%s of reach %d", name, fx.net.ID(i)), g.dth[j][i], num)
		}
	}
	return worst
}

func TestGradientMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(91, 7))
	var cases []gradCase
	for _, irf := range []string{"muskingum", "linear_storage", "nash_cascade", "nash_fractional", "hayami", "hayami_unshifted"} {
		for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
			for _, avg := range []Average{AverageStart, AverageEnd} {
				for _, smp := range []Sampling{SampleAvg, SampleLast} {
					cases = append(cases, gradCase{irf: irf, lat: lat, avg: avg, smp: smp, f: 3, B: 1, T: 10})
				}
			}
		}
	}
	// Sub-step 1, batches, initial discharge, checkpoints.
	cases = append(cases,
		gradCase{irf: "muskingum", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 1, B: 2, T: 14, q0: true},
		gradCase{irf: "muskingum", lat: LateralLTI, avg: AverageStart, smp: SampleLast, f: 1, B: 1, T: 9, q0: true},
		gradCase{irf: "nash_cascade", lat: LateralLTI, avg: AverageEnd, smp: SampleAvg, f: 4, B: 3, T: 8, q0: true, ckpt: 3},
		gradCase{irf: "hayami", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 2, B: 2, T: 12, q0: true, ckpt: 2},
		// windows and blocks long enough for the wide convolution kernels
		gradCase{irf: "hayami", lat: LateralLTI, avg: AverageEnd, smp: SampleAvg, f: 8, B: 1, T: 11, q0: true, maxDelay: 6},
		gradCase{irf: "hayami", lat: LateralRAPID, avg: AverageStart, smp: SampleLast, f: 24, B: 1, T: 9, q0: true, ckpt: 4, maxDelay: 4},
		gradCase{irf: "muskingum", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 5, B: 2, T: 11, q0: true, ckpt: 4},
		// the continuous Nash cascade: tau and n
		gradCase{irf: "nash_gamma", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 3, B: 2, T: 10, q0: true},
		gradCase{irf: "nash_gamma", lat: LateralLTI, avg: AverageEnd, smp: SampleLast, f: 2, B: 1, T: 12, ckpt: 4},
	)
	// Sub-steps in whole vectors: the tiled adjoint's vector kernels.
	for _, irf := range []string{"muskingum", "linear_storage", "nash_cascade"} {
		for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
			cases = append(cases,
				gradCase{irf: irf, lat: lat, avg: AverageStart, smp: SampleAvg, f: 4, B: 2, T: 10, q0: true, ckpt: 3},
				gradCase{irf: irf, lat: lat, avg: AverageEnd, smp: SampleAvg, f: 8, B: 1, T: 9},
				gradCase{irf: irf, lat: lat, avg: AverageEnd, smp: SampleLast, f: 4, B: 1, T: 11, q0: true},
				gradCase{irf: irf, lat: lat, avg: AverageStart, smp: SampleLast, f: 8, B: 2, T: 9, q0: true, ckpt: 4})
		}
	}
	// The general engine (the reference the tiled adjoint is compared with)
	// on one-section and cascade reaches.
	cases = append(cases,
		gradCase{irf: "muskingum", lat: LateralLTI, avg: AverageStart, smp: SampleAvg, f: 3, B: 2, T: 10, q0: true, ckpt: 4, general: true},
		gradCase{irf: "nash_cascade", lat: LateralRAPID, avg: AverageStart, smp: SampleLast, f: 4, B: 1, T: 9, q0: true, general: true},
		gradCase{irf: "linear_storage", lat: LateralLTI, avg: AverageEnd, smp: SampleLast, f: 1, B: 1, T: 12, q0: true, general: true})
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			n := 120
			if testing.Short() {
				n = 40
			}
			fx := newGradFixture(t, rng, c, n)
			var worst float64
			withTiles(!c.general, 0, func() {
				e, err := newGradEngine(fx.net, fx.opts, true)
				if err != nil {
					t.Fatal(err)
				}
				if sections := c.irf == "muskingum" || c.irf == "linear_storage" || c.irf == "nash_cascade"; e.tiles != (sections && !c.general) {
					t.Fatalf("tiled adjoint runs: %v", e.tiles)
				}
				worst = checkGrad(t, rng, fx)
			})
			t.Logf("worst relative error %.2g", worst)
		})
	}
}

// The float64 forward pass of the adjoint is the recursive router's: same
// discharge to float32 rounding, for every IRF and convention.
func TestGradientForwardEqualsRoute(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 17))
	ctx := context.Background()
	for _, c := range []gradCase{
		{irf: "muskingum", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 4, B: 2, T: 30, q0: true},
		{irf: "nash_fractional", lat: LateralLTI, avg: AverageEnd, smp: SampleLast, f: 3, B: 1, T: 20},
		{irf: "hayami", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 2, B: 1, T: 25, q0: true, ckpt: 7},
		{irf: "nash_cascade", lat: LateralLTI, avg: AverageStart, smp: SampleLast, f: 1, B: 3, T: 15, ckpt: 4},
	} {
		fx := newGradFixture(t, rng, c, 1500) // > 1024 reaches: parallel subtrees
		rr, err := NewRecursiveRouter(context.Background(), fx.net, fx.opts)
		if err != nil {
			t.Fatal(err)
		}
		want, err := rr.Route(ctx, fx.x)
		if err != nil {
			t.Fatal(err)
		}
		rr.Reset()
		w := NewDataTensor(want.B, want.IDs, want.T) // L = Σ w·y
		for k := range w.Data {
			w.Data[k] = float32(fx.w[k])
		}
		y, L, gr, err := rr.RouteGrad(ctx, fx.x, func(y, gy *DataTensor) (float64, error) {
			s := 0.0
			for k, v := range y.Data {
				s += float64(v) * float64(w.Data[k])
			}
			copy(gy.Data, w.Data)
			return s, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if d := stagedRelDiff(t, y, want); d > 1e-5 {
			t.Errorf("%v: gradient forward differs from Route by %.2g", c, d)
		}
		if L == 0 || gr.Params == nil || len(gr.InitialQ) != fx.net.Len() {
			t.Fatalf("%v: empty results (L = %v)", c, L)
		}
		// Backward alone gives the same gradients.
		gr2, err := rr.Backward(ctx, fx.x, w)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range gr.Params {
			for i := range v {
				if relErr(v[i], gr2.Params[name][i]) > 1e-12 {
					t.Fatalf("%v: Backward's ∂L/∂%s of reach %d is %v, RouteGrad's %v", c, name, fx.net.ID(i), gr2.Params[name][i], v[i])
				}
			}
		}
		for k, v := range gr.Runoff.Data {
			if v != gr2.Runoff.Data[k] {
				t.Fatalf("%v: Backward's runoff gradient differs at %d", c, k)
			}
		}
	}
}

// Checkpointed blocks recompute the forward pass: the gradients equal the
// whole-series ones.
func TestGradientCheckpointsEqualWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	for _, c := range []gradCase{
		{irf: "muskingum", lat: LateralLTI, avg: AverageStart, smp: SampleAvg, f: 3, B: 2, T: 17, q0: true},
		{irf: "hayami", lat: LateralRAPID, avg: AverageEnd, smp: SampleAvg, f: 2, B: 1, T: 13, maxDelay: 5},
		{irf: "nash_cascade", lat: LateralRAPID, avg: AverageStart, smp: SampleLast, f: 2, B: 2, T: 11},
	} {
		fx := newGradFixture(t, rng, c, 300)
		lat := fx.lat(t)
		whole := fx.grad(t, fx.opts, lat)
		for _, ck := range []int{1, 2, 5} {
			o := fx.opts
			o.CheckpointSteps = ck
			got := fx.grad(t, o, lat)
			worst := 0.0
			for k := range whole.dx {
				worst = max(worst, relErr(got.dx[k], whole.dx[k]))
			}
			for j := range whole.dth {
				for i := range whole.dth[j] {
					worst = max(worst, relErr(got.dth[j][i], whole.dth[j][i]))
				}
			}
			for i := range whole.dq0 {
				worst = max(worst, relErr(got.dq0[i], whole.dq0[i]))
			}
			if worst > 1e-9 {
				t.Errorf("%v: %d-step checkpoints differ from the whole series by %.2g", c, ck, worst)
			}
		}
	}
}
