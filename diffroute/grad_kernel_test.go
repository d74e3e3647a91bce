package diffroute

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// refKernelForward applies the kernel's float32 taps in float64, pair by
// pair: the kernel method's discharge without its float32 accumulation.
func refKernelForward(kr *KernelRouter, lat []float64, B, T int) []float64 {
	c := kr.COO()
	n := kr.net.Len()
	y := make([]float64, B*n*T)
	for pi := 0; pi < len(c.Coords)/2; pi++ {
		d, s := int(c.Coords[2*pi]), int(c.Coords[2*pi+1])
		K := c.Vals[pi*c.Taps : (pi+1)*c.Taps]
		for b := 0; b < B; b++ {
			xs := lat[(b*n+s)*T : (b*n+s+1)*T]
			yd := y[(b*n+d)*T : (b*n+d+1)*T]
			for t := range yd {
				for k := 0; k < len(K) && k <= t; k++ {
					yd[t] += float64(K[k]) * xs[t-k]
				}
			}
		}
	}
	return y
}

// The transposed convolution is the gradient of the kernel method's
// discharge with respect to runoff, for every kernel variant, ReLU and
// renormalisation included.
func TestKernelBackwardRunoffMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	ctx := context.Background()
	for _, o := range []Options{
		{IRF: "muskingum", SubSteps: 3, MaxDelay: 12},
		{IRF: "muskingum", SubSteps: 2, MaxDelay: 10, Lateral: LateralLTI, Average: AverageEnd, Sampling: SampleLast},
		{IRF: "hayami", SubSteps: 2, MaxDelay: 8, Compat: "diffroute"},
		{IRF: "nash_cascade", SubSteps: 2, MaxDelay: 9, ExcludeSelf: true, BlockSize: 4},
	} {
		fx := newGradFixture(t, rng, gradCase{irf: o.IRF, lat: o.Lateral, avg: o.Average, smp: o.Sampling, f: o.SubSteps, B: 2, T: 15}, 150)
		o.Params = fx.opts.Params
		kr, err := NewKernelRouter(ctx, fx.net, o)
		if err != nil {
			t.Fatal(err)
		}
		lat := fx.lat(t)
		y64 := refKernelForward(kr, lat, 2, 15)
		// The reference is the kernel method's discharge.
		y, err := kr.Route(ctx, fx.x)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range y.Data {
			if relErr(float64(v), y64[k]) > 1e-4 && math.Abs(float64(v)-y64[k]) > 1e-5 {
				t.Fatalf("%+v: reference forward %v, Route %v at %d", o, y64[k], v, k)
			}
		}
		gy := NewDataTensor(y.B, y.IDs, y.T)
		for k, v := range y64 {
			gy.Data[k] = float32(fx.w[k] + fx.c[k]*v)
		}
		gr, err := kr.Backward(ctx, fx.x, gy)
		if err != nil {
			t.Fatal(err)
		}
		// network-order view of the runoff gradient
		var e *gradEngine
		withTiles(false, 0, func() { e, _ = newGradEngine(fx.net, fx.opts, false) }) // the general engine's prepare fills lat
		gview, _, _ := e.prepare(gr.Runoff, nil)
		v := make([]float64, len(lat))
		for k := range v {
			v[k] = rng.NormFloat64()
		}
		h := 1e-2
		lp, lm := append([]float64(nil), lat...), append([]float64(nil), lat...)
		for k := range v {
			lp[k] += h * v[k]
			lm[k] -= h * v[k]
		}
		num := fx.diff(refKernelForward(kr, lp, 2, 15), refKernelForward(kr, lm, 2, 15), h)
		if e := relErr(dot(gview.lat, v), num); e > 1e-6 {
			t.Errorf("%+v: transposed convolution %.10g, central difference %.10g (rel. error %.2g)", o, dot(gview.lat, v), num, e)
		}
		if o.Compat == "" && !o.ExcludeSelf && len(gr.Params) == 0 {
			t.Errorf("%+v: no parameter gradients", o)
		}
	}
}

// The kernel method's parameter gradients (from the recursive adjoint) are
// the derivative of its own discharge where MaxDelay covers the responses:
// checked against differences of kernel routes (float32 taps, so the step
// is large and the tolerance that of float32).
func TestKernelParamGradMatchesKernelDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 4))
	ctx := context.Background()
	for _, c := range []gradCase{
		{irf: "muskingum", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 3, B: 1, T: 20, maxDelay: 40},
		{irf: "hayami", lat: LateralLTI, avg: AverageEnd, smp: SampleAvg, f: 2, B: 1, T: 20, maxDelay: 20},
	} {
		fx := newGradFixture(t, rng, c, 80)
		o := fx.opts
		o.Method = Kernel
		kr, err := NewKernelRouter(ctx, fx.net, o)
		if err != nil {
			t.Fatal(err)
		}
		loss := func(y *DataTensor) float64 {
			s := 0.0
			for k, v := range y.Data {
				s += fx.w[k]*float64(v) + 0.5*fx.c[k]*float64(v)*float64(v)
			}
			return s
		}
		_, _, gr, err := kr.RouteGrad(ctx, fx.x, func(y, gy *DataTensor) (float64, error) {
			for k, v := range y.Data {
				gy.Data[k] = float32(fx.w[k] + fx.c[k]*float64(v))
			}
			return loss(y), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		irf, _ := LookupIRF(o.IRF)
		for _, name := range irf.GradParams {
			dir := make([]float64, fx.net.Len())
			for k := range dir {
				dir[k] = (rng.Float64() - 0.5) * o.Params[name][k]
			}
			at := func(h float64) float64 {
				p := Params{}
				for k, v := range o.Params {
					p[k] = v
				}
				v := append([]float64(nil), o.Params[name]...)
				for k := range v {
					v[k] += h * dir[k]
				}
				p[name] = v
				oo := o
				oo.Params = p
				k2, err := NewKernelRouter(ctx, fx.net, oo)
				if err != nil {
					t.Fatal(err)
				}
				y, err := k2.Route(ctx, fx.x)
				if err != nil {
					t.Fatal(err)
				}
				return loss(y)
			}
			h := 2e-2
			num := (8*(at(h)-at(-h)) - (at(2*h) - at(-2*h))) / (12 * h)
			ana := dot(gr.Params[name], dir)
			if e := relErr(ana, num); e > 2e-3 {
				t.Errorf("%v: ∂L/∂%s along a direction: adjoint %.8g, kernel differences %.8g (rel. error %.2g)", c, name, ana, num, e)
			} else {
				t.Logf("%v: ∂L/∂%s rel. error %.2g", c, name, e)
			}
		}
	}
}
