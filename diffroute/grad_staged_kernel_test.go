package diffroute

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// stagedKernelForward64 is the staged kernel run in float64, from forward
// pieces only: each cluster's kernel taps in float64 (kernelTaps64), the
// float64 rows of its transfer kernels (transferRows), and the fine outflow
// of its transfer sources from the float64 recursion over their closure, as
// StagedRouter routes them (under ExcludeSelf: lti, each reach's runoff
// entering the reach below, and each source's own runoff added unrouted); under Compat "diffroute" a source's discharge is
// added to its target's runoff. lat and the result are [b][i][t] in the full
// network's order. With stored set, the kernels' taps and transfer rows are
// the float32 values the kernel method stores (applied in float64): the run
// as computed, whose runoff derivative the adjoint gives to float64
// rounding; otherwise the float64 build, whose parameter derivative it
// gives.
func stagedKernelForward64(t testing.TB, cl *Clusters, o Options, lat []float64, B, T int, stored bool) []float64 {
	t.Helper()
	ctx := context.Background()
	n, f := cl.Net.Len(), o.SubSteps
	y := make([]float64, B*n*T)
	z := make([][]float64, len(cl.Transfers)) // fine B·T·f, or coarse B·T
	coarse := o.Compat == CompatDiffRoute
	for k := range cl.Clusters {
		c := &cl.Clusters[k]
		nc := c.Net.Len()
		latc := make([]float64, B*nc*T)
		for b := 0; b < B; b++ {
			for j, i := range c.Reaches {
				copy(latc[(b*nc+j)*T:(b*nc+j+1)*T], lat[(b*n+int(i))*T:(b*n+int(i)+1)*T])
			}
		}
		zin := map[int][]float64{}
		for _, slot := range c.In {
			v := int(cl.Transfers[slot].DstLocal)
			if coarse {
				for b := 0; b < B; b++ {
					for q := 0; q < T; q++ {
						latc[(b*nc+v)*T+q] += z[slot][b*T+q]
					}
				}
				continue
			}
			if zin[v] == nil {
				zin[v] = make([]float64, B*T*f)
			}
			for m, a := range z[slot] {
				zin[v][m] += a
			}
		}
		kr, err := NewKernelRouter(ctx, c.Net, subsetOptions(o, c.Reaches))
		if err != nil {
			t.Fatal(err)
		}
		var yc []float64
		rows := kr.transferRows
		if stored {
			yc = refKernelForward(kr, latc, B, T)
			rows = func(v int, fn func(d int, row []float64) error) error {
				ds, vals, err := kr.TransferKernel(v)
				if err != nil {
					return err
				}
				wf := len(vals) / len(ds)
				for r, d := range ds {
					if err := fn(int(d), f64(vals[r*wf:(r+1)*wf])); err != nil {
						return err
					}
				}
				return nil
			}
		} else {
			yc = kernelTaps64(t, kr).forward64(nc, B, T, latc)
		}
		for v, zz := range zin {
			err := rows(v, func(d int, row []float64) error {
				for b := 0; b < B; b++ {
					for q := 0; q < T; q++ {
						top := q*f + f - 1
						s := 0.0
						for m, a := range row[:min(len(row), top+1)] {
							s += a * zz[b*T*f+top-m]
						}
						yc[(b*nc+d)*T+q] += s
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, slot := range c.Out {
			u := int(cl.Transfers[slot].SrcLocal)
			if coarse {
				z[slot] = make([]float64, B*T)
				for b := 0; b < B; b++ {
					copy(z[slot][b*T:(b+1)*T], yc[(b*nc+u)*T:(b*nc+u+1)*T])
				}
			}
		}
		if len(c.Out) > 0 && !coarse {
			// the sources' recursion over their closure (StagedRouter.sourceRouter)
			var ids []int64
			for _, slot := range c.Out {
				ids = append(ids, c.Net.ID(int(cl.Transfers[slot].SrcLocal)))
			}
			sub, err := c.Net.UpstreamClosure(ids)
			if err != nil {
				t.Fatal(err)
			}
			snet, err := c.Net.Subnetwork(sub)
			if err != nil {
				t.Fatal(err)
			}
			global := make([]int32, len(sub))
			local := map[int]int{}
			for j, v := range sub {
				global[j], local[int(v)] = c.Reaches[v], j
			}
			so := subsetOptions(o, global)
			so.Method, so.ReLU, so.Normalize, so.ExcludeSelf, so.Compat = Recursive, false, false, false, CompatNone
			ns := snet.Len()
			lats := make([]float64, B*ns*T)
			for b := 0; b < B; b++ {
				for j, v := range sub {
					src := latc[(b*nc+int(v))*T : (b*nc+int(v)+1)*T]
					if !o.ExcludeSelf {
						copy(lats[(b*ns+j)*T:(b*ns+j+1)*T], src)
						continue
					}
					// Q_j = x_j + h_j ⊛ Σ_{u→j} Q_u: x_j enters the reach
					// below as inflow (lti), and joins the source's outflow
					// directly (below)
					if d := snet.Down(j); d >= 0 {
						for q, a := range src {
							lats[(b*ns+d)*T+q] += a
						}
					}
				}
			}
			if o.ExcludeSelf {
				so.Lateral = LateralLTI
			}
			withTiles(false, 0, func() {
				e, err := newGradEngine(snet, so, false)
				if err != nil {
					t.Fatal(err)
				}
				g := e.newRun(lats, B, T)
				for v, zz := range zin {
					if lv, ok := local[v]; ok {
						g.in[lv] = zz
					}
				}
				for _, slot := range c.Out {
					g.out[local[int(cl.Transfers[slot].SrcLocal)]] = make([]float64, B*T*f)
				}
				if err := g.run(ctx, nil); err != nil {
					t.Fatal(err)
				}
				for _, slot := range c.Out {
					u := int(cl.Transfers[slot].SrcLocal)
					z[slot] = g.out[local[u]]
					if !o.ExcludeSelf {
						continue
					}
					for b := 0; b < B; b++ {
						for q := 0; q < T; q++ {
							for m := 0; m < f; m++ {
								z[slot][(b*T+q)*f+m] += latc[(b*nc+u)*T+q]
							}
						}
					}
				}
			})
		}
		for b := 0; b < B; b++ {
			for j, i := range c.Reaches {
				copy(y[(b*n+int(i))*T:(b*n+int(i)+1)*T], yc[(b*nc+j)*T:(b*nc+j+1)*T])
			}
		}
	}
	return y
}

// stagedKernelCase is one configuration of the staged kernel gradient tests.
type stagedKernelCase struct {
	o        Options
	B, T     int
	maxPaths int64
	maxNodes int
}

func (c stagedKernelCase) String() string {
	ro, _ := c.o.Resolved()
	s := fmt.Sprintf("%s/compat=%q/%s/%s/%s/f%d/delay%d/B%d/T%d", ro.IRF, ro.Compat, ro.Lateral, ro.Average, ro.Sampling, ro.SubSteps, ro.MaxDelay, c.B, c.T)
	if ro.ExcludeSelf {
		s += "/exclude-self"
	}
	return s
}

// stagedKernelGrad runs the staged kernel gradient of cl with gy = ∂L/∂y
// given (network order); it returns ∂L/∂runoff in network order [b][i][t]
// and the parameter gradients.
func stagedKernelGrad(t *testing.T, fx *gradFixture, cl *Clusters, o Options, gy *DataTensor) ([]float64, Params) {
	t.Helper()
	sr, err := NewStagedRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	_, _, gs, err := sr.RouteGrad(context.Background(), fx.x, cl, func(y, g *DataTensor) (float64, error) {
		copy(g.Data, gy.Data)
		return 0, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if gs.InitialQ != nil {
		t.Fatalf("the kernel method starts from rest, yet an initial-discharge gradient came back")
	}
	rows, err := alignRunoff(gs.Runoff, fx.net)
	if err != nil {
		t.Fatal(err)
	}
	n, B, T := fx.net.Len(), fx.x.B, fx.x.T
	dx := make([]float64, B*n*T)
	for b := 0; b < B; b++ {
		for i, row := range rows {
			for q, v := range gs.Runoff.Series(b, row) {
				dx[(b*n+i)*T+q] = float64(v)
			}
		}
	}
	return dx, gs.Params
}

// The staged kernel gradient is the derivative of the staged kernel run
// itself: central differences of its float64 form, in runoff and in every
// parameter, on random networks (three outlets, file order shuffled) cut
// into clusters with transfers, batch 2: Muskingum (time-domain build,
// recursive parameter adjoint: MaxDelay covers the series), Hayami (FFT
// build, short MaxDelay so that the staging changes the result) and Compat
// "diffroute" (DiffRoute's coarse transfers, ReLU and renormalisation).
func TestStagedKernelGradMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 9))
	ctx := context.Background()
	for _, c := range []stagedKernelCase{
		{o: Options{IRF: "muskingum", SubSteps: 3, MaxDelay: 14}, B: 2, T: 14, maxPaths: 300, maxNodes: 40},
		{o: Options{IRF: "muskingum", SubSteps: 2, MaxDelay: 12, Lateral: LateralLTI, Average: AverageEnd, Sampling: SampleLast}, B: 2, T: 12, maxPaths: 300, maxNodes: 40},
		{o: Options{IRF: "hayami", SubSteps: 2, MaxDelay: 6, Lateral: LateralLTI}, B: 2, T: 14, maxPaths: 300, maxNodes: 40},
		// excluded self pairs: the time-domain build's adjoint for the kernel
		{o: Options{IRF: "muskingum", SubSteps: 2, MaxDelay: 12, ExcludeSelf: true}, B: 2, T: 12, maxPaths: 300, maxNodes: 40},
		{o: Options{IRF: "hayami", SubSteps: 2, MaxDelay: 6, Lateral: LateralLTI, ExcludeSelf: true}, B: 2, T: 14, maxPaths: 300, maxNodes: 40},
		{o: Options{IRF: "hayami", SubSteps: 2, MaxDelay: 6, Compat: CompatDiffRoute}, B: 2, T: 14, maxPaths: 300, maxNodes: 40},
		{o: Options{IRF: "muskingum", SubSteps: 2, MaxDelay: 7, Compat: CompatDiffRoute}, B: 2, T: 14, maxPaths: 300, maxNodes: 40},
	} {
		t.Run(c.String(), func(t *testing.T) {
			fx := newGradFixture(t, rng, gradCase{irf: c.o.IRF, f: c.o.SubSteps, B: c.B, T: c.T}, 300)
			cl, err := Schedule(fx.net, c.maxPaths, c.maxNodes)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Len() < 3 || len(cl.Transfers) < 3 {
				t.Fatalf("want several clusters with transfers, got %v", cl)
			}
			o := c.o
			o.Method, o.Params, o.Workers = Kernel, fx.opts.Params, 2
			n, B, T := fx.net.Len(), c.B, c.T
			lat := fx.lat(t)
			// a loss whose ∂L/∂y is positive: no cancellation in the adjoint's
			// sums, so that the float32 rounding of the stored taps (which the
			// adjoint applies) stays at its own size
			for k := range fx.w {
				fx.w[k] = 0.5 + rng.Float64()
			}
			y64 := stagedKernelForward64(t, cl, o, lat, B, T, false)
			// the float64 form is the staged kernel run
			sr, err := NewStagedRouter(o)
			if err != nil {
				t.Fatal(err)
			}
			ys, err := sr.Route(ctx, fx.x, cl)
			if err != nil {
				t.Fatal(err)
			}
			peak := 0.0
			for _, v := range y64 {
				peak = max(peak, math.Abs(v))
			}
			for k, v := range ys.Data {
				if math.Abs(float64(v)-y64[k]) > 2e-6*peak {
					t.Fatalf("float64 staged forward %v, StagedRouter %v at %d (peak %g)", y64[k], v, k, peak)
				}
			}
			gy := NewDataTensor(B, fx.net.IDs(), T)
			for k, v := range y64 {
				gy.Data[k] = float32(fx.w[k] + fx.c[k]*v)
			}
			for k := range fx.w { // the loss whose gradient gy is, exactly
				fx.w[k] = float64(gy.Data[k]) - fx.c[k]*y64[k]
			}
			dx, gp := stagedKernelGrad(t, fx, cl, o, gy)
			worst := 0.0
			// runoff: the staged run is linear in it
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
			num := fx.diff(stagedKernelForward64(t, cl, o, lp, B, T, true), stagedKernelForward64(t, cl, o, lm, B, T, true), h)
			e := relErr(dot(dx, v), num)
			worst = max(worst, e)
			if e > 1e-6 {
				t.Errorf("∂L/∂runoff along a random direction: adjoint %.12g, central difference %.12g (rel. error %.2g)", dot(dx, v), num, e)
			}
			irf, _ := LookupIRF(o.IRF)
			for _, name := range irf.GradParams {
				g := gp[name]
				if len(g) != n {
					t.Fatalf("no gradient for %s", name)
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
						oo := o
						oo.Params = p
						return stagedKernelForward64(t, cl, oo, lat, B, T, false)
					}
					h := 1e-5
					num := (8*fx.diff(at(h), at(-h), h) - fx.diff(at(2*h), at(-2*h), 2*h)) / 7
					// relative to Σ_i |∂L/∂θ_i·dir_i|: a random direction's
					// derivative cancels, and the float32 rounding of the
					// stored taps and transfers (which the adjoint handed
					// upstream passes through) is relative to each term
					ana, abs := dot(g, dir), 0.0
					for i, a := range g {
						abs += math.Abs(a * dir[i])
					}
					e := math.Abs(ana-num) / max(math.Abs(ana), math.Abs(num), abs)
					worst = max(worst, e)
					if e > 1e-6 {
						t.Errorf("∂L/∂%s %s: adjoint %.12g, central difference %.12g (rel. error %.2g)", name, what, ana, num, e)
					}
				}
				dir := make([]float64, n)
				for k := range dir {
					dir[k] = (rng.Float64() - 0.5) * o.Params[name][k]
				}
				check("along a random direction", dir)
				// one transfer source: its parameter drives its own cluster and,
				// through the transfer, the clusters downstream
				one := make([]float64, n)
				i := int(cl.Transfers[0].From)
				one[i] = o.Params[name][i]
				check(fmt.Sprintf("of transfer source %d", fx.net.ID(i)), one)
			}
			t.Logf("%d clusters, %d transfers: worst relative error %.2g", cl.Len(), len(cl.Transfers), worst)
		})
	}
}

// Where staging does not change the kernel run (MaxDelay covers the series,
// so neither truncation nor fine-inflow windows differ), the staged kernel
// gradient is the plain KernelRouter's.
func TestStagedKernelGradEqualsPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 5))
	ctx := context.Background()
	for _, c := range []stagedKernelCase{
		{o: Options{IRF: "muskingum", SubSteps: 3, MaxDelay: 16}, B: 2, T: 16},
		{o: Options{IRF: "linear_storage", SubSteps: 2, MaxDelay: 12, Lateral: LateralLTI, Average: AverageEnd}, B: 1, T: 12},
		{o: Options{IRF: "hayami", SubSteps: 2, MaxDelay: 24, FFTPad: 2}, B: 2, T: 12},
		// excluded self pairs: the transfers carry the sources' own runoff unrouted
		{o: Options{IRF: "muskingum", SubSteps: 3, MaxDelay: 16, ExcludeSelf: true}, B: 2, T: 16},
		{o: Options{IRF: "hayami", SubSteps: 2, MaxDelay: 24, FFTPad: 2, ExcludeSelf: true}, B: 2, T: 12},
	} {
		t.Run(c.String(), func(t *testing.T) {
			fx := newGradFixture(t, rng, gradCase{irf: c.o.IRF, f: c.o.SubSteps, B: c.B, T: c.T}, 300)
			cl, err := Schedule(fx.net, 300, 40)
			if err != nil {
				t.Fatal(err)
			}
			o := c.o
			o.Method, o.Params, o.Workers = Kernel, fx.opts.Params, 2
			kr, err := NewKernelRouter(ctx, fx.net, o)
			if err != nil {
				t.Fatal(err)
			}
			yp, err := kr.Route(ctx, fx.x)
			if err != nil {
				t.Fatal(err)
			}
			gy := NewDataTensor(yp.B, yp.IDs, yp.T)
			for k, v := range yp.Data {
				gy.Data[k] = float32(fx.w[k] + fx.c[k]*float64(v))
			}
			gp, err := kr.Backward(ctx, fx.x, gy)
			if err != nil {
				t.Fatal(err)
			}
			sr, err := NewStagedRouter(o)
			if err != nil {
				t.Fatal(err)
			}
			ys, err := sr.Route(ctx, fx.x, cl)
			if err != nil {
				t.Fatal(err)
			}
			if d := stagedRelDiff(t, ys, yp); d > 1e-5 {
				t.Fatalf("staging changes this kernel run by %.2g: not a case for this test", d)
			}
			dx, gs := stagedKernelGrad(t, fx, cl, o, gy)
			rows, _ := alignRunoff(gp.Runoff, fx.net)
			n, T := fx.net.Len(), c.T
			want := make([]float64, len(dx))
			for b := 0; b < c.B; b++ {
				for i, row := range rows {
					for q, v := range gp.Runoff.Series(b, row) {
						want[(b*n+i)*T+q] = float64(v)
					}
				}
			}
			worst := vecRelDiff(dx, want)
			if worst > 1e-6 {
				t.Errorf("∂L/∂runoff: staged differs from plain by %.2g (rel.)", worst)
			}
			for name, v := range gp.Params {
				d := vecRelDiff(gs[name], v)
				if d > 1e-6 {
					t.Errorf("∂L/∂%s: staged differs from plain by %.2g (rel.)", name, d)
				}
				worst = max(worst, d)
			}
			if len(gp.Params) == 0 {
				t.Fatal("no parameter gradients")
			}
			t.Logf("%d clusters, %d transfers: worst relative difference %.2g", cl.Len(), len(cl.Transfers), worst)
		})
	}
}

// cpuClusterAdjoint is a ClusterKernelAdjoint that is not the KernelRouter
// itself, as a device's is: the backward pass then takes ∂L/∂K whole
// (KernelTapGrad, BackwardParamsFromTaps) instead of per pair.
type cpuClusterAdjoint struct {
	kr     *KernelRouter
	closed *int
}

func (a cpuClusterAdjoint) BackwardRunoff(ctx context.Context, runoff, gy *DataTensor) (*DataTensor, error) {
	return a.kr.BackwardRunoff(ctx, runoff, gy)
}

func (a cpuClusterAdjoint) KernelTapGrad(ctx context.Context, runoff, gy *DataTensor) ([]float64, error) {
	return a.kr.KernelTapGrad(ctx, runoff, gy)
}

func (a cpuClusterAdjoint) Close() error { *a.closed++; return nil }

// A backend for the clusters' transposed convolution and tap correlations
// (StagedRouter.ClusterGrad, a GPU's) gives the CPU's staged gradient:
// fine and coarse transfers, FFT and time-domain builds; each backend is
// closed once its cluster is done.
func TestStagedKernelGradClusterBackend(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 3))
	ctx := context.Background()
	for _, o := range []Options{
		{IRF: "hayami", SubSteps: 2, MaxDelay: 6, Lateral: LateralLTI},
		{IRF: "muskingum", SubSteps: 2, MaxDelay: 7, Compat: CompatDiffRoute},
		{IRF: "muskingum", SubSteps: 2, MaxDelay: 7, ExcludeSelf: true},
	} {
		fx := newGradFixture(t, rng, gradCase{irf: o.IRF, f: o.SubSteps, B: 2, T: 12}, 200)
		cl, err := Schedule(fx.net, 300, 40)
		if err != nil {
			t.Fatal(err)
		}
		o.Method, o.Params, o.Workers = Kernel, fx.opts.Params, 2
		grad := func(backend bool) (*Gradients, int) {
			sr, err := NewStagedRouter(o)
			if err != nil {
				t.Fatal(err)
			}
			closed, made := 0, 0
			if backend {
				sr.ClusterGrad = func(ctx context.Context, _ int, net *Network, co Options) (*KernelRouter, ClusterKernelAdjoint, error) {
					kr, err := NewKernelRouter(ctx, net, co)
					made++
					return kr, cpuClusterAdjoint{kr, &closed}, err
				}
			}
			_, _, g, err := sr.RouteGrad(ctx, fx.x, cl, func(y, gy *DataTensor) (float64, error) {
				for k, v := range y.Data {
					gy.Data[k] = float32(fx.w[k] + fx.c[k]*float64(v))
				}
				return 0, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if closed != made {
				t.Errorf("%d cluster backends made, %d closed", made, closed)
			}
			return g, made
		}
		want, _ := grad(false)
		got, made := grad(true)
		if made != cl.Len() {
			t.Fatalf("%d cluster backends for %d clusters", made, cl.Len())
		}
		worst := vecRelDiff(f64(got.Runoff.Data), f64(want.Runoff.Data))
		for name, v := range want.Params {
			worst = max(worst, vecRelDiff(got.Params[name], v))
		}
		if worst > 1e-9 || len(want.Params) == 0 {
			t.Errorf("%s compat=%q exclude=%v: with a cluster backend the gradients differ by %.2g", o.IRF, o.Compat, o.ExcludeSelf, worst)
		}
	}
}
