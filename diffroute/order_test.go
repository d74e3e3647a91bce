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

// TestInRoutingOrder: a network renumbered by InRoutingOrder is routed by
// several workers reach by reach exactly as the original (the same parts
// and trunk, renumbered: bit for bit, initial discharge included) and
// is prepared without deriving its orders; derived later, they are those
// of the same network built from ids and downstream positions.
func TestInRoutingOrder(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(6000, 4)
	for _, irf := range []string{"muskingum", "nash_cascade", "hayami"} {
		for _, workers := range []int{1, 2, 3} {
			onet, order, err := net.InRoutingOrder(workers)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(order, RoutingOrder(net, workers)) {
				t.Fatalf("%d workers: the order is not RoutingOrder", workers)
			}
			for k, i := range order {
				if onet.ID(k) != net.ID(int(i)) || (net.Down(int(i)) < 0) != (onet.Down(k) < 0) ||
					(net.Down(int(i)) >= 0 && onet.ID(onet.Down(k)) != net.ID(net.Down(int(i)))) {
					t.Fatalf("%d workers: reach %d of the renumbered network is not reach %d", workers, k, i)
				}
			}
			p := testParams(irf, net.Len(), 2)
			q0 := make([]float64, net.Len())
			for i := range q0 {
				q0[i] = float64(i%17) + 0.25
			}
			for _, members := range []int{1, 4} {
				x := SyntheticRunoff(net, members, 30, 6)
				opts := Options{IRF: irf, Params: p, SubSteps: 12, Workers: workers, MaxDelay: 8, InitialQ: q0}
				rr, err := NewRecursiveRouter(ctx, net, opts)
				if err != nil {
					t.Fatal(err)
				}
				want, err := rr.Route(ctx, x)
				if err != nil {
					t.Fatal(err)
				}
				opts.Params = permuteParams(p, order)
				opts.InitialQ = make([]float64, len(order))
				for k, i := range order {
					opts.InitialQ[k] = q0[i]
				}
				tr, err := NewRecursiveRouter(ctx, onet, opts)
				if err != nil {
					t.Fatal(err)
				}
				tx, err := x.SelectIDs(onet.IDs())
				if err != nil {
					t.Fatal(err)
				}
				if err := tr.RouteTo(ctx, tx, tx); err != nil {
					t.Fatal(err)
				}
				// Ensembles and one worker route in the network's reverse
				// pre-order, which is derived then.
				if members < workers && onet.topo != nil {
					t.Fatalf("%s, %d workers: routing derived the renumbered network's orders", irf, workers)
				}
				// Split among workers, the reaches are routed in the same
				// order as the original's, renumbered; an ensemble's
				// members are routed in each network's reverse pre-order,
				// which may sum tributaries in another order.
				tol := 0.0
				if members >= workers {
					tol = 2e-6
				}
				for b := 0; b < x.B; b++ {
					for k, i := range order {
						g, w := tx.Series(b, k), want.Series(b, int(i))
						peak := 0.0
						for _, v := range w {
							peak = max(peak, math.Abs(float64(v)))
						}
						for s := range w {
							if d := math.Abs(float64(g[s] - w[s])); d > tol*peak {
								t.Fatalf("%s, %d workers, %d members: reach %d step %d: %g, want %g", irf, workers, members, net.ID(int(i)), s, g[s], w[s])
							}
						}
					}
				}
			}
		}
	}
	// Derived late, the orders are those derived at construction.
	onet, _, err := net.InRoutingOrder(2)
	if err != nil {
		t.Fatal(err)
	}
	down := make([]int, onet.Len())
	for i := range down {
		down[i] = onet.Down(i)
	}
	eager, err := NewNetworkIndex(onet.IDs(), down)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(onet.PreOrder(), eager.PreOrder()) || onet.Pairs() != eager.Pairs() || onet.MaxDepth() != eager.MaxDepth() {
		t.Fatal("late-derived pre-order, pairs or depth differ")
	}
	for i := 0; i < onet.Len(); i++ {
		if onet.Pre(i) != eager.Pre(i) || onet.Size(i) != eager.Size(i) || onet.Depth(i) != eager.Depth(i) || !slices.Equal(onet.Upstream(i), eager.Upstream(i)) {
			t.Fatalf("reach %d: late-derived orders differ", i)
		}
	}
}
