package diffroute

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// withTiles runs fn with the tiled adjoint on or off and tiles of the given
// size (0: the default).
func withTiles(on bool, bytes int, fn func()) {
	off, size := gradTilesOff, gradTileBytes
	defer func() { gradTilesOff, gradTileBytes = off, size }()
	gradTilesOff = !on
	if bytes > 0 {
		gradTileBytes = bytes
	}
	fn()
}

// The tiled adjoint (vector kernels, tile by tile, blocks recomputed from
// checkpoints) gives the general engine's discharge and gradients to
// float64 rounding: every lateral and averaging rule it runs, batches,
// initial discharge, checkpoint blocks, tiles from one reach to the whole
// network, parallel parts and trunk.
func TestTiledAdjointEqualsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(44, 3))
	var cases []gradCase
	for _, irf := range []string{"muskingum", "linear_storage", "nash_cascade"} {
		for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
			for _, avg := range []Average{AverageStart, AverageEnd} {
				for _, smp := range []Sampling{SampleAvg, SampleLast} {
					cases = append(cases, gradCase{irf: irf, lat: lat, avg: avg, smp: smp, f: 4, B: 1, T: 9})
				}
			}
		}
	}
	cases = append(cases,
		gradCase{irf: "muskingum", lat: LateralLTI, avg: AverageStart, smp: SampleAvg, f: 8, B: 3, T: 13, q0: true, ckpt: 4},
		gradCase{irf: "muskingum", lat: LateralRAPID, avg: AverageEnd, smp: SampleAvg, f: 12, B: 2, T: 10, q0: true, ckpt: 1},
		gradCase{irf: "linear_storage", lat: LateralLTI, avg: AverageEnd, smp: SampleLast, f: 4, B: 2, T: 11, q0: true, ckpt: 3},
		// Sub-steps that fill no whole vector (scalar loops), one included.
		gradCase{irf: "muskingum", lat: LateralLTI, avg: AverageStart, smp: SampleAvg, f: 3, B: 2, T: 11, q0: true, ckpt: 4},
		gradCase{irf: "muskingum", lat: LateralRAPID, avg: AverageEnd, smp: SampleLast, f: 5, B: 1, T: 9, q0: true},
		gradCase{irf: "linear_storage", lat: LateralLTI, avg: AverageEnd, smp: SampleAvg, f: 1, B: 2, T: 14, q0: true, ckpt: 3},
		// Sampling each step's start value, f = 1 (the step before's) included.
		gradCase{irf: "muskingum", lat: LateralLTI, avg: AverageStart, smp: SampleLast, f: 1, B: 2, T: 13, q0: true, ckpt: 5},
		gradCase{irf: "muskingum", lat: LateralRAPID, avg: AverageStart, smp: SampleLast, f: 2, B: 1, T: 10, q0: true, ckpt: 3},
		gradCase{irf: "linear_storage", lat: LateralLTI, avg: AverageStart, smp: SampleLast, f: 8, B: 2, T: 9, q0: true, ckpt: 2},
		// Nash cascades (three sections in series), vector and scalar.
		gradCase{irf: "nash_cascade", lat: LateralLTI, avg: AverageStart, smp: SampleAvg, f: 8, B: 2, T: 10, q0: true, ckpt: 3},
		gradCase{irf: "nash_cascade", lat: LateralRAPID, avg: AverageStart, smp: SampleLast, f: 3, B: 2, T: 11, q0: true, ckpt: 4},
		gradCase{irf: "nash_cascade", lat: LateralLTI, avg: AverageEnd, smp: SampleLast, f: 1, B: 1, T: 12, q0: true, ckpt: 5},
	)
	overall := 0.0
	defer func() { t.Logf("worst relative difference %.2g", overall) }()
	for _, c := range cases {
		fx := newGradFixture(t, rng, c, 1500) // > 1024 reaches: parallel parts and a trunk
		if c.irf == "nash_cascade" {
			// Whole cascades of 1 to 4 sections, and a few of 10.
			ns := make([]float64, fx.net.Len())
			for i := range ns {
				ns[i] = float64(1 + i%4)
				if i%97 == 0 {
					ns[i] = 10
				}
			}
			fx.opts.Params["n"] = ns
		}
		lat := fx.lat(t)
		var ref *gradRun
		withTiles(false, 0, func() { ref = fx.grad(t, fx.opts, lat) })
		if ref.e.tiles {
			t.Fatal("the reference ran tiled")
		}
		for _, size := range []int{64, 4 << 10, 64 << 10, 1 << 30} {
			var got *gradRun
			withTiles(true, size, func() { got = fx.grad(t, fx.opts, lat) })
			if !got.e.tiles {
				t.Fatalf("%v: the tiled adjoint did not run", c)
			}
			worst := gradRunDiff(got, ref)
			overall = max(overall, worst)
			if worst > 1e-10 {
				t.Errorf("%v, tiles of %d bytes (%d tiles, blocks of %d sub-steps): differs from the reference by %.2g", c, size, got.e.tl.nslot, got.e.tl.bl, worst)
			}
		}
	}
}

// gradRunDiff is the largest relative difference of got's discharge and
// gradients from ref's.
func gradRunDiff(got, ref *gradRun) float64 {
	worst := max(vecRelDiff(got.y, ref.y), vecRelDiff(got.dx, ref.dx), vecRelDiff(got.dq0, ref.dq0))
	for j := range ref.dth {
		worst = max(worst, vecRelDiff(got.dth[j], ref.dth[j]))
	}
	return worst
}

// The backward pass's chunked blocks (whole multiples of chunkSteps steps,
// 16 lanes of whole steps each) give the general engine's discharge and
// gradients: junctions of two and more reaches, boundary series of small
// tiles, cascades, batches, and a last block too short to chunk.
func TestTiledChunkedEqualsReference(t *testing.T) {
	if !useChunks {
		t.Skip("no chunked kernels here (AVX-512)")
	}
	rng := rand.New(rand.NewPCG(45, 9))
	cases := []gradCase{
		{irf: "muskingum", lat: LateralRAPID, avg: AverageEnd, smp: SampleAvg, f: 8, B: 2, T: 40, q0: true, ckpt: 16},
		{irf: "muskingum", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 24, B: 1, T: 36, q0: true, ckpt: 32},
		{irf: "muskingum", lat: LateralRAPID, avg: AverageEnd, smp: SampleLast, f: 3, B: 2, T: 35, q0: true, ckpt: 16},
		{irf: "linear_storage", lat: LateralRAPID, avg: AverageEnd, smp: SampleAvg, f: 1, B: 2, T: 50, q0: true, ckpt: 16},
		{irf: "nash_cascade", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 4, B: 2, T: 33, q0: true, ckpt: 16},
	}
	overall := 0.0
	defer func() { t.Logf("worst relative difference %.2g", overall) }()
	for _, c := range cases {
		fx := newGradFixture(t, rng, c, 1200)
		if c.irf == "nash_cascade" {
			ns := make([]float64, fx.net.Len())
			for i := range ns {
				ns[i] = float64(1 + i%4)
			}
			fx.opts.Params["n"] = ns
		}
		lat := fx.lat(t)
		var ref *gradRun
		withTiles(false, 0, func() { ref = fx.grad(t, fx.opts, lat) })
		for _, size := range []int{64, 16 << 10, 1 << 30} {
			var got *gradRun
			withTiles(true, size, func() { got = fx.grad(t, fx.opts, lat) })
			if !got.e.tiles || !got.chunk || got.e.tl.bl%(chunkSteps*c.f) != 0 {
				t.Fatalf("%v: no chunked blocks ran (tiles %v, chunk %v, blocks of %d sub-steps)", c, got.e.tiles, got.chunk, got.e.tl.bl)
			}
			worst := gradRunDiff(got, ref)
			overall = max(overall, worst)
			if worst > 1e-10 {
				t.Errorf("%v, tiles of %d bytes (%d boundary series): differs from the reference by %.2g", c, size, got.e.tl.nslot, worst)
			}
		}
	}
}

// RouteGrad with chunked blocks (float32 runoff, ∂L/∂y and ∂L/∂runoff
// staged, the lateral taken from the lanes' sums) equals RouteGrad
// without them.
func TestRouteGradChunked(t *testing.T) {
	if !useChunks {
		t.Skip("no chunked kernels here (AVX-512)")
	}
	ctx := context.Background()
	const n, T = 3000, 100
	net := SyntheticNetwork(n, 7)
	x := SyntheticRunoff(net, 2, T, 7)
	// A loss whose ∂L/∂y differs from value to value.
	loss := func(y, gy *DataTensor) (float64, error) {
		L := 0.0
		for k, v := range y.Data {
			c := math.Sin(float64(k) * 0.37)
			L += c * float64(v)
			gy.Data[k] = float32(c)
		}
		return L, nil
	}
	for _, c := range []struct {
		irf string
		avg Average
		smp Sampling
		f   int
	}{{"muskingum", AverageEnd, SampleAvg, 24}, {"muskingum", AverageStart, SampleAvg, 8}, {"nash_cascade", AverageEnd, SampleLast, 4}} {
		opts := Options{IRF: c.irf, Params: testParams(c.irf, n, 3), SubSteps: c.f, Lateral: LateralRAPID, Average: c.avg, Sampling: c.smp, Workers: 2, MaxDelay: 16}
		if c.irf == "nash_cascade" {
			opts.Params["n"] = make([]float64, n)
			for i := range opts.Params["n"] {
				opts.Params["n"][i] = float64(1 + i%3)
			}
		}
		run := func(chunks bool) (*DataTensor, *Gradients) {
			defer func(v bool) { useChunks = v }(useChunks)
			useChunks = chunks
			rr, err := NewRecursiveRouter(ctx, net, opts)
			if err != nil {
				t.Fatal(err)
			}
			y, _, g, err := rr.RouteGrad(ctx, x, loss)
			if err != nil {
				t.Fatal(err)
			}
			if bl := rr.grad.tl.bl; chunks != (bl%(chunkSteps*c.f) == 0) {
				t.Fatalf("%s f=%d: blocks of %d sub-steps with chunks %v", c.irf, c.f, bl, chunks)
			}
			return y, g
		}
		y0, g0 := run(false)
		y1, g1 := run(true)
		f64 := func(s []float32) []float64 {
			d := make([]float64, len(s))
			for k, v := range s {
				d[k] = float64(v)
			}
			return d
		}
		worst := max(vecRelDiff(f64(y1.Data), f64(y0.Data)), vecRelDiff(f64(g1.Runoff.Data), f64(g0.Runoff.Data)), vecRelDiff(g1.InitialQ, g0.InitialQ))
		for name, v := range g0.Params {
			worst = max(worst, vecRelDiff(g1.Params[name], v))
		}
		if worst > 2e-6 {
			t.Errorf("%s f=%d %s/%s: chunked differs from unchunked by %.2g", c.irf, c.f, c.avg, c.smp, worst)
		}
	}
}

// Staged gradients on the tiled adjoint (transfers in and out of clusters,
// their adjoints handed upstream) equal the general engine's.
func TestTiledAdjointStaged(t *testing.T) {
	if !haveSectionVector() {
		t.Skip("no vector kernels on this machine: the tiled adjoint does not run")
	}
	rng := rand.New(rand.NewPCG(45, 4))
	ctx := context.Background()
	// The second runs chunked blocks (16 steps): fine inflows, captured
	// outflows and outlet adjoints converted to and from the lanes.
	for _, c := range []gradCase{
		{irf: "muskingum", lat: LateralLTI, avg: AverageStart, smp: SampleAvg, f: 4, B: 2, T: 12, q0: true, ckpt: 5},
		{irf: "muskingum", lat: LateralRAPID, avg: AverageStart, smp: SampleAvg, f: 4, B: 2, T: 40, q0: true, ckpt: 16},
	} {
		testTiledStaged(t, ctx, rng, c)
	}
}

func testTiledStaged(t *testing.T, ctx context.Context, rng *rand.Rand, c gradCase) {
	fx := newGradFixture(t, rng, c, 400)
	cl, err := Schedule(fx.net, 600, 90)
	if err != nil {
		t.Fatal(err)
	}
	loss := func(y, gy *DataTensor) (float64, error) {
		s := 0.0
		for k, v := range y.Data {
			s += fx.w[k]*float64(v) + 0.5*fx.c[k]*float64(v)*float64(v)
			gy.Data[k] = float32(fx.w[k] + fx.c[k]*float64(v))
		}
		return s, nil
	}
	run := func(on bool) (gr *Gradients) {
		withTiles(on, 2<<10, func() {
			sr, err := NewStagedRouter(fx.opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, gr, err = sr.RouteGrad(ctx, fx.x, cl, loss); err != nil {
				t.Fatal(err)
			}
		})
		return gr
	}
	ref, got := run(false), run(true)
	worst := vecRelDiff(f64(got.Runoff.Data), f64(ref.Runoff.Data))
	for name, v := range ref.Params {
		worst = max(worst, vecRelDiff(got.Params[name], v))
	}
	worst = max(worst, vecRelDiff(got.InitialQ, ref.InitialQ))
	if worst > 1e-6 {
		t.Errorf("%v: staged, tiled vs general engine: gradients differ by %.2g", c, worst)
	}
	t.Logf("%v: %d clusters, %d transfers: worst rel. difference %.2g", c, cl.Len(), len(cl.Transfers), worst)
}

// RouteGrad and Backward on the tiled adjoint (float32 discharge, ∂L/∂y and
// ∂L/∂runoff written in place, runoff rows in another order than the
// network's and with a reach the network lacks) equal the general engine's.
func TestTiledAdjointRouteGrad(t *testing.T) {
	if !haveSectionVector() {
		t.Skip("no vector kernels on this machine: the tiled adjoint does not run")
	}
	rng := rand.New(rand.NewPCG(46, 5))
	ctx := context.Background()
	c := gradCase{irf: "muskingum", lat: LateralLTI, avg: AverageStart, smp: SampleAvg, f: 8, B: 2, T: 15, q0: true, ckpt: 4}
	fx := newGradFixture(t, rng, c, 1300)
	// Runoff rows reversed, plus one reach outside the network.
	n := fx.net.Len()
	ids := append([]int64{-7}, fx.x.IDs...)
	for l, r := 1, len(ids)-1; l < r; l, r = l+1, r-1 {
		ids[l], ids[r] = ids[r], ids[l]
	}
	x := NewDataTensor(fx.x.B, ids, fx.x.T)
	for b := 0; b < x.B; b++ {
		for j := 1; j <= n; j++ {
			copy(x.Series(b, j), fx.x.Series(b, n-j))
		}
	}
	loss := func(y, gy *DataTensor) (float64, error) {
		s := 0.0
		for k, v := range y.Data {
			s += fx.w[k]*float64(v) + 0.5*fx.c[k]*float64(v)*float64(v)
			gy.Data[k] = float32(fx.w[k] + fx.c[k]*float64(v))
		}
		return s, nil
	}
	type result struct {
		y  *DataTensor
		L  float64
		gr *Gradients
		bw *Gradients
	}
	run := func(on bool) (r result) {
		withTiles(on, 16<<10, func() {
			rr, err := NewRecursiveRouter(ctx, fx.net, fx.opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.y, r.L, r.gr, err = rr.RouteGrad(ctx, x, loss); err != nil {
				t.Fatal(err)
			}
			if on != (rr.grad.tiles && rr.grad.tl.nslot > 0) {
				t.Fatalf("tiled adjoint on = %v, ran tiled = %v", on, rr.grad.tiles)
			}
			gy := NewDataTensor(r.y.B, r.y.IDs, r.y.T)
			for k := range gy.Data {
				gy.Data[k] = float32(fx.w[k])
			}
			if r.bw, err = rr.Backward(ctx, x, gy); err != nil {
				t.Fatal(err)
			}
		})
		return r
	}
	ref, got := run(false), run(true)
	worst := vecRelDiff(f64(got.y.Data), f64(ref.y.Data))
	for _, pair := range [][2]*Gradients{{got.gr, ref.gr}, {got.bw, ref.bw}} {
		worst = max(worst, vecRelDiff(f64(pair[0].Runoff.Data), f64(pair[1].Runoff.Data)), vecRelDiff(pair[0].InitialQ, pair[1].InitialQ))
		for name, v := range pair[1].Params {
			worst = max(worst, vecRelDiff(pair[0].Params[name], v))
		}
		if v := pair[0].Runoff.Series(0, 0); v[0] != 0 || v[len(v)-1] != 0 {
			t.Errorf("the reach outside the network has gradient %v", v)
		}
	}
	if worst > 1e-6 || relErr(got.L, ref.L) > 1e-9 {
		t.Errorf("tiled RouteGrad/Backward differ from the general engine by %.2g (loss %v vs %v)", worst, got.L, ref.L)
	}
	t.Logf("worst relative difference %.2g", worst)
}

// RouteGradFine with fine inflows into some reaches (calibration below
// calibrated clusters) gives the general engine's results on the tiled
// adjoint.
func TestTiledAdjointFineInflow(t *testing.T) {
	if !haveSectionVector() {
		t.Skip("no vector kernels on this machine: the tiled adjoint does not run")
	}
	rng := rand.New(rand.NewPCG(47, 6))
	ctx := context.Background()
	for _, c := range []gradCase{
		{irf: "muskingum", lat: LateralRAPID, avg: AverageEnd, smp: SampleAvg, f: 4, B: 2, T: 10, q0: true, ckpt: 3},
		{irf: "muskingum", lat: LateralRAPID, avg: AverageEnd, smp: SampleAvg, f: 4, B: 2, T: 40, q0: true, ckpt: 16}, // chunked
	} {
		testTiledFineInflow(t, ctx, rng, c)
	}
}

func testTiledFineInflow(t *testing.T, ctx context.Context, rng *rand.Rand, c gradCase) {
	fx := newGradFixture(t, rng, c, 1200)
	in := FineFlows{}
	for _, i := range []int32{0, 17, int32(fx.net.Len() - 1)} {
		s := make([]float32, c.B*c.T*c.f)
		for k := range s {
			s[k] = float32(3 * rng.Float64())
		}
		in[i] = s
	}
	loss := func(y, gy *DataTensor) (float64, error) {
		s := 0.0
		for k, v := range y.Data {
			s += fx.w[k] * float64(v)
			gy.Data[k] = float32(fx.w[k])
		}
		return s, nil
	}
	run := func(on bool) (y *DataTensor, L float64, gr *Gradients) {
		withTiles(on, 8<<10, func() {
			rr, err := NewRecursiveRouter(ctx, fx.net, fx.opts)
			if err != nil {
				t.Fatal(err)
			}
			if y, L, gr, err = rr.RouteGradFine(ctx, fx.x, in, loss); err != nil {
				t.Fatal(err)
			}
		})
		return
	}
	yr, Lr, ref := run(false)
	yg, Lg, got := run(true)
	worst := max(vecRelDiff(f64(yg.Data), f64(yr.Data)), vecRelDiff(f64(got.Runoff.Data), f64(ref.Runoff.Data)), vecRelDiff(got.InitialQ, ref.InitialQ))
	for name, v := range ref.Params {
		worst = max(worst, vecRelDiff(got.Params[name], v))
	}
	if worst > 1e-6 || relErr(Lg, Lr) > 1e-9 {
		t.Errorf("%v: fine inflows: tiled differs from the general engine by %.2g (loss %v vs %v)", c, worst, Lg, Lr)
	}
}

// The router's own ∂L/∂y tensor, zeroed by the tiled adjoint as it reads
// it instead of before each loss: a loss that sets only a few values after
// one that set them all gives a fresh router's gradients.
func TestTiledAdjointReusesZeroedGy(t *testing.T) {
	rng := rand.New(rand.NewPCG(48, 7))
	ctx := context.Background()
	c := gradCase{irf: "nash_cascade", lat: LateralLTI, avg: AverageEnd, smp: SampleAvg, f: 8, B: 2, T: 12, q0: true, ckpt: 5}
	fx := newGradFixture(t, rng, c, 300)
	all := func(y, gy *DataTensor) (float64, error) {
		for k := range gy.Data {
			gy.Data[k] = float32(fx.w[k])
		}
		return 0, nil
	}
	few := func(y, gy *DataTensor) (float64, error) {
		for k := 0; k < len(gy.Data); k += 97 {
			if gy.Data[k] != 0 {
				return 0, fmt.Errorf("∂L/∂y arrives with %v at %d", gy.Data[k], k)
			}
			gy.Data[k] = float32(fx.w[k])
		}
		return 0, nil
	}
	var fresh, reused *Gradients
	withTiles(true, 8<<10, func() {
		rr, err := NewRecursiveRouter(ctx, fx.net, fx.opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err = rr.RouteGrad(ctx, fx.x, all); err != nil {
			t.Fatal(err)
		}
		if !rr.grad.tiles || !rr.grad.gyZero {
			t.Fatalf("tiled %v, ∂L/∂y left zeroed %v", rr.grad.tiles, rr.grad.gyZero)
		}
		if _, _, reused, err = rr.RouteGrad(ctx, fx.x, few); err != nil {
			t.Fatal(err)
		}
		rr2, err := NewRecursiveRouter(ctx, fx.net, fx.opts)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, fresh, err = rr2.RouteGrad(ctx, fx.x, few); err != nil {
			t.Fatal(err)
		}
	})
	if d := vecRelDiff(f64(reused.Runoff.Data), f64(fresh.Runoff.Data)); d != 0 {
		t.Errorf("second gradient of a reused router differs from a fresh one by %.2g", d)
	}
	for name, v := range fresh.Params {
		if d := vecRelDiff(reused.Params[name], v); d != 0 {
			t.Errorf("∂L/∂%s: reused router differs by %.2g", name, d)
		}
	}
}
