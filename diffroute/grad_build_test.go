package diffroute

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// pairTaps64 are a kernel's taps in float64, as the build forms them before
// storing them in float32: pair (d, s) → taps.
type pairTaps64 map[[2]int][]float64

// kernelTaps64 recomputes every path kernel of kr in float64 by the walk
// the build's adjoint uses.
func kernelTaps64(t testing.TB, kr *KernelRouter) pairTaps64 {
	t.Helper()
	ctx := context.Background()
	if kr.td != nil { // the time-domain build's walk
		pm := pairTaps64{}
		wt := kr.newTDWorker()
		for _, s32 := range kr.bs.Order {
			s := int(s32)
			boxed := kr.tdSource(wt, s)
			for d := s; d >= 0; d = kr.net.Down(d) {
				if d != s {
					filterRuns(wt.g, kr.td.reach(d), false)
				}
				kr.coarsenTD(wt, boxed)
				K := append([]float64(nil), wt.kw.K...)
				if _, err := kr.normalised(K, d, s); err != nil {
					t.Fatal(err)
				}
				pm[[2]int{d, s}] = K
			}
		}
		return pm
	}
	Pc, err := kr.clampedSpectra(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan [][]float64, kr.net.Len()*8)
	newState := func() *adjWorker { return &adjWorker{kernelWorker: kr.newWorker()} }
	pm := map[[2]int][]float64{}
	done := make(chan struct{})
	go func() {
		for v := range out {
			pm[[2]int{int(v[0][0]), int(v[0][1])}] = v[1]
		}
		close(done)
	}()
	err = kr.pairWalk(ctx, Pc, newState, func(wk *adjWorker, d, s, ps, m int, boxed bool) error {
		K := append([]float64(nil), wk.K...)
		if _, err := kr.normalised(K, d, s); err != nil {
			return err
		}
		out <- [][]float64{{float64(d), float64(s)}, K}
		return nil
	}, nil)
	close(out)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if kr.opts.ExcludeSelf { // self pairs: a unit impulse, coarsened as the build does
		wk := kr.newWorker()
		for s := 0; s < kr.net.Len(); s++ {
			clear(wk.h)
			wk.h[0] = 1
			kr.coarsen(wk, false)
			K := append([]float64(nil), wk.K...)
			if _, err := kr.normalised(K, s, s); err != nil {
				t.Fatal(err)
			}
			pm[[2]int{s, s}] = K
		}
	}
	return pm
}

// forward64 applies float64 taps to network-order runoff lat [b][i][t].
func (pm pairTaps64) forward64(n, B, T int, lat []float64) []float64 {
	y := make([]float64, B*n*T)
	keys := slices.Collect(maps.Keys(pm)) // a fixed order: the same rounding in every run
	slices.SortFunc(keys, func(a, b [2]int) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
	for _, ds := range keys {
		K := pm[ds]
		d, s := ds[0], ds[1]
		for b := 0; b < B; b++ {
			xs := lat[(b*n+s)*T : (b*n+s+1)*T]
			yd := y[(b*n+d)*T : (b*n+d+1)*T]
			for t := range yd {
				for k := 0; k < len(K) && k <= t; k++ {
					yd[t] += K[k] * xs[t-k]
				}
			}
		}
	}
	return y
}

// wantTDBuild says whether options o build their kernel in the time domain.
func wantTDBuild(o Options, force bool) bool {
	return !force && o.Compat == "" && (o.IRF == "muskingum" || o.IRF == "linear_storage" || (o.IRF == "nash_cascade" && o.Params["n"] == nil))
}

// The kernel method's parameter gradients through the FFT build (ReLU,
// renormalisation, excluded self pairs, wrap-around: the build's adjoint)
// against central differences of the kernel method's own discharge in
// float64: random networks with three
// outlets in shuffled file order, batch 2, every parameter along a random
// direction and for single reaches.
func TestKernelBuildAdjointMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	ctx := context.Background()
	type tc struct {
		o     Options
		irf   string // for the random parameters
		force bool   // FFT build for an IRF with sections (kernelForceFFT)
		// step of the differences: 1e-5 by default, small enough not to
		// cross ReLU's kinks, large enough that the float64 rounding of the
		// taps stays below 1e-6 of the result (5e-5 for the smooth, kink-free
		// gamma kernel, whose rounding noise is larger). The rapid lateral
		// rule is checked with f = 1: for f > 1 its step response's spectrum
		// has exact zeros (a box of f ones), where the ε floor takes the
		// phase of rounding noise, so the forward taps themselves move by
		// ~ε/M in no smooth way and differences cannot resolve 1e-6.
		h float64
	}
	cases := []tc{
		{o: Options{IRF: "muskingum", SubSteps: 3, MaxDelay: 8, Compat: CompatDiffRoute}},
		{o: Options{IRF: "muskingum", SubSteps: 2, MaxDelay: 7, Compat: CompatDiffRoute, ExcludeSelf: true, Sampling: SampleLast}},
		{o: Options{IRF: "hayami", SubSteps: 2, MaxDelay: 8, Compat: CompatDiffRoute}},
		{o: Options{IRF: "nash_cascade", SubSteps: 2, MaxDelay: 9, Compat: CompatDiffRoute, ExcludeSelf: true}},
		{o: Options{IRF: "nash_cascade", SubSteps: 2, MaxDelay: 9, Compat: CompatDiffRoute}, irf: "nash_fractional"},
		// rapid lateral (the source's boxed step response), start averaging:
		{o: Options{IRF: "muskingum", SubSteps: 1, MaxDelay: 8, Method: Kernel, ReLU: true, Normalize: true}, force: true},
		{o: Options{IRF: "linear_storage", SubSteps: 3, MaxDelay: 6, Method: Kernel, ExcludeSelf: true, Lateral: LateralLTI}, force: true},
		// convolution IRFs: always an FFT build, whose wrap-around and ε
		// floor the recursion does not have
		{o: Options{IRF: "hayami", SubSteps: 2, MaxDelay: 6, Method: Kernel}},
		{o: Options{IRF: "nash_gamma", SubSteps: 3, MaxDelay: 6, Method: Kernel, Average: AverageEnd, Sampling: SampleLast}, h: 5e-5},
		{o: Options{IRF: "nash_gamma", SubSteps: 2, MaxDelay: 8, Compat: CompatDiffRoute}},
		// time-domain builds (IRFs with a recursive form, no Compat)
		{o: Options{IRF: "muskingum", SubSteps: 3, MaxDelay: 8, Method: Kernel, ReLU: true, Normalize: true}},
		{o: Options{IRF: "muskingum", SubSteps: 2, MaxDelay: 7, Method: Kernel, ExcludeSelf: true, Sampling: SampleLast}},
		{o: Options{IRF: "linear_storage", SubSteps: 2, MaxDelay: 6, Method: Kernel, ReLU: true, Lateral: LateralLTI, Average: AverageEnd}},
		{o: Options{IRF: "nash_cascade", SubSteps: 3, MaxDelay: 8, Method: Kernel, ExcludeSelf: true, Normalize: true, Lateral: LateralLTI}},
		{o: Options{IRF: "muskingum", SubSteps: 2, MaxDelay: 8, Method: Kernel, ExcludeSelf: true, ReLU: true}},
	}
	for _, c := range cases {
		func() {
			if c.force {
				kernelForceFFT = true
				defer func() { kernelForceFFT = false }()
			}
			irf := c.irf
			if irf == "" {
				irf = c.o.IRF
			}
			const B, T = 2, 14
			fx := newGradFixture(t, rng, gradCase{irf: irf, f: c.o.SubSteps, B: B, T: T}, 90)
			o := c.o
			ro, _ := o.Resolved()
			label := fmt.Sprintf("%s/compat=%q/relu=%v/norm=%v/exclude=%v/%s/%s/%s/f%d/forceFFT=%v/%s", ro.IRF, ro.Compat, ro.ReLU, ro.Normalize, ro.ExcludeSelf, ro.Lateral, ro.Average, ro.Sampling, ro.SubSteps, c.force, map[bool]string{true: "time-domain", false: "FFT"}[wantTDBuild(c.o, c.force)])
			o.Params, o.Workers = fx.opts.Params, 2
			n := fx.net.Len()
			lat := fx.lat(t)
			build := func(p Params) (*KernelRouter, pairTaps64) {
				oo := o
				oo.Params = p
				kr, err := NewKernelRouter(ctx, fx.net, oo)
				if err != nil {
					t.Fatal(err)
				}
				return kr, kernelTaps64(t, kr)
			}
			kr, pm := build(o.Params)
			if wantTD := wantTDBuild(o, c.force); (kr.td != nil) != wantTD {
				t.Fatalf("%s: time-domain build %v", label, kr.td != nil)
			}
			// The float64 taps are the kernel's, to float32 rounding.
			coo := kr.COO()
			for pi := 0; pi < len(coo.Coords)/2; pi++ {
				K := pm[[2]int{int(coo.Coords[2*pi]), int(coo.Coords[2*pi+1])}]
				top := 1e-30
				for _, v := range K {
					top = max(top, math.Abs(v))
				}
				for q, v := range coo.Vals[pi*coo.Taps : (pi+1)*coo.Taps] {
					if math.Abs(float64(v)-K[q]) > 1e-6*top {
						t.Fatalf("%s: pair %v tap %d: build %v, float64 walk %v", label, coo.Coords[2*pi:2*pi+2], q, v, K[q])
					}
				}
			}
			if len(pm) != len(coo.Coords)/2 {
				t.Fatalf("%s: %d pairs in the walk, %d in the kernel", label, len(pm), len(coo.Coords)/2)
			}
			y := pm.forward64(n, B, T, lat)
			gy := NewDataTensor(B, fx.net.IDs(), T)
			for k, v := range y {
				gy.Data[k] = float32(fx.w[k] + fx.c[k]*v)
			}
			// ∂L/∂y as the adjoint sees it (float32): the loss's weights are
			// rounded the same way for the differences.
			w := make([]float64, len(y))
			for k := range w {
				w[k] = float64(gy.Data[k]) - fx.c[k]*y[k]
			}
			fx.w = w
			gr, err := kr.Backward(ctx, fx.x, gy)
			if err != nil {
				t.Fatal(err)
			}
			// The same through the tap gradient a device would hand over.
			dK, err := kr.KernelTapGrad(ctx, fx.x, gy)
			if err != nil {
				t.Fatal(err)
			}
			gt, err := kr.BackwardParamsFromTaps(ctx, dK)
			if err != nil {
				t.Fatal(err)
			}
			irfd, _ := LookupIRF(o.IRF)
			for _, name := range irfd.GradParams {
				for i, v := range gt.Params[name] {
					if relErr(v, gr.Params[name][i]) > 1e-12 {
						t.Fatalf("%s: ∂L/∂%s of reach %d from KernelTapGrad %g, Backward %g", label, name, i, v, gr.Params[name][i])
					}
				}
			}
			worst := 0.0
			defer func() { t.Logf("%s: worst relative error %.2g", label, worst) }()
			for _, name := range irfd.GradParams {
				g := gr.Params[name]
				if len(g) != n {
					t.Fatalf("%s: no gradient for %s", label, name)
				}
				scale := 0.0 // Σ_i |∂L/∂θ_i·θ_i|: the size of a one-reach derivative's noise floor
				for i, v := range g {
					scale += math.Abs(v * o.Params[name][i])
				}
				check := func(what string, dir []float64) {
					at := func(h float64) []float64 {
						p := Params{}
						for k, v := range o.Params {
							p[k] = v
						}
						v := append([]float64(nil), o.Params[name]...)
						for k := range v {
							v[k] += h * dir[k]
						}
						p[name] = v
						_, pm := build(p)
						return pm.forward64(n, B, T, lat)
					}
					h := cmp.Or(c.h, 1e-5) // fourth-order differences
					num := (8*fx.diff(at(h), at(-h), h) - fx.diff(at(2*h), at(-2*h), 2*h)) / 7
					ana := dot(g, dir)
					e := math.Abs(ana-num) / max(math.Abs(ana), math.Abs(num), 1e-6*scale)
					worst = max(worst, e)
					if e > 1e-6 {
						t.Errorf("%s: ∂L/∂%s %s: adjoint %.12g, central difference %.12g (rel. error %.2g)", label, name, what, ana, num, e)
					}
				}
				dir := make([]float64, n)
				for k := range dir {
					dir[k] = (rng.Float64() - 0.5) * o.Params[name][k]
				}
				check("along a random direction", dir)
				// single reaches: a headwater, a mid-network reach, an outlet
				for _, i := range []int{int(kr.bs.Order[n-1]), int(kr.bs.Order[n/2]), int(kr.bs.Order[0])} {
					one := make([]float64, n)
					one[i] = o.Params[name][i]
					check("of one reach", one)
				}
			}
		}()
	}
}
