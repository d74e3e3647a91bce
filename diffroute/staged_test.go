package diffroute

import (
	"context"
	"fmt"
	"iter"
	"math"
	"testing"
)

// stagedRelDiff is the largest difference between got and want (rows matched
// by reach id), relative to the peak of want's series at that reach and batch
// member: max |got − want| / max_t |want|.
func stagedRelDiff(t *testing.T, got, want *DataTensor) float64 {
	t.Helper()
	if got.B != want.B || got.T != want.T {
		t.Fatalf("shapes differ: got %d×%d×%d, want %d×%d×%d", got.B, got.N, got.T, want.B, want.N, want.T)
	}
	row := make(map[int64]int, got.N)
	for i, id := range got.IDs {
		row[id] = i
	}
	worst := 0.0
	for j, id := range want.IDs {
		i, ok := row[id]
		if !ok {
			t.Fatalf("reach %d missing from the result", id)
		}
		for b := 0; b < want.B; b++ {
			w, g := want.Series(b, j), got.Series(b, i)
			peak := 0.0
			for _, v := range w {
				peak = max(peak, math.Abs(float64(v)))
			}
			for k := range w {
				d := math.Abs(float64(g[k]) - float64(w[k]))
				if math.IsNaN(float64(g[k])) {
					return math.Inf(1)
				}
				if d > 0 {
					worst = max(worst, d/max(peak, 1e-30))
				}
			}
		}
	}
	return worst
}

func plainRecursive(t testing.TB, net *Network, o Options, x *DataTensor) *DataTensor {
	rr, err := NewRecursiveRouter(context.Background(), net, o)
	if err != nil {
		t.Fatal(err)
	}
	y, err := rr.Route(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func checkSchedule(t *testing.T, net *Network, cl *Clusters) {
	t.Helper()
	so := cl.Options
	n := net.Len()
	seen := make([]int, n)
	for k, c := range cl.Clusters {
		if c.Index != k || c.Start > c.End || len(c.Reaches) != c.End-c.Start || c.Net.Len() != len(c.Reaches) {
			t.Fatalf("cluster %d: inconsistent ranges", k)
		}
		for j, v := range c.Reaches {
			seen[v]++
			if cl.Order[c.Start+j] != v || cl.ClusterOf[v] != int32(k) || cl.Local[v] != int32(j) || c.Net.ID(j) != net.ID(int(v)) {
				t.Fatalf("cluster %d: reach %d misfiled", k, net.ID(int(v)))
			}
			// Edges inside the cluster are kept, edges leaving it are cut.
			d := net.Down(int(v))
			ld := c.Net.Down(j)
			switch {
			case d >= 0 && cl.ClusterOf[d] == int32(k):
				if ld != int(cl.Local[d]) {
					t.Fatalf("cluster %d lost edge %d → %d", k, net.ID(int(v)), net.ID(d))
				}
			case ld != -1:
				t.Fatalf("cluster %d: reach %d drains inside the cluster but not in the network", k, net.ID(int(v)))
			}
		}
		if c.Pairs != c.Net.Pairs() {
			t.Fatalf("cluster %d: %d pairs recorded, its network has %d", k, c.Pairs, c.Net.Pairs())
		}
		if !c.Oversize {
			if so.MaxPaths > 0 && c.Pairs > so.MaxPaths {
				t.Errorf("cluster %d: %d pairs > max_paths %d and not reported", k, c.Pairs, so.MaxPaths)
			}
			if so.MaxNodes > 0 && len(c.Reaches) > so.MaxNodes {
				t.Errorf("cluster %d: %d reaches > max_nodes %d and not reported", k, len(c.Reaches), so.MaxNodes)
			}
		} else if c.Segments != 1 {
			t.Errorf("oversize cluster %d holds %d segments", k, c.Segments)
		}
		if so.MaxPathLength > 0 && c.Segments == 1 && c.PathLength > so.MaxPathLength && len(c.Reaches) > 1 {
			t.Errorf("cluster %d: path length %d > %d", k, c.PathLength, so.MaxPathLength)
		}
		if k > 0 && c.Generation < cl.Clusters[k-1].Generation {
			t.Errorf("cluster %d: generation %d after %d", k, c.Generation, cl.Clusters[k-1].Generation)
		}
	}
	for v, s := range seen {
		if s != 1 {
			t.Fatalf("reach %d is in %d clusters", net.ID(v), s)
		}
	}
	// Every edge between clusters is exactly one transfer, in dependency order.
	cross := 0
	for u := 0; u < n; u++ {
		if d := net.Down(u); d >= 0 && cl.ClusterOf[u] != cl.ClusterOf[d] {
			cross++
		}
	}
	if cross != len(cl.Transfers) {
		t.Fatalf("%d edges cross clusters, %d transfers", cross, len(cl.Transfers))
	}
	slotsIn := 0
	for s, tr := range cl.Transfers {
		if tr.Slot != s || net.Down(int(tr.From)) != int(tr.To) {
			t.Fatalf("transfer %d is not a network edge", s)
		}
		if tr.SrcCluster >= tr.DstCluster || int(cl.ClusterOf[tr.From]) != tr.SrcCluster || int(cl.ClusterOf[tr.To]) != tr.DstCluster {
			t.Fatalf("transfer %d: clusters %d → %d out of order", s, tr.SrcCluster, tr.DstCluster)
		}
		if tr.SrcLocal != cl.Local[tr.From] || tr.DstLocal != cl.Local[tr.To] {
			t.Fatalf("transfer %d: wrong local positions", s)
		}
		if cl.Clusters[tr.SrcCluster].Net.Down(int(tr.SrcLocal)) != -1 {
			t.Fatalf("transfer %d: source is not an outlet of its cluster", s)
		}
	}
	for _, c := range cl.Clusters {
		slotsIn += len(c.In)
	}
	if slotsIn != len(cl.Transfers) {
		t.Fatalf("%d slots listed as inputs, %d transfers", slotsIn, len(cl.Transfers))
	}
}

func TestScheduleInvariants(t *testing.T) {
	for _, tc := range []struct {
		n     int
		seed  uint64
		so    ScheduleOptions
		multi bool
	}{
		{6000, 1, ScheduleOptions{MaxPaths: 2000, MaxNodes: 400}, true},
		{6000, 2, ScheduleOptions{MaxPaths: 500, MaxNodes: 100}, true},
		{6000, 3, ScheduleOptions{MaxPaths: 50000, MaxNodes: 200}, true},
		{3000, 4, ScheduleOptions{MaxPaths: 1, MaxNodes: 10}, true},
		{3000, 5, ScheduleOptions{}, false},
		{3000, 6, ScheduleOptions{MaxPaths: 300, MaxPathLength: 2000}, true},
		{1, 7, ScheduleOptions{MaxPaths: 3, MaxNodes: 1}, false},
	} {
		net := SyntheticNetwork(tc.n, tc.seed)
		cl, err := ScheduleWith(net, tc.so)
		if err != nil {
			t.Fatal(err)
		}
		checkSchedule(t, net, cl)
		if tc.multi && len(cl.Transfers) == 0 {
			t.Errorf("%+v: no transfers", tc.so)
		}
		if tc.so.MaxPaths == 0 && len(cl.Transfers) != 0 {
			t.Errorf("unbounded schedule cut %d edges", len(cl.Transfers))
		}
		t.Log(cl)
	}
	if _, err := Schedule(SyntheticNetwork(10, 1), -1, 0); err == nil {
		t.Error("negative max_paths accepted")
	}
}

func TestScheduleOversizeSegmentReported(t *testing.T) {
	// A star: 50 leaves into one outlet. 51 reaches, 101 pairs; max_paths 200
	// keeps it whole, max_nodes 10 cannot hold it.
	ids := []int64{1}
	downs := []int64{0}
	for i := int64(2); i <= 51; i++ {
		ids, downs = append(ids, i), append(downs, 1)
	}
	net, _ := NewNetwork(ids, downs)
	cl, err := Schedule(net, 200, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Oversize) != 1 || !cl.Clusters[cl.Oversize[0]].Oversize || len(cl.Clusters) != 1 {
		t.Fatalf("oversize segment not reported: %v", cl)
	}
	// max_paths 20: the outlet merges leaves until its pairs would pass 20,
	// and keeps its count on a cut (9 leaves: 1 + 9·2 = 19 pairs).
	cl, err = Schedule(net, 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkSchedule(t, net, cl)
	if cl.Clusters[len(cl.Clusters)-1].Pairs != 19 {
		t.Errorf("outlet cluster has %d pairs, want 19", cl.Clusters[len(cl.Clusters)-1].Pairs)
	}
	if !contains(cl.String(), "41 transfers") {
		t.Errorf("summary %q", cl.String())
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func stagedSetup(t testing.TB, n int, seed uint64, irf string, f, B, T int) (*Network, Options, *DataTensor) {
	net := SyntheticNetwork(n, seed)
	o := Options{IRF: irf, Params: testParams(irf, n, int(seed)), SubSteps: f, MaxDelay: 8}
	return net, o, SyntheticRunoff(net, B, T, seed)
}

func TestStagedRecursiveEqualsPlain(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		irf      string
		n        int
		maxPaths int64
		maxNodes int
		workers  int
	}{
		{"muskingum", 6000, 1500, 300, 0},
		{"muskingum", 6000, 400, 1000, 1},
		{"nash_cascade", 5000, 3000, 500, 0},
		{"pure_lag", 5000, 2000, 200, 0},
		{"linear_storage", 5000, 800, 150, 0},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.irf, tc.maxPaths), func(t *testing.T) {
			net, o, x := stagedSetup(t, tc.n, 11, tc.irf, 3, 2, 40)
			o.Workers = tc.workers
			want := plainRecursive(t, net, o, x)
			cl, err := Schedule(net, tc.maxPaths, tc.maxNodes)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Len() < 10 || len(cl.Transfers) < 20 {
				t.Fatalf("too few clusters or transfers: %v", cl)
			}
			sr, err := NewStagedRouter(o)
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			sr.Progress = &checkProgress{t: t, total: int64(cl.Len()), calls: &calls}
			got, err := sr.Route(ctx, x, cl)
			if err != nil {
				t.Fatal(err)
			}
			if calls != cl.Len() {
				t.Errorf("progress called %d times for %d clusters", calls, cl.Len())
			}
			for i, id := range got.IDs {
				if id != net.ID(i) {
					t.Fatal("staged output is not in network order")
				}
			}
			d := stagedRelDiff(t, got, want)
			t.Logf("%v\nstaged vs plain: max relative difference %.3g", cl, d)
			if d > 1e-5 {
				t.Errorf("staged differs from plain by %.3g", d)
			}
		})
	}
}

func TestStagedDroppedTransferIsDetected(t *testing.T) {
	ctx := context.Background()
	net, o, x := stagedSetup(t, 5000, 12, "muskingum", 2, 1, 40)
	want := plainRecursive(t, net, o, x)
	cl, err := Schedule(net, 1000, 300)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the transfer carrying the most upstream reaches.
	best := 0
	for s, tr := range cl.Transfers {
		if net.Size(int(tr.From)) > net.Size(int(cl.Transfers[best].From)) {
			best = s
		}
	}
	for _, method := range []Method{Recursive, Kernel} {
		oo := o
		oo.Method = method
		oo.MaxDelay = 40
		sr, _ := NewStagedRouter(oo)
		sr.drop = best
		got, err := sr.Route(ctx, x, cl)
		if err != nil {
			t.Fatal(err)
		}
		d := stagedRelDiff(t, got, want)
		t.Logf("%s: dropping transfer %d (%d upstream reaches): max relative difference %.3g", method, best, net.Size(int(cl.Transfers[best].From)), d)
		if d < 1e-2 {
			t.Errorf("%s: a dropped transfer went unnoticed (difference %.3g)", method, d)
		}
	}
}

func TestStagedTimeChunksEqualWhole(t *testing.T) {
	ctx := context.Background()
	net, o, x := stagedSetup(t, 5000, 13, "muskingum", 4, 2, 50)
	want := plainRecursive(t, net, o, x)
	cl, err := Schedule(net, 1000, 250)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 7, 16, 49} {
		sr, _ := NewStagedRouter(o)
		sr.TimeChunk = chunk
		got, err := sr.Route(ctx, x, cl)
		if err != nil {
			t.Fatal(err)
		}
		if d := stagedRelDiff(t, got, want); d > 1e-5 {
			t.Errorf("chunk %d: differs by %.3g", chunk, d)
		}
	}
}

// lazyRunoffs yields cluster runoffs cut from x for steps [t0, t1), counting
// how many it has produced.
func lazyRunoffs(x *DataTensor, cl *Clusters, t0, t1 int, produced *int) iter.Seq2[ClusterRunoff, error] {
	return func(yield func(ClusterRunoff, error) bool) {
		for cr, err := range ClusterRunoffs(x, cl, t0, t1) {
			*produced++
			if !yield(cr, err) {
				return
			}
		}
	}
}

func TestRouteClustersIteratorEqualsWhole(t *testing.T) {
	ctx := context.Background()
	net, o, x := stagedSetup(t, 5000, 14, "muskingum", 3, 2, 30)
	want := plainRecursive(t, net, o, x)
	cl, err := Schedule(net, 800, 200)
	if err != nil {
		t.Fatal(err)
	}
	sr, _ := NewStagedRouter(o)
	co := NewCoalescer(x.B, net.IDs(), x.T)
	// Two time chunks through the streaming API, runoff produced lazily.
	for _, tc := range [][2]int{{0, 13}, {13, 30}} {
		produced := 0
		k := 0
		for d, err := range sr.RouteClusters(ctx, lazyRunoffs(x, cl, tc[0], tc[1], &produced), cl) {
			if err != nil {
				t.Fatal(err)
			}
			if d.Cluster != k || produced != k+1 {
				t.Fatalf("cluster %d yielded after %d runoffs (expected cluster %d)", d.Cluster, produced, k)
			}
			if d.Start != tc[0] {
				t.Fatalf("chunk start %d, want %d", d.Start, tc[0])
			}
			// Buffers alive: only transfers whose target has not run.
			for s, b := range sr.st.bufs {
				tr := cl.Transfers[s]
				alive := tr.SrcCluster <= k && tr.DstCluster > k
				if (b != nil) != alive {
					t.Fatalf("after cluster %d, transfer slot %d (%d → %d) alive=%v", k, s, tr.SrcCluster, tr.DstCluster, b != nil)
				}
			}
			for j, v := range d.Reaches {
				if d.Discharge.IDs[j] != net.ID(int(v)) {
					t.Fatal("discharge rows mislabelled")
				}
			}
			if err := co.Add(d.Start, d.Discharge); err != nil {
				t.Fatal(err)
			}
			k++
		}
		if k != cl.Len() {
			t.Fatalf("%d clusters yielded of %d", k, cl.Len())
		}
	}
	got, err := co.Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := stagedRelDiff(t, got, want); d > 1e-5 {
		t.Errorf("iterator run differs from plain by %.3g", d)
	}

	// WarmUp (init_upstream_discharges) then route a single cluster.
	target := cl.Len() - 1
	for k := cl.Len() - 1; k >= 0; k-- {
		if len(cl.Clusters[k].In) > 0 {
			target = k
			break
		}
	}
	sr.Reset()
	if err := sr.WarmUp(ctx, ClusterRunoffs(x, cl, 0, x.T), cl, target); err != nil {
		t.Fatal(err)
	}
	for d, err := range sr.RouteClusters(ctx, ClusterRunoffs(x, cl, 0, x.T), cl) {
		if err != nil {
			t.Fatal(err)
		}
		if d.Cluster != target {
			t.Fatalf("after warm-up got cluster %d, want %d", d.Cluster, target)
		}
		sub, _ := want.SelectIDs(d.Discharge.IDs)
		if diff := stagedRelDiff(t, d.Discharge, sub); diff > 1e-5 {
			t.Errorf("cluster %d after warm-up differs by %.3g", target, diff)
		}
		break
	}
	// A runoff for the wrong cluster is an error.
	sr.Reset()
	bad := func(yield func(ClusterRunoff, error) bool) {
		yield(ClusterRunoff{Cluster: 1, Runoff: x}, nil)
	}
	for _, err := range sr.RouteClusters(ctx, bad, cl) {
		if err == nil {
			t.Error("runoff for cluster 1 accepted first")
		}
	}
}

func TestStagedInitialQ(t *testing.T) {
	ctx := context.Background()
	net, o, x := stagedSetup(t, 3000, 15, "muskingum", 3, 1, 20)
	o.InitialQ = make([]float64, net.Len())
	for i := range o.InitialQ {
		o.InitialQ[i] = 1 + float64(i%17)
	}
	want := plainRecursive(t, net, o, x)
	cl, _ := Schedule(net, 600, 150)
	sr, _ := NewStagedRouter(o)
	got, err := sr.Route(ctx, x, cl)
	if err != nil {
		t.Fatal(err)
	}
	if d := stagedRelDiff(t, got, want); d > 1e-5 {
		t.Errorf("staged with qinit differs by %.3g", d)
	}
}

func TestStagedKernelEqualsPlain(t *testing.T) {
	ctx := context.Background()
	const n = 1500
	net := SyntheticNetwork(n, 16)
	p := Params{"k": make([]float64, n), "x": make([]float64, n)}
	for i := range p["k"] {
		p["k"][i] = 0.02 + 0.06*math.Abs(math.Sin(float64(i)))
		p["x"][i] = 0.3 * math.Abs(math.Cos(float64(i)))
	}
	o := Options{Params: p, SubSteps: 2, MaxDelay: 48, Method: Kernel}
	x := SyntheticRunoff(net, 2, 60, 16)
	kr, err := NewKernelRouter(ctx, net, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(kr.Stats())
	want, err := kr.Route(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Schedule(net, 1500, 200)
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Transfers) < 10 {
		t.Fatalf("too few transfers: %v", cl)
	}
	t.Log(cl)
	for _, tc := range []struct {
		chunk int
		keep  bool
	}{{0, false}, {9, false}, {25, true}} {
		chunk, keep := tc.chunk, tc.keep
		{
			sr, err := NewStagedRouter(o)
			if err != nil {
				t.Fatal(err)
			}
			sr.TimeChunk, sr.KeepKernels = chunk, keep
			got, err := sr.Route(ctx, x, cl)
			if err != nil {
				t.Fatal(err)
			}
			d := stagedRelDiff(t, got, want)
			t.Logf("kernel staged, time chunk %d, keep kernels %v: max relative difference %.3g", chunk, keep, d)
			if d > 1e-5 {
				t.Errorf("kernel staged (chunk %d) differs from plain kernel by %.3g", chunk, d)
			}
		}
	}
}

func TestStagedCompatCoarseTransfers(t *testing.T) {
	// DiffRoute's coarse transfers are exact at f = 1 with the lti rule.
	ctx := context.Background()
	const n = 1200
	net := SyntheticNetwork(n, 17)
	o := Options{IRF: "linear_storage", Params: Constant(n, map[string]float64{"tau": 0.05}), SubSteps: 1, MaxDelay: 16, Compat: "diffroute"}
	x := SyntheticRunoff(net, 1, 30, 17)
	kr, err := NewKernelRouter(ctx, net, o)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := kr.Route(ctx, x)
	cl, _ := Schedule(net, 1000, 200)
	sr, err := NewStagedRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sr.Route(ctx, x, cl)
	if err != nil {
		t.Fatal(err)
	}
	d := stagedRelDiff(t, got, want)
	t.Logf("compat diffroute, coarse transfers: max relative difference %.3g (%d transfers)", d, len(cl.Transfers))
	if d > 1e-3 {
		t.Errorf("coarse transfers differ by %.3g", d)
	}
}

func TestKernelTimeChunksWithWarmup(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(800, 18)
	o := Options{Params: testParams("muskingum", 800, 3), SubSteps: 2, MaxDelay: 10, Method: Kernel}
	x := SyntheticRunoff(net, 1, 45, 18)
	kr, err := NewKernelRouter(ctx, net, o)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := kr.Route(ctx, x)
	co := NewCoalescer(1, net.IDs(), x.T)
	for tc := range TimeChunks(x.T, 8, KernelWarmup(o)) {
		y, err := kr.RouteWarm(ctx, x.SliceTime(tc.Start-tc.Warm, tc.End), tc.Warm)
		if err != nil {
			t.Fatal(err)
		}
		if err := co.Add(tc.Start, y); err != nil {
			t.Fatal(err)
		}
	}
	got, err := co.Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := stagedRelDiff(t, got, want); d > 1e-6 {
		t.Errorf("chunked kernel differs by %.3g", d)
	}
	// A missing chunk is reported.
	co = NewCoalescer(1, net.IDs(), x.T)
	_ = co.Add(0, want.SliceTime(0, 10))
	if _, err := co.Result(); err == nil {
		t.Error("incomplete coalescing accepted")
	}
	if err := co.Add(5, want.SliceTime(0, 10)); err == nil {
		t.Error("overlapping chunk accepted")
	}
}

func TestSelectedOutputsEqualWhole(t *testing.T) {
	ctx := context.Background()
	net, o, x := stagedSetup(t, 5000, 19, "muskingum", 3, 2, 30)
	want := plainRecursive(t, net, o, x)
	// Gauges: every 97th reach in PreOrder plus the largest outlet.
	var gauges []int64
	for p, v := range net.PreOrder() {
		if p%97 == 5 {
			gauges = append(gauges, net.ID(int(v)))
		}
	}
	sel, err := Select(net, o, gauges)
	if err != nil {
		t.Fatal(err)
	}
	if sel.Net.Len() >= net.Len() {
		t.Fatalf("selection did not shrink the network: %d reaches", sel.Net.Len())
	}
	got, err := sel.Route(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	wsub, _ := want.SelectIDs(gauges)
	if d := stagedRelDiff(t, got, wsub); d > 1e-5 {
		t.Errorf("selected outputs differ by %.3g", d)
	}
	t.Logf("%d gauges need %d of %d reaches", len(gauges), sel.Net.Len(), net.Len())

	// Space chunks: every reach, 700 outputs per block.
	co := NewCoalescer(x.B, net.IDs(), x.T)
	blocks := 0
	for sel, err := range SpaceChunks(net, o, nil, 700) {
		if err != nil {
			t.Fatal(err)
		}
		y, err := sel.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		if err := co.Add(0, y); err != nil {
			t.Fatal(err)
		}
		blocks++
	}
	got, err = co.Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := stagedRelDiff(t, got, want); d > 1e-5 {
		t.Errorf("space-chunked run differs by %.3g", d)
	}
	if blocks != 8 {
		t.Errorf("%d blocks, want 8", blocks)
	}
	// Staged routing of a selection.
	cl, _ := Schedule(sel.Net, 500, 100)
	sr, _ := NewStagedRouter(sel.Opts)
	ys, err := sr.Route(ctx, x, cl)
	if err != nil {
		t.Fatal(err)
	}
	ys, _ = ys.SelectIDs(gauges)
	if d := stagedRelDiff(t, ys, wsub); d > 1e-5 {
		t.Errorf("staged selection differs by %.3g", d)
	}
	if _, err := Select(net, o, []int64{-5}); err == nil {
		t.Error("unknown gauge accepted")
	}
}

func TestRowBlocksAndTimeChunks(t *testing.T) {
	var got []RowBlock
	for b := range RowBlocks(10, 4) {
		got = append(got, b)
	}
	if fmt.Sprint(got) != "[{0 4} {4 8} {8 10}]" {
		t.Errorf("row blocks %v", got)
	}
	var tcs []TimeChunk
	for tc := range TimeChunks(10, 4, 3) {
		tcs = append(tcs, tc)
	}
	if fmt.Sprint(tcs) != "[{0 0 4 0} {1 4 8 3} {2 8 10 3}]" {
		t.Errorf("time chunks %v", tcs)
	}
}

func BenchmarkStagedRecursive20k(b *testing.B) {
	net, o, x := stagedSetup(b, 20000, 1, "muskingum", 24, 1, 100)
	cl, err := Schedule(net, 20000, 2000)
	if err != nil {
		b.Fatal(err)
	}
	sr, _ := NewStagedRouter(o)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sr.Route(ctx, x, cl); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(net.Len()*x.T*24)*float64(b.N)/b.Elapsed().Seconds()/1e6, "M-reach-substeps/s")
	b.ReportMetric(float64(cl.Len()), "clusters")
}

func BenchmarkStagedKernel5k(b *testing.B) {
	net, o, x := stagedSetup(b, 5000, 1, "muskingum", 4, 1, 200)
	o.Method, o.MaxDelay = Kernel, 16
	cl, err := Schedule(net, 20000, 2000)
	if err != nil {
		b.Fatal(err)
	}
	sr, _ := NewStagedRouter(o)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sr.Route(ctx, x, cl); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cl.Len()), "clusters")
}

// checkProgress checks that a staged run reports each cluster once, in
// order, between one Start and one Done.
type checkProgress struct {
	t       *testing.T
	total   int64
	calls   *int
	started bool
}

func (p *checkProgress) Start(name string, total int64) {
	if p.started || total != p.total {
		p.t.Errorf("Start(%q, %d): started %v, want total %d", name, total, p.started, p.total)
	}
	p.started = true
}

func (p *checkProgress) Update(done int64) {
	*p.calls++
	if !p.started || done != int64(*p.calls) {
		p.t.Errorf("Update(%d) at call %d (started %v)", done, *p.calls, p.started)
	}
}

func (p *checkProgress) Done(err error) {
	if !p.started || err != nil || int64(*p.calls) != p.total {
		p.t.Errorf("Done(%v) after %d of %d clusters (started %v)", err, *p.calls, p.total, p.started)
	}
	p.started = false
}
