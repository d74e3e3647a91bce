package diffroute

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
)

// kahnOrder is an upstream-first order computed independently of Network's
// own orders (Kahn's algorithm on in-degrees).
func kahnOrder(net *Network) []int {
	n := net.Len()
	indeg := make([]int, n)
	for i := 0; i < n; i++ {
		if d := net.Down(i); d >= 0 {
			indeg[d]++
		}
	}
	var queue, order []int
	for i := 0; i < n; i++ {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		order = append(order, v)
		if d := net.Down(v); d >= 0 {
			indeg[d]--
			if indeg[d] == 0 {
				queue = append(queue, d)
			}
		}
	}
	return order
}

type refOpts struct {
	f             int
	rapid         bool
	start, sample bool
	useSections   bool // route IRFs with a recursive form by it; else convolve Impulse taps
	w             int  // window for Impulse taps
}

// referenceRoute is the obviously-correct loop: time-major over fine
// sub-steps, every reach visited upstream first each sub-step, float64
// throughout, whole inflow histories kept. It returns y[b][i][t].
func referenceRoute(t *testing.T, net *Network, x *DataTensor, irf IRF, p Params, o refOpts) [][][]float64 {
	t.Helper()
	n := net.Len()
	order := kahnOrder(net)
	rowOf := map[int64]int{}
	for j, id := range x.IDs {
		rowOf[id] = j
	}
	r := 1 / float64(o.f)
	fullP := Params{}
	for k, v := range p {
		fullP[k] = v
	}
	for k, v := range irf.Defaults {
		if _, ok := fullP[k]; !ok {
			fullP[k] = Constant(n, map[string]float64{k: v})[k]
		}
	}
	secs := make([][]Section, n)
	taps := make([][]float64, n)
	for i := 0; i < n; i++ {
		pi := make([]float64, len(irf.Params))
		for k, name := range irf.Params {
			pi[k] = fullP[name][i]
		}
		if o.useSections && irf.Sections != nil {
			s, err := irf.Sections(nil, pi, r)
			if err != nil {
				t.Fatal(err)
			}
			secs[i] = s
		}
		if secs[i] == nil {
			taps[i] = make([]float64, o.w)
			if err := irf.Impulse(taps[i], pi, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := make([][][]float64, x.B)
	for b := 0; b < x.B; b++ {
		tf := x.T * o.f
		yFine := make([][]float64, n) // y[i][n+1], index 0 = initial state
		inflow := make([][]float64, n)
		upIn := make([][]float64, n)
		state := make([][]float64, n)
		for i := range yFine {
			yFine[i] = make([]float64, tf+1)
			inflow[i] = make([]float64, tf)
			upIn[i] = make([]float64, tf)
			state[i] = make([]float64, len(secs[i]))
		}
		lat := func(i, nn int) float64 {
			if nn < 0 {
				return 0
			}
			return float64(x.At(b, rowOf[net.ID(i)], nn/o.f))
		}
		for nn := 0; nn < tf; nn++ {
			for _, i := range order {
				u := 0.0
				for _, up := range net.Upstream(i) {
					u += yFine[up][nn+1]
				}
				upIn[i][nn] = u
				in := u + lat(i, nn)
				inflow[i][nn] = in
				var y float64
				if secs[i] != nil {
					prevU := 0.0
					if nn > 0 {
						prevU = upIn[i][nn-1]
					}
					prevL := lat(i, nn-1)
					if o.rapid {
						prevL = lat(i, nn)
					}
					xx, xp := in, prevU+prevL
					for k, s := range secs[i] {
						yk := s.B0*xx + s.B1*xp + s.A1*state[i][k]
						xp = state[i][k]
						state[i][k] = yk
						xx = yk
					}
					y = xx
				} else {
					for k, c := range taps[i] {
						if nn-k >= 0 {
							y += c * inflow[i][nn-k]
						}
					}
				}
				yFine[i][nn+1] = y
			}
		}
		out[b] = make([][]float64, n)
		for i := 0; i < n; i++ {
			out[b][i] = make([]float64, x.T)
			for q := 0; q < x.T; q++ {
				off := 1 // end: y at the end of sub-step n is yFine[n+1]
				if o.start {
					off = 0
				}
				if o.sample {
					out[b][i][q] = yFine[i][q*o.f+o.f-1+off]
					continue
				}
				s := 0.0
				for j := 0; j < o.f; j++ {
					s += yFine[i][q*o.f+j+off]
				}
				out[b][i][q] = s / float64(o.f)
			}
		}
	}
	return out
}

// maxRelErr compares a routed tensor with reference values, relative to the
// largest reference value of each reach.
func maxRelErr(t *testing.T, got *DataTensor, want [][][]float64) float64 {
	t.Helper()
	worst := 0.0
	for b := range want {
		for i := range want[b] {
			scale := 1e-12
			for _, v := range want[b][i] {
				scale = max(scale, math.Abs(v))
			}
			for q, v := range want[b][i] {
				e := math.Abs(float64(got.At(b, i, q))-v) / scale
				if math.IsNaN(e) {
					return math.Inf(1)
				}
				worst = max(worst, e)
			}
		}
	}
	return worst
}

// testParams draws per-reach parameters for each built-in IRF.
func testParams(name string, n int, seed int) Params {
	p := Params{}
	rnd := func(i int, lo, hi float64) float64 {
		v := math.Abs(math.Sin(float64(i*7919+seed*104729) + 0.5))
		return lo + (hi-lo)*v
	}
	col := func(lo, hi float64, salt int) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = rnd(i+salt*n, lo, hi)
		}
		return s
	}
	switch name {
	case "muskingum":
		p["k"], p["x"] = col(0.05, 0.6, 1), col(0, 0.45, 2)
	case "linear_storage":
		p["tau"] = col(0.05, 0.8, 3)
	case "nash_cascade":
		p["tau"] = col(0.02, 0.3, 4)
	case "pure_lag":
		p["delay"] = col(0, 0.9, 5)
	case "hayami", "hayami_unshifted":
		p["L"], p["D"], p["c"] = col(1, 3, 6), col(0.5, 2, 7), col(2, 6, 8)
	}
	return p
}

func TestRecursiveMatchesReference(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(600, 7)
	x := SyntheticRunoff(net, 2, 40, 3)
	// Shuffle runoff rows: routers must align by id, never by position.
	perm := make([]int64, x.N)
	copy(perm, x.IDs)
	slices.Reverse(perm)
	x, _ = x.SelectIDs(perm)
	for _, name := range []string{"muskingum", "linear_storage", "nash_cascade", "pure_lag", "hayami", "hayami_unshifted"} {
		for _, f := range []int{1, 4} {
			for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
				for _, avg := range []Average{AverageStart, AverageEnd} {
					for _, smp := range []Sampling{SampleAvg, SampleLast} {
						p := testParams(name, net.Len(), f)
						opts := Options{IRF: name, Params: p, SubSteps: f, Lateral: lat, Average: avg, Sampling: smp, MaxDelay: 8, Workers: 2}
						rr, err := NewRecursiveRouter(context.Background(), net, opts)
						if err != nil {
							t.Fatal(err)
						}
						got, err := rr.Route(ctx, x)
						if err != nil {
							t.Fatal(err)
						}
						irf, _ := LookupIRF(name)
						want := referenceRoute(t, net, x, irf, p, refOpts{f: f, rapid: lat == LateralRAPID, start: avg == AverageStart, sample: smp == SampleLast, useSections: true, w: 8 * f})
						if e := maxRelErr(t, got, want); e > 2e-6 {
							t.Errorf("%s f=%d %s %s %s: max rel err %.3g", name, f, lat, avg, smp, e)
						}
						if !slices.Equal(got.IDs, net.IDs()) {
							t.Fatalf("output ids not in network order")
						}
					}
				}
			}
		}
	}
}

// Under the lti rule the recursive sections must equal a plain causal
// convolution with the IRF's Impulse taps: an independent check of every
// Sections implementation.
func TestSectionsEqualImpulseConvolution(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(300, 11)
	x := SyntheticRunoff(net, 1, 30, 5)
	for _, name := range []string{"muskingum", "linear_storage", "nash_cascade"} {
		p := testParams(name, net.Len(), 2)
		f := 3
		rr, err := NewRecursiveRouter(context.Background(), net, Options{IRF: name, Params: p, SubSteps: f, Lateral: LateralLTI, Average: AverageEnd})
		if err != nil {
			t.Fatal(err)
		}
		got, err := rr.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		irf, _ := LookupIRF(name)
		want := referenceRoute(t, net, x, irf, p, refOpts{f: f, useSections: false, w: x.T * f})
		if e := maxRelErr(t, got, want); e > 2e-6 {
			t.Errorf("%s: sections vs impulse convolution: max rel err %.3g", name, e)
		}
	}
}

func TestRecursiveChunksEqualWhole(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(3000, 1)
	x := SyntheticRunoff(net, 1, 50, 9)
	for _, name := range []string{"muskingum", "pure_lag"} {
		opts := Options{IRF: name, Params: testParams(name, net.Len(), 1), SubSteps: 6, MaxDelay: 4, Workers: 2}
		whole, err := NewRecursiveRouter(context.Background(), net, opts)
		if err != nil {
			t.Fatal(err)
		}
		want, err := whole.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		chunked, _ := NewRecursiveRouter(context.Background(), net, opts)
		var parts []*DataTensor
		for _, cut := range [][2]int{{0, 7}, {7, 8}, {8, 31}, {31, 50}} {
			y, err := chunked.Route(ctx, x.SliceTime(cut[0], cut[1]))
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, y)
		}
		got, err := ConcatTime(parts...)
		if err != nil {
			t.Fatal(err)
		}
		for k := range want.Data {
			if got.Data[k] != want.Data[k] {
				t.Fatalf("%s: chunked run differs at %d: %v vs %v", name, k, got.Data[k], want.Data[k])
			}
		}
	}
}

// Parallel and serial runs must agree: the partition only reorders
// independent subtrees (trunk reaches may sum their inflows in another order).
func TestRecursiveWorkersAgree(t *testing.T) {
	ctx := context.Background()
	net := singleOutlet(t, SyntheticNetwork(20000, 3))
	x := SyntheticRunoff(net, 1, 20, 1)
	opts := Options{Params: testParams("muskingum", net.Len(), 3), SubSteps: 4}
	var outs []*DataTensor
	for _, w := range []int{1, 2, 3} {
		opts.Workers = w
		rr, err := NewRecursiveRouter(context.Background(), net, opts)
		if err != nil {
			t.Fatal(err)
		}
		if w > 1 && len(rr.trunk) == 0 {
			t.Fatalf("workers=%d: no trunk, partition did not split", w)
		}
		y, err := rr.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, y)
	}
	for k, v := range outs[0].Data {
		for _, o := range outs[1:] {
			if math.Abs(float64(o.Data[k]-v)) > 1e-6*math.Abs(float64(v)) {
				t.Fatalf("workers disagree at %d: %v vs %v", k, o.Data[k], v)
			}
		}
	}
}

// singleOutlet joins every outlet of net into one new outlet reach, so that
// the partition has to split a single big tree.
func singleOutlet(t *testing.T, net *Network) *Network {
	t.Helper()
	ids := append(slices.Clone(net.IDs()), 1<<40)
	down := make([]int64, len(ids))
	for i := 0; i < net.Len(); i++ {
		if d := net.Down(i); d >= 0 {
			down[i] = net.ID(d)
		} else {
			down[i] = 1 << 40
		}
	}
	out, err := NewNetwork(ids, down)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPartitionCoversEveryReachOnce(t *testing.T) {
	net := singleOutlet(t, SyntheticNetwork(50000, 5))
	parts, trunk := partition(net, 2)
	seen := make([]int, net.Len())
	where := make([]int, net.Len())
	for w, p := range parts {
		for _, v := range p {
			seen[v]++
			where[v] = w
		}
	}
	for _, v := range trunk {
		seen[v]++
		where[v] = -1
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("reach %d routed %d times", i, c)
		}
		// A reach in a part drains into the same part or the trunk.
		if d := net.Down(i); where[i] >= 0 && d >= 0 && where[d] != where[i] && where[d] != -1 {
			t.Fatalf("reach %d in part %d drains into part %d", i, where[i], where[d])
		}
	}
	sizes := []int{len(parts[0]), len(parts[1])}
	sort.Ints(sizes)
	t.Logf("parts %v, trunk %d of %d", sizes, len(trunk), net.Len())
	if float64(sizes[0]) < 0.6*float64(sizes[1]) {
		t.Errorf("unbalanced parts %v", sizes)
	}
}

func TestRecursiveFineTransfers(t *testing.T) {
	// Route a chain a→b→c whole, then as two pieces joined by a fine transfer.
	ctx := context.Background()
	whole, _ := NewNetwork([]int64{1, 2, 3}, []int64{2, 3, 0})
	up, _ := NewNetwork([]int64{1}, []int64{0})
	down, _ := NewNetwork([]int64{2, 3}, []int64{3, 0})
	x := SyntheticRunoff(whole, 2, 25, 4)
	f := 5
	opts := func(n int) Options {
		return Options{Params: Constant(n, map[string]float64{"k": 0.4, "x": 0.2}), SubSteps: f}
	}
	rw, _ := NewRecursiveRouter(context.Background(), whole, opts(3))
	want, _ := rw.Route(ctx, x)
	ru, _ := NewRecursiveRouter(context.Background(), up, opts(1))
	buf := make([]float32, x.B*x.T*f)
	yu, err := ru.RouteFine(ctx, x, nil, FineFlows{0: buf})
	if err != nil {
		t.Fatal(err)
	}
	rd, _ := NewRecursiveRouter(context.Background(), down, opts(2))
	yd, err := rd.RouteFine(ctx, x, FineFlows{0: buf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < x.B; b++ {
		for q := 0; q < x.T; q++ {
			checks := [][2]float32{{yu.At(b, 0, q), want.At(b, 0, q)}, {yd.At(b, 0, q), want.At(b, 1, q)}, {yd.At(b, 1, q), want.At(b, 2, q)}}
			for k, c := range checks {
				if math.Abs(float64(c[0]-c[1])) > 1e-5*math.Abs(float64(c[1]))+1e-7 {
					t.Fatalf("b=%d q=%d reach %d: staged %v, whole %v", b, q, k, c[0], c[1])
				}
			}
		}
	}
}

func TestRecursiveErrors(t *testing.T) {
	net, _ := NewNetwork([]int64{1, 2}, []int64{2, 0})
	x := NewDataTensor(1, []int64{1}, 3)
	rr, err := NewRecursiveRouter(context.Background(), net, Options{Params: Constant(2, map[string]float64{"k": 1, "x": 0.2})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rr.Route(context.Background(), x); err == nil {
		t.Error("runoff missing reach 2 was accepted")
	}
	if _, err := NewRecursiveRouter(context.Background(), net, Options{Params: Constant(2, map[string]float64{"k": 1})}); err == nil {
		t.Error("missing parameter x was accepted")
	}
	if _, err := NewRecursiveRouter(context.Background(), net, Options{Params: Constant(2, map[string]float64{"k": -1, "x": 0.2})}); err == nil {
		t.Error("negative k was accepted")
	}
	if _, err := NewRecursiveRouter(context.Background(), net, Options{IRF: "nope"}); err == nil {
		t.Error("unknown IRF was accepted")
	}
	if _, err := NewRecursiveRouter(context.Background(), net, Options{SubSteps: -2}); err == nil {
		t.Error("negative sub-steps accepted")
	}
}

// Routing time chunks into a reused tensor allocates (almost) nothing.
func TestRouteToAllocations(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(5000, 2)
	x := SyntheticRunoff(net, 1, 64, 2)
	rr, err := NewRecursiveRouter(context.Background(), net, Options{Params: testParams("muskingum", net.Len(), 2), SubSteps: 8, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	want, err := rr.Route(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	rr.Reset()
	dst := NewDataTensor(1, net.IDs(), 64)
	if err := rr.RouteTo(ctx, dst, x); err != nil {
		t.Fatal(err)
	}
	for k := range want.Data {
		if dst.Data[k] != want.Data[k] {
			t.Fatalf("RouteTo differs from Route at %d", k)
		}
	}
	allocs := testing.AllocsPerRun(5, func() {
		if err := rr.RouteTo(ctx, dst, x); err != nil {
			t.Fatal(err)
		}
	})
	// A longer series (16 blocks of 4,096 sub-steps instead of one) may only
	// add the goroutine launches of each block: the hot loops allocate
	// nothing; the per-call bookkeeping and the frontier of inflow buffers
	// do, once.
	long := SyntheticRunoff(net, 1, 64*8*16, 2)
	dstLong := NewDataTensor(1, net.IDs(), long.T)
	allocsLong := testing.AllocsPerRun(2, func() {
		if err := rr.RouteTo(ctx, dstLong, long); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.0f allocations per RouteTo of 5,000 reaches x 64 steps, %.0f for x %d steps", allocs, allocsLong, long.T)
	if perBlock := (allocsLong - allocs) / 15; perBlock > 16 || allocs > 400 {
		t.Errorf("allocations grow with the series: %.0f for 64 steps, %.0f for %d", allocs, allocsLong, long.T)
	}
	bad := NewDataTensor(1, net.IDs()[:10], 64)
	if rr.RouteTo(ctx, bad, x) == nil {
		t.Error("a destination of the wrong size was accepted")
	}
}

// TestUniformSections: reaches with as many sections each (Muskingum's
// one, a Nash cascade of fixed n) get, built in parallel, the sections a
// reach-by-reach build gives; a cascade of varying n goes reach by reach;
// bad parameters are reported at the first reach that has them.
func TestUniformSections(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(40000, 3)
	n := net.Len()
	nvar := testParams("nash_cascade", n, 2)
	nvar["n"] = make([]float64, n)
	for i := range nvar["n"] {
		nvar["n"][i] = float64(2 + i%3)
	}
	for _, c := range []struct {
		irf     string
		p       Params
		uniform bool
	}{{"muskingum", testParams("muskingum", n, 2), true}, {"nash_cascade", testParams("nash_cascade", n, 2), true}, {"nash_cascade", nvar, false}} {
		rr, err := NewRecursiveRouter(ctx, net, Options{IRF: c.irf, Params: c.p, SubSteps: 6, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		irf, _ := LookupIRF(c.irf)
		full, err := fullParams(irf, c.p, net)
		if err != nil {
			t.Fatal(err)
		}
		if secs, _ := uniformSections(irf, full, n, 1.0/6, 2); (secs != nil) != c.uniform {
			t.Fatalf("%s: uniform %v, want %v", c.irf, secs != nil, c.uniform)
		}
		var want []Section
		for i := 0; i < n; i++ {
			if want, err = irf.Sections(want, full.row(nil, irf.Params, i), 1.0/6); err != nil {
				t.Fatal(err)
			}
			if int(rr.secStart[i+1]) != len(want) {
				t.Fatalf("%s: reach %d ends at section %d, want %d", c.irf, i, rr.secStart[i+1], len(want))
			}
		}
		if !slices.Equal(rr.secs, want) {
			t.Fatalf("%s: sections differ from a reach-by-reach build", c.irf)
		}
	}
	bad := testParams("muskingum", n, 2)
	bad["x"][31000], bad["x"][20000] = 0.9, 0.8
	_, err := NewRecursiveRouter(ctx, net, Options{IRF: "muskingum", Params: bad, SubSteps: 6, Workers: 2})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("reach %d:", net.ID(20000))) {
		t.Fatalf("bad x at reaches 20000 and 31000: %v, want an error naming reach %d", err, net.ID(20000))
	}
}
