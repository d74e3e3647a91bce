package diffroute

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// NewNetworkIndex checks without a map of ids: it must accept, build and
// reject exactly like NewNetwork on the same network given by ids.
func TestNewNetworkIndexMatchesNewNetwork(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 3000; trial++ {
		n := 1 + rng.IntN(12)
		ids := make([]int64, n)
		down := make([]int, n)
		for i := range ids {
			ids[i] = int64(rng.IntN(3*n)) - 1 // some non-positive, some repeated
			if trial%3 == 0 {
				ids[i] = int64(i + 1) // valid ids: exercise the graph checks
			}
			down[i] = rng.IntN(n+2) - 2 // -2 … n-1: outlets, self-loops, cycles
		}
		downIDs := make([]int64, n)
		for i, d := range down {
			if d < 0 {
				downIDs[i] = -1
			} else {
				downIDs[i] = ids[d]
			}
		}
		want, werr := NewNetwork(ids, downIDs)
		got, gerr := NewNetworkIndex(ids, down)
		if fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Fatalf("ids %v down %v: error %v, NewNetwork %v", ids, down, gerr, werr)
		}
		if werr != nil {
			continue
		}
		for i := 0; i < n; i++ {
			if got.Down(i) != want.Down(i) || got.Size(i) != want.Size(i) || got.Depth(i) != want.Depth(i) {
				t.Fatalf("ids %v down %v: reach %d differs", ids, down, i)
			}
			if k, ok := got.Index(ids[i]); !ok || k != i {
				t.Fatalf("ids %v: Index(%d) = %d, %v", ids, ids[i], k, ok)
			}
		}
		if !slices.Equal(got.PreOrder(), want.PreOrder()) {
			t.Fatalf("ids %v down %v: pre-order differs", ids, down)
		}
		if _, ok := got.Index(1 << 40); ok {
			t.Fatal("Index found an absent id")
		}
	}
	if _, err := NewNetworkIndex([]int64{1, 2}, []int{5, -1}); err == nil {
		t.Fatal("position beyond the network accepted")
	}
}
