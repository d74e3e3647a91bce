package diffroute

import (
	"fmt"
	"runtime"
	"slices"
	"sync"

	idsort "github.com/diffroute-go/route/internal/ids"
)

// Network is a river network: a forest of reaches, each draining into at most
// one downstream reach. Reaches keep the position they were given in (index
// i = the i-th id passed to NewNetwork); derived orders are available through
// methods. A Network is immutable once built and safe for concurrent use.
type Network struct {
	ids       []int64
	index     map[int64]int32 // built on first use when the network came with positions
	indexOnce sync.Once
	down      []int32 // index of the downstream reach, -1 at an outlet

	// The orders derived from down: built with the network, or on first
	// use for a renumbered one (Reorder), which a router in its own order
	// may never need; a renumbered network of millions of reaches then
	// holds only ids and down.
	topoOnce sync.Once
	topo     *topology

	// plan is the recursive router's partition of a network renumbered by
	// InRoutingOrder, known without a traversal; nil otherwise.
	plan *routingPlan
}

// topology holds the orders derived from the downstream links.
type topology struct {
	upStart []int32 // CSR of direct upstream reaches: up[upStart[i]:upStart[i+1]]
	up      []int32

	order []int32 // DFS pre-order of the reversed graph: outlet first, then its upstream subtrees
	pre   []int32 // pre[i] = position of reach i in order
	size  []int32 // reaches in the upstream closure of i, i included
	depth []int32 // reaches on the path from i to its outlet, both included
	pairs int64   // closure pairs: Σ depth
}

// t returns the network's topology, deriving it on first use.
func (net *Network) t() *topology {
	net.topoOnce.Do(func() {
		if net.topo != nil {
			return
		}
		t, bad := deriveTopology(net.down)
		if bad >= 0 {
			// Only renumbered networks derive late, and a renumbering of
			// a network without cycles has none.
			panic(fmt.Sprintf("diffroute: reach %d is on a cycle in a renumbered network", net.ids[bad]))
		}
		net.topo = t
	})
	return net.topo
}

// NetworkError reports a problem with one reach of a network being built.
// Index is the reach's position in the slices given to NewNetwork, so that
// readers can translate it into a file and line.
type NetworkError struct {
	Index int
	ID    int64
	Msg   string
}

func (e *NetworkError) Error() string {
	return fmt.Sprintf("reach %d (position %d): %s", e.ID, e.Index, e.Msg)
}

// NewNetwork builds a network from reach ids and the id of each reach's
// downstream reach. A downstream id that is zero, negative or not among ids
// marks an outlet. Duplicate ids, non-positive ids, self-loops and cycles are
// errors of type *NetworkError.
func NewNetwork(ids, downIDs []int64) (*Network, error) {
	if len(ids) != len(downIDs) {
		return nil, fmt.Errorf("diffroute: %d reach ids but %d downstream ids", len(ids), len(downIDs))
	}
	n := len(ids)
	net := &Network{
		ids:   slices.Clone(ids),
		index: make(map[int64]int32, n),
		down:  make([]int32, n),
	}
	for i, id := range ids {
		if id <= 0 {
			return nil, &NetworkError{i, id, "reach ids must be positive"}
		}
		if j, dup := net.index[id]; dup {
			return nil, &NetworkError{i, id, fmt.Sprintf("duplicate reach id (first at position %d)", j)}
		}
		net.index[id] = int32(i)
	}
	for i, d := range downIDs {
		if d == ids[i] {
			return nil, &NetworkError{i, ids[i], "reach drains into itself"}
		}
		j, ok := net.index[d]
		if d <= 0 || !ok {
			j = -1
		}
		net.down[i] = j
	}
	if err := net.derive(); err != nil {
		return nil, err
	}
	return net, nil
}

// NewNetworkIndex builds a network from reach ids and downstream positions
// (down[i] = index of the reach i drains into, -1 at an outlet). It checks
// what NewNetwork checks, with the same errors, without a map of every id
// (duplicates are found by sorting), which matters for millions of reaches.
func NewNetworkIndex(ids []int64, down []int) (*Network, error) {
	n := len(ids)
	if len(down) != n {
		return nil, fmt.Errorf("diffroute: %d reach ids but %d downstream ids", n, len(down))
	}
	for i, d := range down {
		if d >= n {
			return nil, fmt.Errorf("diffroute: reach position %d drains into position %d, beyond %d reaches", i, d, n)
		}
	}
	// NewNetwork reports the first position that is non-positive or repeats
	// an earlier id, then the first self-loop.
	bad, first := n, -1
	for i, id := range ids {
		if id <= 0 {
			bad = i
			break
		}
	}
	byID := idsort.SortPositions(ids) // equal ids in position order
	for k := 1; k < n; k++ {
		a, b := byID[k-1], byID[k]
		if ids[a] == ids[b] && ids[b] > 0 && int(b) < bad {
			// b repeats an id whose first position is the start of its run.
			f := k - 1
			for f > 0 && ids[byID[f-1]] == ids[b] {
				f--
			}
			bad, first = int(b), int(byID[f])
		}
	}
	if bad < n {
		if first >= 0 {
			return nil, &NetworkError{bad, ids[bad], fmt.Sprintf("duplicate reach id (first at position %d)", first)}
		}
		return nil, &NetworkError{bad, ids[bad], "reach ids must be positive"}
	}
	net := &Network{ids: slices.Clone(ids), down: make([]int32, n)}
	for i, d := range down {
		if d == i {
			return nil, &NetworkError{i, ids[i], "reach drains into itself"}
		}
		net.down[i] = int32(max(d, -1))
	}
	if err := net.derive(); err != nil {
		return nil, err
	}
	return net, nil
}

// derive builds the topology now, reporting a cycle.
func (net *Network) derive() error {
	t, bad := deriveTopology(net.down)
	if bad >= 0 {
		return &NetworkError{bad, net.ids[bad], fmt.Sprintf("reach is on a cycle or drains into one (%s)", net.cycleFrom(bad))}
	}
	net.topo = t
	return nil
}

// deriveTopology derives the orders of the network whose downstream links
// are down. Reaches not reached from any outlet lie on a cycle or drain
// into one: it then returns the first of them (by index) and no topology.
func deriveTopology(down []int32) (*topology, int) {
	n := len(down)
	t := &topology{}
	// CSR of upstream reaches, in index order.
	t.upStart = make([]int32, n+1)
	for _, d := range down {
		if d >= 0 {
			t.upStart[d+1]++
		}
	}
	for i := 0; i < n; i++ {
		t.upStart[i+1] += t.upStart[i]
	}
	t.up = make([]int32, t.upStart[n])
	fill := slices.Clone(t.upStart[:n])
	for i, d := range down {
		if d >= 0 {
			t.up[fill[d]] = int32(i)
			fill[d]++
		}
	}
	fill = nil

	// DFS pre-order of the reversed graph from every outlet.
	t.order = make([]int32, 0, n)
	t.pre = make([]int32, n)
	t.depth = make([]int32, n)
	for i := range t.pre {
		t.pre[i] = -1
	}
	stack := make([]int32, 0, 64)
	for o := 0; o < n; o++ {
		if down[o] >= 0 {
			continue
		}
		stack = append(stack[:0], int32(o))
		t.depth[o] = 1
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			t.pre[v] = int32(len(t.order))
			t.order = append(t.order, v)
			ups := t.up[t.upStart[v]:t.upStart[v+1]]
			// Push in reverse so the lowest index is visited first.
			for k := len(ups) - 1; k >= 0; k-- {
				u := ups[k]
				t.depth[u] = t.depth[v] + 1
				stack = append(stack, u)
			}
		}
	}
	if len(t.order) != n {
		for i := range t.pre {
			if t.pre[i] < 0 {
				return nil, i
			}
		}
	}
	// Subtree sizes: children come after their parent in pre-order.
	t.size = make([]int32, n)
	for p := n - 1; p >= 0; p-- {
		v := t.order[p]
		t.size[v]++
		if d := down[v]; d >= 0 {
			t.size[d] += t.size[v]
		}
	}
	for _, d := range t.depth {
		t.pairs += int64(d)
	}
	return t, -1
}

// cycleFrom follows downstream links from reach i until one repeats and
// describes the cycle by ids.
func (net *Network) cycleFrom(i int) string {
	seen := map[int32]int{}
	path := []int64{}
	v := int32(i)
	for v >= 0 {
		if k, ok := seen[v]; ok {
			cyc := append(path[k:], net.ids[v])
			s := ""
			for j, id := range cyc {
				if j > 0 {
					s += " -> "
				}
				s += fmt.Sprint(id)
			}
			return "cycle " + s
		}
		seen[v] = len(path)
		path = append(path, net.ids[v])
		v = net.down[v]
	}
	return "no cycle found"
}

// Len returns the number of reaches.
func (net *Network) Len() int { return len(net.ids) }

// ID returns the id of reach i.
func (net *Network) ID(i int) int64 { return net.ids[i] }

// IDs returns the reach ids by index. The slice must not be modified.
func (net *Network) IDs() []int64 { return net.ids }

// Index returns the position of the reach with the given id.
func (net *Network) Index(id int64) (int, bool) {
	net.indexOnce.Do(func() {
		if net.index == nil {
			net.index = make(map[int64]int32, len(net.ids))
			for i, id := range net.ids {
				net.index[id] = int32(i)
			}
		}
	})
	i, ok := net.index[id]
	return int(i), ok
}

// Down returns the index of the reach that i drains into, or -1 at an outlet.
func (net *Network) Down(i int) int { return int(net.down[i]) }

// Upstream returns the reaches draining directly into i. The slice must not be
// modified.
func (net *Network) Upstream(i int) []int32 {
	t := net.t()
	return t.up[t.upStart[i]:t.upStart[i+1]]
}

// PreOrder returns the reaches in DFS pre-order of the reversed graph: each
// outlet followed by its upstream subtrees, so that the upstream closure of d
// (d included) is PreOrder()[Pre(d) : Pre(d)+Size(d)]. Reversed, it is a
// topological order with upstream reaches first. The slice must not be
// modified.
func (net *Network) PreOrder() []int32 { return net.t().order }

// Pre returns the position of reach i in PreOrder.
func (net *Network) Pre(i int) int { return int(net.t().pre[i]) }

// Size returns the number of reaches in the upstream closure of i, i included.
func (net *Network) Size(i int) int { return int(net.t().size[i]) }

// Depth returns the number of reaches from i to its outlet, both included.
func (net *Network) Depth(i int) int { return int(net.t().depth[i]) }

// Pairs returns the number of (downstream, source) pairs in the transitive
// closure, self pairs included: Σ Depth(i). It sizes the kernel method.
func (net *Network) Pairs() int64 { return net.t().pairs }

// MaxDepth returns the longest path from a reach to its outlet, in reaches.
func (net *Network) MaxDepth() int {
	m := int32(0)
	for _, d := range net.t().depth {
		m = max(m, d)
	}
	return int(m)
}

// Outlets returns the indices of reaches with no downstream reach.
func (net *Network) Outlets() []int {
	var out []int
	for i, d := range net.down {
		if d < 0 {
			out = append(out, i)
		}
	}
	return out
}

// String summarises the network.
func (net *Network) String() string {
	return fmt.Sprintf("Network: %d reaches, %d outlets, max depth %d, %d closure pairs",
		net.Len(), len(net.Outlets()), net.MaxDepth(), net.Pairs())
}

// Reorder returns the network with its reaches renumbered: reach k of the
// result is reach order[k] of net (same ids, same links). order must list
// every reach once. Routing does not depend on reach order, but memory
// access does: a network renumbered in RoutingOrder, with runoff rows in
// that order, is routed with its runoff, discharge and state read in
// memory order (InRoutingOrder does both). It takes O(N) time; the
// result's derived orders (PreOrder, Upstream, Size, …) are built on
// first use.
func (net *Network) Reorder(order []int32) (*Network, error) {
	n := net.Len()
	if len(order) != n {
		return nil, fmt.Errorf("diffroute: reorder lists %d reaches of %d", len(order), n)
	}
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = -1
	}
	for k, v := range order {
		if v < 0 || int(v) >= n || pos[v] >= 0 {
			return nil, fmt.Errorf("diffroute: reorder position %d: reach position %d is out of range or repeated", k, v)
		}
		pos[v] = int32(k)
	}
	out := &Network{ids: make([]int64, n), down: make([]int32, n)}
	for k, v := range order {
		out.ids[k] = net.ids[v]
		if d := net.down[v]; d >= 0 {
			out.down[k] = pos[d]
		} else {
			out.down[k] = -1
		}
	}
	return out, nil
}

// routingPlan is the recursive router's partition of a network renumbered
// in its routing order: part w is reaches [ends[w-1], ends[w]), the trunk
// the reaches from ends[len(ends)-1] on, each in routing order.
type routingPlan struct {
	workers int
	ends    []int
}

// InRoutingOrder returns the network renumbered in RoutingOrder(net,
// workers) (0: GOMAXPROCS), and that order: reach k of the result is reach
// order[k] of net. A recursive router of the result with as many workers
// routes its reaches in index order, reading runoff, discharge and state
// in memory order, and is prepared without deriving the result's orders
// (a traversal of every reach, and six arrays of N int32, held as long as
// the network is); it routes as a router of net would, to float32
// rounding (tributaries may be summed in another order).
func (net *Network) InRoutingOrder(workers int) (*Network, []int32, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	parts, trunk := partition(net, workers)
	order := make([]int32, 0, net.Len())
	plan := &routingPlan{workers: workers}
	for _, p := range parts {
		order = append(order, p...)
		plan.ends = append(plan.ends, len(order))
	}
	order = append(order, trunk...)
	out, err := net.Reorder(order)
	if err != nil {
		return nil, nil, err
	}
	out.plan = plan
	return out, order, nil
}
