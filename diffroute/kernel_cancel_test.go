package diffroute

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestConvRowBlockStopsWithinTheBlock: a closed done channel stops a row
// block before its first pair (an outlet's row holds every pair of its
// basin, so checking only between blocks could take seconds).
func TestConvRowBlockStopsWithinTheBlock(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(300, 4)
	o := Options{IRF: "muskingum", Params: kRandomParams(rand.New(rand.NewPCG(1, 2)), "muskingum", net.Len()), SubSteps: 2, MaxDelay: 6, BlockSize: 512}
	kr, err := NewKernelRouter(ctx, net, o)
	if err != nil {
		t.Fatal(err)
	}
	if nb := len(kr.BlockSparse().RowTiles) - 1; nb != 1 {
		t.Fatalf("%d row blocks, want one", nb)
	}
	x := SyntheticRunoff(net, 1, 50, 3)
	want, err := kr.Route(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	xrow := make([]int, net.Len())
	for p, v := range kr.BlockSparse().Order {
		xrow[p] = int(v)
	}
	closed := make(chan struct{})
	close(closed)
	for _, c := range []struct {
		done <-chan struct{}
		full bool
	}{{closed, false}, {nil, true}} {
		y := NewDataTensor(1, net.IDs(), x.T)
		kr.convRowBlock(c.done, x, y, xrow, 0, 0)
		nonzero := slices.ContainsFunc(y.Data, func(v float32) bool { return v != 0 })
		switch {
		case !c.full && nonzero:
			t.Error("a closed done channel did not stop the row block")
		case c.full && !slices.Equal(y.Data, want.Data):
			t.Error("an open done channel: the row block differs from Route")
		}
	}
}
