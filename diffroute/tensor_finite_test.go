package diffroute

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCheckFiniteNamesTheFirstBadValue(t *testing.T) {
	x := NewDataTensor(2, []int64{10, 20, 30}, 4)
	for k := range x.Data {
		x.Data[k] = float32(k) * 1e30
	}
	if err := x.CheckFinite(); err != nil {
		t.Fatalf("finite tensor: %v", err)
	}
	cases := []struct {
		b, i, t int
		v       float32
		times   []string
		want    string
	}{
		{0, 0, 0, float32(math.NaN()), nil, "reach 10 at step 0 is NaN"},
		{1, 2, 3, float32(math.Inf(1)), nil, "reach 30 at step 3 of batch member 1 is +Inf"},
		{0, 1, 2, float32(math.Inf(-1)), []string{"a", "b", "c", "d"}, "reach 20 at time c is -Inf"},
	}
	for _, c := range cases {
		y := x.Clone()
		y.Times = c.times
		y.Set(c.b, c.i, c.t, c.v)
		if c.b == 1 { // a later value must not win over the first
			y.Set(1, 2, 3, c.v)
		}
		err := y.CheckFinite()
		var nf *NotFiniteError
		if !errors.As(err, &nf) || nf.Member != c.b || nf.ID != y.IDs[c.i] || nf.Step != c.t {
			t.Fatalf("%v at (%d,%d,%d): got %#v", c.v, c.b, c.i, c.t, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("message %q, want %q", err, c.want)
		}
	}
	// Overflow: finite runoff past float32's range routes to +Inf, which
	// CheckFinite reports on the output.
	net, err := NewNetwork([]int64{1, 2}, []int64{2, 0})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRecursiveRouter(context.Background(), net, Options{IRF: "pure_lag", Params: map[string][]float64{"delay": {0, 0}}, SubSteps: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := NewDataTensor(1, []int64{1, 2}, 3)
	in.Set(0, 0, 1, 3e38)
	in.Set(0, 1, 1, 3e38)
	q, err := r.Route(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.CheckFinite(); err != nil {
		t.Fatalf("runoff: %v", err)
	}
	err = q.CheckFinite()
	if !errors.As(err, new(*NotFiniteError)) || !strings.HasPrefix(err.Error(), "reach 2 at step ") || !strings.HasSuffix(err.Error(), " is +Inf") {
		t.Fatalf("overflowed discharge: %v", err)
	}
}

// A large tensor is scanned in parts on every core: the first bad value in
// order still wins over later ones in other parts, at part and block edges
// too, and denormals, zeros and the largest finite values are finite.
func TestCheckFiniteLargeFindsTheFirst(t *testing.T) {
	const n, steps = 3000, 1000 // 3 M values: three parts
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	x := NewDataTensor(1, ids, steps)
	for k := range x.Data {
		x.Data[k] = [...]float32{0, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, -1.5}[k%5]
	}
	if err := x.CheckFinite(); err != nil {
		t.Fatalf("finite tensor: %v", err)
	}
	for _, ks := range [][]int{{0}, {63, 64}, {1 << 20, 2 << 20}, {2<<20 - 1, len(x.Data) - 1}, {len(x.Data) - 1}, {1500000, 1499999}} {
		y := x.Clone()
		first := len(y.Data)
		for j, k := range ks {
			y.Data[k] = []float32{float32(math.NaN()), float32(math.Inf(-1))}[j%2]
			first = min(first, k)
		}
		var nf *NotFiniteError
		if err := y.CheckFinite(); !errors.As(err, &nf) || nf.ID != ids[first/steps] || nf.Step != first%steps {
			t.Errorf("bad values at %v: got %v, want reach %d step %d", ks, err, ids[first/steps], first%steps)
		}
	}
}
