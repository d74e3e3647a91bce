package diffroute

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// partitionRef is partition as it was, with its own traversal per
// subtree: the reference.
func partitionRef(net *Network, workers int) (parts [][]int32, trunk []int32) {
	n := net.Len()
	// post lists root's subtree in post-order with upstream reaches in
	// increasing position: a network renumbered in this order (Reorder)
	// lists it as 0, 1, 2, …, so its reaches are visited in memory order.
	var stack []int32
	post := func(root int32) []int32 {
		out := make([]int32, 0, net.Size(int(root)))
		stack = append(stack[:0], root)
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			out = append(out, v)
			stack = append(stack, net.Upstream(int(v))...)
		}
		slices.Reverse(out)
		return out
	}
	if workers <= 1 || n < 1024 {
		all := make([]int32, 0, n)
		for _, o := range net.Outlets() {
			all = append(all, post(int32(o))...)
		}
		return [][]int32{all}, nil
	}
	limit := max(1, n/(2*workers))
	var cands []int32
	for _, o := range net.Outlets() {
		cands = append(cands, int32(o))
	}
	for {
		// Linear scan for the largest candidate is fine: splits are few.
		best := -1
		for k, c := range cands {
			if net.Size(int(c)) > limit && (best < 0 || net.Size(int(c)) > net.Size(int(cands[best]))) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		c := cands[best]
		cands[best] = cands[len(cands)-1]
		cands = cands[:len(cands)-1]
		trunk = append(trunk, c)
		cands = append(cands, net.Upstream(int(c))...)
	}
	slices.SortFunc(cands, func(a, b int32) int { return cmp.Compare(net.Size(int(b)), net.Size(int(a))) })
	load := make([]int, workers)
	parts = make([][]int32, workers)
	for _, c := range cands {
		w := 0
		for k := range load {
			if load[k] < load[w] {
				w = k
			}
		}
		load[w] += net.Size(int(c))
		parts[w] = append(parts[w], post(c)...)
	}
	// Upstream first: descending pre-order position.
	slices.SortFunc(trunk, func(a, b int32) int { return cmp.Compare(net.Pre(int(b)), net.Pre(int(a))) })
	return parts, trunk
}

// TestPartitionMatchesDFS: parts and trunk read off the pre-order are
// those of a traversal per subtree, on shuffled networks (pre-order and
// index order differ) for one worker and several.
func TestPartitionMatchesDFS(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		base := SyntheticNetwork(3000, seed)
		rng := rand.New(rand.NewPCG(seed, 9))
		perm := make([]int32, base.Len())
		for i := range perm {
			perm[i] = int32(i)
		}
		rng.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		net, err := base.Reorder(perm)
		if err != nil {
			t.Fatal(err)
		}
		for _, workers := range []int{1, 2, 3, 5} {
			parts, trunk := partition(net, workers)
			wparts, wtrunk := partitionRef(net, workers)
			if !slices.EqualFunc(parts, wparts, slices.Equal) || !slices.Equal(trunk, wtrunk) {
				t.Fatalf("seed %d, workers %d: partition differs from the traversal's", seed, workers)
			}
		}
	}
}
