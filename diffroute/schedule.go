package diffroute

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// ScheduleOptions bounds the clusters of a staged run.
type ScheduleOptions struct {
	// MaxPaths bounds the closure pairs (d, s) of every cluster — the rows of
	// its kernel, Σ depth within the cluster. 0 means no bound.
	MaxPaths int64
	// MaxNodes bounds the reaches of a cluster (DiffRoute's node_thr) when
	// segments are packed. 0 means no bound. A segment larger than MaxNodes
	// becomes a cluster of its own and is reported (Clusters.Oversize).
	MaxNodes int
	// MaxPathLength, when > 0, also bounds the sum of path lengths (in
	// reaches, both ends included) over each segment's pairs — the quantity
	// DiffRoute's plength_thr bounds, roughly cubic in depth. It is offered for
	// compatibility and is not the pair count.
	MaxPathLength int64
}

// Clusters is a network cut into clusters for staged routing (docs/design.md, memory strategies).
// Each cut edge u → v is a Transfer: u's fine-grid outflow enters v as
// upstream inflow. Clusters are numbered in a valid routing order: every
// transfer goes from a lower-numbered cluster to a higher one.
type Clusters struct {
	Net     *Network
	Options ScheduleOptions
	// Clusters in routing order.
	Clusters []Cluster
	// Order lists every reach (network index) grouped by cluster: cluster k
	// holds Order[Clusters[k].Start:Clusters[k].End], in its local order.
	Order []int32
	// ClusterOf and Local give each reach's cluster and its index in that
	// cluster's network.
	ClusterOf []int32
	Local     []int32
	// Transfers, one slot per cut edge, ordered by source cluster.
	Transfers []Transfer
	// Segments is the number of weakly connected components of the cut graph;
	// Generations the number of dependency generations.
	Segments    int
	Generations int
	// Oversize lists the clusters that hold a single segment larger than
	// MaxNodes (or, when MaxPaths is below a reach's own single pair, larger
	// than MaxPaths).
	Oversize []int
}

// Cluster is one stage of a staged run.
type Cluster struct {
	Index      int
	Net        *Network // the cluster's reaches as a network (cut edges become outlets)
	Reaches    []int32  // network index in the full network of each local reach
	Start, End int      // range of Clusters.Order
	Generation int
	Segments   int
	Pairs      int64 // closure pairs within the cluster: Σ local depth
	PathLength int64 // Σ path lengths over those pairs
	Oversize   bool
	In, Out    []int32 // transfer slots entering and leaving the cluster
}

// Transfer is one cut edge From → To (full-network indices) between two
// clusters, with the positions of its ends local to each cluster.
type Transfer struct {
	Slot                   int
	From, To               int32
	SrcCluster, DstCluster int
	SrcLocal, DstLocal     int32
}

// Len returns the number of clusters.
func (c *Clusters) Len() int { return len(c.Clusters) }

// Schedule cuts net into clusters of at most maxPaths closure pairs and
// maxNodes reaches (0: no bound). See ScheduleWith.
func Schedule(net *Network, maxPaths int64, maxNodes int) (*Clusters, error) {
	return ScheduleWith(net, ScheduleOptions{MaxPaths: maxPaths, MaxNodes: maxNodes})
}

// ScheduleWith cuts net into clusters, following docs/design.md (memory strategies):
//
//  1. Reaches are walked upstream first, each accumulating the reaches and
//     closure pairs of its upstream segment. When merging an upstream reach u
//     into v would push v's pairs over MaxPaths (or its path-length sum over
//     MaxPathLength), u becomes a breakpoint and u → v is cut; v's running
//     counts stay as they were (branches are merged smallest first).
//  2. The weakly connected components of the cut graph are segments.
//  3. Segments get dependency generations (a cut edge makes the downstream
//     segment depend on the upstream one); each generation's segments are
//     packed, largest first, into the lightest cluster of that generation
//     where both MaxNodes and MaxPaths still hold. Segments with no transfer
//     at all go last, into the lightest cluster of any generation they fit.
//     A segment larger than MaxNodes becomes its own cluster (reported).
//  4. Every cut edge is a transfer with its own slot.
func ScheduleWith(net *Network, so ScheduleOptions) (*Clusters, error) {
	if net == nil {
		return nil, fmt.Errorf("diffroute: no network")
	}
	if so.MaxPaths < 0 || so.MaxNodes < 0 || so.MaxPathLength < 0 {
		return nil, fmt.Errorf("diffroute: negative cluster bound (max paths %d, max nodes %d, max path length %d)", so.MaxPaths, so.MaxNodes, so.MaxPathLength)
	}
	n := net.Len()
	order := net.PreOrder()

	// Step 1: breakpoints. nodes/pairs/plen/dist: reaches of v's segment
	// subtree, its closure pairs, Σ path lengths over them, Σ path lengths
	// from each of its reaches to v.
	nodes := make([]int64, n)
	pairs := make([]int64, n)
	plen := make([]int64, n)
	dist := make([]int64, n)
	cut := make([]bool, n) // cut[u]: the edge u → down[u] is cut
	ups := make([]int32, 0, 8)
	for p := n - 1; p >= 0; p-- {
		v := order[p]
		nodes[v], pairs[v], plen[v], dist[v] = 1, 1, 1, 1
		ups = append(ups[:0], net.Upstream(int(v))...)
		slices.SortFunc(ups, func(a, b int32) int { return cmp.Or(cmp.Compare(pairs[a], pairs[b]), cmp.Compare(a, b)) })
		for _, u := range ups {
			np := pairs[v] + pairs[u] + nodes[u]
			nl := plen[v] + plen[u] + dist[u] + nodes[u]
			if (so.MaxPaths > 0 && np > so.MaxPaths) || (so.MaxPathLength > 0 && nl > so.MaxPathLength) {
				cut[u] = true
				continue
			}
			nodes[v] += nodes[u]
			pairs[v], plen[v] = np, nl
			dist[v] += dist[u] + nodes[u]
		}
	}

	// Step 2: segments, numbered by their roots in PreOrder (downstream
	// segments first).
	seg := make([]int32, n)
	var roots []int32
	for _, v := range order {
		d := net.down[v]
		if d < 0 || cut[v] {
			seg[v] = int32(len(roots))
			roots = append(roots, v)
		} else {
			seg[v] = seg[d]
		}
	}
	ns := len(roots)
	segSize := make([]int, ns)
	for _, s := range seg {
		segSize[s]++
	}
	hasIn := make([]bool, ns)
	hasOut := make([]bool, ns)
	gen := make([]int, ns)
	// Upstream segments have larger root positions: walk them last to first.
	for s := ns - 1; s >= 0; s-- {
		r := roots[s]
		if d := net.down[r]; d >= 0 { // r is a breakpoint: seg s feeds seg[d]
			t := seg[d]
			hasOut[s], hasIn[t] = true, true
			gen[t] = max(gen[t], gen[s]+1)
		}
	}

	// Step 3: packing.
	type bin struct {
		gen   int
		nodes int
		pairs int64
		segs  []int32
		over  bool
	}
	var bins []*bin
	fits := func(b *bin, s int32) bool {
		if b.over {
			return false
		}
		if so.MaxNodes > 0 && b.nodes+segSize[s] > so.MaxNodes {
			return false
		}
		return so.MaxPaths <= 0 || b.pairs+pairs[roots[s]] <= so.MaxPaths
	}
	place := func(s int32, candidates func(b *bin) bool, g int) {
		var best *bin
		for _, b := range bins {
			if candidates(b) && fits(b, s) && (best == nil || b.nodes < best.nodes) {
				best = b
			}
		}
		if best == nil {
			best = &bin{gen: g}
			bins = append(bins, best)
			best.over = (so.MaxNodes > 0 && segSize[s] > so.MaxNodes) || (so.MaxPaths > 0 && pairs[roots[s]] > so.MaxPaths)
		}
		best.nodes += segSize[s]
		best.pairs += pairs[roots[s]]
		best.segs = append(best.segs, s)
	}
	maxGen := 0
	for _, g := range gen {
		maxGen = max(maxGen, g)
	}
	bySize := func(list []int32) {
		slices.SortFunc(list, func(a, b int32) int { return cmp.Or(cmp.Compare(segSize[b], segSize[a]), cmp.Compare(a, b)) })
	}
	perGen := make([][]int32, maxGen+1)
	var free []int32
	for s := 0; s < ns; s++ {
		if hasIn[s] || hasOut[s] {
			perGen[gen[s]] = append(perGen[gen[s]], int32(s))
		} else {
			free = append(free, int32(s))
		}
	}
	for g, list := range perGen {
		bySize(list)
		for _, s := range list {
			place(s, func(b *bin) bool { return b.gen == g }, g)
		}
	}
	bySize(free)
	for _, s := range free {
		place(s, func(*bin) bool { return true }, 0)
	}
	slices.SortStableFunc(bins, func(a, b *bin) int { return cmp.Compare(a.gen, b.gen) })

	// Build the clusters: reaches of each cluster in PreOrder.
	cl := &Clusters{Net: net, Options: so, Segments: ns, Generations: maxGen + 1,
		ClusterOf: make([]int32, n), Local: make([]int32, n), Order: make([]int32, 0, n)}
	if n == 0 {
		cl.Generations = 0
	}
	binOf := make([]int32, ns)
	for k, b := range bins {
		for _, s := range b.segs {
			binOf[s] = int32(k)
		}
	}
	members := make([][]int32, len(bins))
	for _, v := range order {
		k := binOf[seg[v]]
		cl.ClusterOf[v] = k
		cl.Local[v] = int32(len(members[k]))
		members[k] = append(members[k], v)
	}
	for k, b := range bins {
		c := Cluster{Index: k, Reaches: members[k], Start: len(cl.Order), Generation: b.gen, Segments: len(b.segs), Oversize: b.over}
		cl.Order = append(cl.Order, members[k]...)
		c.End = len(cl.Order)
		c.Reaches = cl.Order[c.Start:c.End:c.End]
		for _, s := range b.segs {
			c.Pairs += pairs[roots[s]]
			c.PathLength += plen[roots[s]]
		}
		sub, err := net.Subnetwork(c.Reaches)
		if err != nil {
			return nil, err
		}
		c.Net = sub
		if b.over {
			cl.Oversize = append(cl.Oversize, k)
		}
		cl.Clusters = append(cl.Clusters, c)
	}

	// Step 4: transfers, ordered by source cluster then source position.
	for _, u := range cl.Order {
		if !cut[u] {
			continue
		}
		v := net.down[u]
		t := Transfer{Slot: len(cl.Transfers), From: u, To: v,
			SrcCluster: int(cl.ClusterOf[u]), DstCluster: int(cl.ClusterOf[v]),
			SrcLocal: cl.Local[u], DstLocal: cl.Local[v]}
		if t.SrcCluster >= t.DstCluster {
			return nil, fmt.Errorf("diffroute: internal error: transfer %d → %d runs from cluster %d to cluster %d", net.ID(int(u)), net.ID(int(v)), t.SrcCluster, t.DstCluster)
		}
		cl.Transfers = append(cl.Transfers, t)
		cl.Clusters[t.SrcCluster].Out = append(cl.Clusters[t.SrcCluster].Out, int32(t.Slot))
		cl.Clusters[t.DstCluster].In = append(cl.Clusters[t.DstCluster].In, int32(t.Slot))
	}
	return cl, nil
}

// MaxClusterPairs returns the largest closure-pair count of a cluster.
func (c *Clusters) MaxClusterPairs() int64 {
	var m int64
	for _, k := range c.Clusters {
		m = max(m, k.Pairs)
	}
	return m
}

// MaxClusterNodes returns the largest cluster, in reaches.
func (c *Clusters) MaxClusterNodes() int {
	m := 0
	for _, k := range c.Clusters {
		m = max(m, len(k.Reaches))
	}
	return m
}

// String summarises the schedule: clusters, reaches, pairs, transfers.
func (c *Clusters) String() string {
	var pairs int64
	for _, k := range c.Clusters {
		pairs += k.Pairs
	}
	lim := func(v int64) string {
		if v <= 0 {
			return "none"
		}
		return fmt.Sprint(v)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Clusters: %d clusters, %d reaches, %d pairs (unstaged %d), %d transfers, %d segments, %d generations; largest cluster %d reaches, %d pairs; limits max_paths %s, max_nodes %s",
		len(c.Clusters), c.Net.Len(), pairs, c.Net.Pairs(), len(c.Transfers), c.Segments, c.Generations,
		c.MaxClusterNodes(), c.MaxClusterPairs(), lim(c.Options.MaxPaths), lim(int64(c.Options.MaxNodes)))
	if c.Options.MaxPathLength > 0 {
		fmt.Fprintf(&sb, ", max_path_length %d", c.Options.MaxPathLength)
	}
	if len(c.Oversize) > 0 {
		fmt.Fprintf(&sb, "\n  %d oversize cluster(s), each one segment beyond the limits:", len(c.Oversize))
		for j, k := range c.Oversize {
			if j == 8 {
				fmt.Fprintf(&sb, " …")
				break
			}
			fmt.Fprintf(&sb, " #%d (%d reaches, %d pairs)", k, len(c.Clusters[k].Reaches), c.Clusters[k].Pairs)
		}
	}
	return sb.String()
}
