package diffroute

import (
	"context"
	"math"
	"slices"
	"testing"
)

// permuteParams gives reach k of a reordered network the parameters of
// reach order[k] of the original.
func permuteParams(p Params, order []int32) Params {
	q := Params{}
	for name, v := range p {
		w := make([]float64, len(order))
		for k, i := range order {
			w[k] = v[i]
		}
		q[name] = w
	}
	return q
}

// TestReorderRoutesTheSame: a network renumbered in RoutingOrder is
// visited in memory order (its own routing order is 0, 1, 2, …) and routes
// to the same discharge, reach by reach, to float32 rounding (tributaries
// may be summed in another order); routing in place into the runoff tensor
// gives the same numbers as routing into a fresh one.
func TestReorderRoutesTheSame(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(5000, 3)
	for _, irf := range []string{"muskingum", "nash_cascade", "hayami"} {
		for _, workers := range []int{1, 2, 3} {
			order := RoutingOrder(net, workers)
			tnet, err := net.Reorder(order)
			if err != nil {
				t.Fatal(err)
			}
			again := RoutingOrder(tnet, workers)
			// Whole subtrees come in memory order; the trunk (a few
			// reaches) and the packing of subtrees into workers may not.
			inOrder := 0
			for k := 1; k < len(again); k++ {
				if again[k] == again[k-1]+1 {
					inOrder++
				}
			}
			if inOrder < net.Len()-net.Len()/50 {
				t.Fatalf("%s, %d workers: only %d of %d reaches of the reordered network follow the one before in memory", irf, workers, inOrder, net.Len())
			}
			x := SyntheticRunoff(net, 2, 30, 5)
			p := testParams(irf, net.Len(), 2)
			opts := Options{IRF: irf, Params: p, SubSteps: 12, Workers: workers, MaxDelay: 8}
			rr, err := NewRecursiveRouter(ctx, net, opts)
			if err != nil {
				t.Fatal(err)
			}
			want, err := rr.Route(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			opts.Params = permuteParams(p, order)
			tr, err := NewRecursiveRouter(ctx, tnet, opts)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := x.SelectIDs(tnet.IDs())
			if err != nil {
				t.Fatal(err)
			}
			fresh, err := tr.Route(ctx, tx)
			if err != nil {
				t.Fatal(err)
			}
			tr.Reset()
			if err := tr.RouteTo(ctx, tx, tx); err != nil { // in place
				t.Fatal(err)
			}
			if !slices.Equal(fresh.Data, tx.Data) {
				t.Fatalf("%s, %d workers: routing in place differs from routing into a fresh tensor", irf, workers)
			}
			worst := 0.0
			for b := 0; b < x.B; b++ {
				for k, i := range order {
					w, g := want.Series(b, int(i)), tx.Series(b, k)
					peak := 0.0
					for _, v := range w {
						peak = max(peak, math.Abs(float64(v)))
					}
					for s := range w {
						if d := math.Abs(float64(g[s] - w[s])); d > 0 {
							worst = max(worst, d/peak)
						}
					}
				}
			}
			if worst > 2e-6 {
				t.Fatalf("%s, %d workers: reordered network differs by %.3g of a reach's peak", irf, workers, worst)
			}
		}
	}
}

func TestReorderRefusesBadOrders(t *testing.T) {
	net := SyntheticNetwork(10, 1)
	for _, order := range [][]int32{{0, 1}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 8}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 10}} {
		if _, err := net.Reorder(order); err == nil {
			t.Errorf("Reorder(%v) accepted", order)
		}
	}
}
