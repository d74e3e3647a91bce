package diffroute

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
)

func TestNetworkDerivedOrders(t *testing.T) {
	net := SyntheticNetwork(5000, 9)
	n := net.Len()
	// Independent upstream-closure sizes and depths by walking down from each reach.
	size := make([]int, n)
	depth := make([]int, n)
	pairs := int64(0)
	for s := 0; s < n; s++ {
		for v := s; v >= 0; v = net.Down(v) {
			size[v]++
			depth[s]++
		}
		pairs += int64(depth[s])
	}
	if pairs != net.Pairs() {
		t.Fatalf("pairs %d, want %d", net.Pairs(), pairs)
	}
	order := net.PreOrder()
	for d := 0; d < n; d++ {
		if net.Size(d) != size[d] || net.Depth(d) != depth[d] {
			t.Fatalf("reach %d: size %d depth %d, want %d %d", d, net.Size(d), net.Depth(d), size[d], depth[d])
		}
		if order[net.Pre(d)] != int32(d) {
			t.Fatalf("Pre and PreOrder disagree at %d", d)
		}
		// The upstream closure of d is the contiguous run after it.
		for _, s := range order[net.Pre(d) : net.Pre(d)+net.Size(d)] {
			v := int(s)
			for v >= 0 && v != d {
				v = net.Down(v)
			}
			if v != d {
				t.Fatalf("reach %d in the run of %d does not drain into it", s, d)
			}
		}
		for _, u := range net.Upstream(d) {
			if net.Down(int(u)) != d {
				t.Fatalf("upstream list of %d holds %d", d, u)
			}
		}
	}
}

func TestNetworkErrors(t *testing.T) {
	cases := []struct {
		ids, down []int64
		index     int
		want      string
	}{
		{[]int64{1, 2, 1}, []int64{2, 0, 0}, 2, "duplicate reach id"},
		{[]int64{1, 0}, []int64{0, 0}, 1, "positive"},
		{[]int64{1, -5}, []int64{0, 0}, 1, "positive"},
		{[]int64{1, 2}, []int64{2, 2}, 1, "drains into itself"},
		{[]int64{1, 2, 3, 4}, []int64{2, 3, 1, 0}, 0, "cycle 1 -> 2 -> 3 -> 1"},
		{[]int64{7, 1, 2, 3}, []int64{1, 2, 3, 1}, 0, "cycle"},
	}
	for _, c := range cases {
		_, err := NewNetwork(c.ids, c.down)
		var ne *NetworkError
		if !errors.As(err, &ne) {
			t.Errorf("%v -> %v: error %v, want a *NetworkError", c.ids, c.down, err)
			continue
		}
		if ne.Index != c.index || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v -> %v: %v (index %d), want index %d and %q", c.ids, c.down, err, ne.Index, c.index, c.want)
		}
	}
	if _, err := NewNetwork([]int64{1, 2}, []int64{0}); err == nil {
		t.Error("length mismatch accepted")
	}
	// Downstream ids 0, -1 or unknown mark outlets.
	net, err := NewNetwork([]int64{1, 2, 3}, []int64{0, -1, 99})
	if err != nil || len(net.Outlets()) != 3 {
		t.Errorf("outlets: %v, %v", net, err)
	}
}

func TestDataTensorOps(t *testing.T) {
	x := NewDataTensor(2, []int64{10, 20, 30}, 5)
	for k := range x.Data {
		x.Data[k] = float32(k)
	}
	x.Times = []string{"a", "b", "c", "d", "e"}
	y, err := x.SelectIDs([]int64{30, 10})
	if err != nil {
		t.Fatal(err)
	}
	if y.At(1, 0, 2) != x.At(1, 2, 2) || y.At(0, 1, 4) != x.At(0, 0, 4) {
		t.Error("SelectIDs picked the wrong rows")
	}
	if _, err := x.SelectIDs([]int64{40}); err == nil {
		t.Error("unknown id accepted")
	}
	parts := []*DataTensor{x.SliceTime(0, 2), x.SliceTime(2, 2), x.SliceTime(2, 5)}
	z, err := ConcatTime(parts...)
	if err != nil {
		t.Fatal(err)
	}
	for k := range x.Data {
		if z.Data[k] != x.Data[k] {
			t.Fatal("slice + concat is not the identity")
		}
	}
	if strings.Join(z.Times, "") != "abcde" {
		t.Errorf("labels %v", z.Times)
	}
	tr := x.Transpose()
	if tr[(1*x.T+3)*x.N+2] != x.At(1, 2, 3) {
		t.Error("Transpose layout")
	}
	rows := [][]float32{{1, 2, 3}, {4, 5, 6}}
	w, err := FromTimeMajor([]int64{10, 20, 30}, rows)
	if err != nil || w.At(0, 2, 1) != 6 {
		t.Errorf("FromTimeMajor: %v %v", w, err)
	}
	bad := *x
	bad.IDs = bad.IDs[:2]
	if bad.Validate() == nil {
		t.Error("Validate accepted 2 ids for 3 rows")
	}
}

// A user-registered IRF (a two-tap moving average) routes like the built-ins.
func TestRegisterIRF(t *testing.T) {
	name := fmt.Sprintf("test_split_%d", 1)
	err := Register(IRF{Name: name, Params: []string{"w"}, Impulse: func(h, p []float64, r float64) error {
		if p[0] < 0 || p[0] > 1 {
			return fmt.Errorf("w = %v must be in [0, 1]", p[0])
		}
		clear(h)
		h[0], h[1] = 1-p[0], p[0]
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if Register(IRF{Name: name, Impulse: func(h, p []float64, r float64) error { return nil }}) == nil {
		t.Error("duplicate registration accepted")
	}
	net, _ := NewNetwork([]int64{1, 2}, []int64{2, 0})
	x := NewDataTensor(1, []int64{1, 2}, 4)
	x.Set(0, 0, 0, 1) // a unit pulse into the upstream reach
	rr, err := NewRecursiveRouter(context.Background(), net, Options{IRF: name, Params: Constant(2, map[string]float64{"w": 0.25}), Average: AverageEnd, MaxDelay: 2})
	if err != nil {
		t.Fatal(err)
	}
	y, err := rr.Route(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	// Two reaches in series: [0.75, 0.25] ⊛ [0.75, 0.25] = [0.5625, 0.375, 0.0625].
	want := []float32{0.5625, 0.375, 0.0625, 0}
	for q, v := range want {
		if math.Abs(float64(y.At(0, 1, q)-v)) > 1e-7 {
			t.Errorf("step %d: %v, want %v", q, y.At(0, 1, q), v)
		}
	}
	if _, err := NewRecursiveRouter(context.Background(), net, Options{IRF: name, Params: Constant(2, map[string]float64{"w": 2})}); err == nil {
		t.Error("the IRF's own parameter check was bypassed")
	}
	names := IRFNames()
	if !sort.StringsAreSorted(names) || len(names) < 7 {
		t.Errorf("IRFNames = %v", names)
	}
}

// The kernel method agrees with the recursive one on a network of thousands
// of reaches when MaxDelay covers the response.
func TestKernelAgreesWithRecursiveLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 3,000-reach kernel")
	}
	ctx := context.Background()
	net := SyntheticNetwork(3000, 21)
	x := SyntheticRunoff(net, 1, 120, 2)
	p := Params{"k": make([]float64, net.Len()), "x": make([]float64, net.Len())}
	for i := range p["k"] {
		p["k"][i] = 0.02 + 0.06*math.Abs(math.Sin(float64(i)))
		p["x"][i] = 0.3 * math.Abs(math.Cos(float64(i)))
	}
	opts := Options{Params: p, SubSteps: 2, MaxDelay: 40}
	rr, err := NewRecursiveRouter(context.Background(), net, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := rr.Route(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	opts.Method = Kernel
	kr, err := NewKernelRouter(ctx, net, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := kr.Route(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	var nses []float64
	for i := 0; i < net.Len(); i++ {
		w, g := want.Series(0, i), got.Series(0, i)
		mean := 0.0
		for _, v := range w {
			mean += float64(v) / float64(len(w))
		}
		num, den := 0.0, 0.0
		for q := range w {
			num += (float64(g[q]) - float64(w[q])) * (float64(g[q]) - float64(w[q]))
			den += (float64(w[q]) - mean) * (float64(w[q]) - mean)
		}
		nses = append(nses, 1-num/den)
	}
	sort.Float64s(nses)
	t.Logf("kernel vs recursive on %d reaches (depth %d, %d pairs): median NSE %.9f, min %.9f, truncated mass max %.2g",
		net.Len(), net.MaxDepth(), net.Pairs(), nses[len(nses)/2], nses[0], kr.Stats().TruncatedMassMax)
	if nses[len(nses)/2] < 0.9999 {
		t.Errorf("median NSE %.6f < 0.9999", nses[len(nses)/2])
	}
}

func TestBatchMemberAndStack(t *testing.T) {
	net := SyntheticNetwork(50, 1)
	a, b := SyntheticRunoff(net, 1, 7, 1), SyntheticRunoff(net, 2, 7, 2)
	s, err := StackBatch(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if s.B != 3 || s.Member(0).At(0, 4, 3) != a.At(0, 4, 3) || s.Member(2).At(0, 9, 6) != b.At(1, 9, 6) {
		t.Fatal("stacked members are not the inputs")
	}
	m := s.Member(1)
	m.Set(0, 0, 0, -1) // a view: writes reach the stack
	if s.At(1, 0, 0) != -1 || m.Validate() != nil {
		t.Error("Member is not a valid view")
	}
	if _, err := StackBatch(a, SyntheticRunoff(SyntheticNetwork(40, 1), 1, 7, 1)); err == nil {
		t.Error("stacked tensors of different networks")
	}
	// Routing a stacked ensemble equals routing each member alone.
	opts := Options{Params: testParams("muskingum", net.Len(), 1), SubSteps: 3}
	rr, _ := NewRecursiveRouter(context.Background(), net, opts)
	all, err := rr.Route(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < s.B; k++ {
		one, _ := NewRecursiveRouter(context.Background(), net, opts)
		y, err := one.Route(context.Background(), s.Member(k))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range y.Data {
			if all.Member(k).Data[i] != v {
				t.Fatalf("member %d differs when routed in a batch", k)
			}
		}
	}
}
