package diffroute

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// Memory model constants, measured on this package's own allocations
// (runtime.MemStats after GC, 200k-reach synthetic network).
const (
	planBaseBytes     = 12 << 20 // Go runtime, binary and stacks
	planNetworkPerRch = 60       // Network: ids, index map, CSR, orders
	planClusterPerRch = 85       // Clusters: order tables + per-cluster networks
	planRecRouterBase = 30       // RecursiveRouter per reach, one section, without state
	planConvPerRch    = 64       // its convolution table, per reach, when some reach convolves
	planSectionBytes  = 24       // per extra section (Nash cascade)
	planRecStatePerB  = 20       // uPrev, lPrev (float32) + one section output, per batch member
)

// MemPart is one term of a memory prediction.
type MemPart struct {
	Name  string
	Bytes int64
}

// StrategyEstimate predicts the peak memory of one way to route.
type StrategyEstimate struct {
	Name      string
	Method    Method
	Staged    bool
	Streaming bool // per-cluster runoff in, per-cluster discharge out (RouteClusters)
	MaxPaths  int64
	MaxNodes  int
	TimeChunk int
	Clusters  int
	Transfers int
	Parts     []MemPart
	// Live is the sum of Parts at the worst moment; Peak adds the garbage the
	// Go collector lets accumulate (GOGC) and the runtime baseline: it is the
	// predicted peak resident memory of the process.
	Live, Peak int64
	Fits       bool
	Note       string

	heap int64 // Live and the garbage: the run's own heap at its peak
}

// MemoryPlan is the planner's choice of method, cluster bounds and time chunk
// for a network, T steps, a batch and a byte budget, with the predictions
// that justify it.
type MemoryPlan struct {
	Reaches, T, Batch, SubSteps int
	Pairs                       int64
	Budget                      int64
	Strategies                  []StrategyEstimate
	Chosen                      int // index into Strategies
	// The choice, for Schedule and StagedRouter.
	Method    Method
	Staged    bool
	Streaming bool
	MaxPaths  int64
	MaxNodes  int
	TimeChunk int
	Predicted int64
	Clusters  *Clusters // the schedule of the chosen strategy (nil when unstaged)
	Reasons   []string
	// Device is the device-memory prediction of PlanDevice (nil from Plan).
	Device *DeviceEstimate
	// Process says how PlanIn counted the process's own memory (empty
	// from Plan: the predictions are the run's own).
	Process string
}

// gcFactor is the fraction of the live heap that garbage reaches before the
// collector frees it: the heap goal allows GOGC/100 of the live heap, and
// the concurrent collector starts before the goal (measured: about 3/4).
func gcFactor() float64 {
	g := 1.0
	if v := os.Getenv("GOGC"); v != "" {
		if v == "off" {
			return 4
		}
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			g = float64(n) / 100
		}
	}
	return 0.75 * g
}

// planHeadroom is the share of the budget a strategy may be predicted to use:
// the rest absorbs the prediction's error (measured within ±25 %, mostly
// within ±10 %).
const planHeadroom = 0.9

type planModel struct {
	net            *Network
	o              Options
	T, B, f        int
	recPerReach    int64 // recursive router + state, per reach
	pendingBufs    int64 // recursive inflow buffers in flight, all workers
	series         int64 // B·N·T·4: one full tensor
	gc             float64
	kernelPerPairB float64 // kernel build peak per closure pair (full network)
	// proc, when not nil, is the planning process (PlanIn): every peak
	// is the whole process's.
	proc *ProcessMemory
}

func newPlanModel(net *Network, T, B int, o Options) (*planModel, error) {
	m := &planModel{net: net, o: o, T: T, B: B, f: o.SubSteps, gc: gcFactor()}
	n := int64(net.Len())
	m.series = int64(B) * n * int64(T) * 4
	// Sample a few reaches for the shape of their IRF (sections or taps).
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return nil, err
	}
	k := min(net.Len(), 64)
	sample := make([]int32, k)
	for j := range sample {
		sample[j] = int32(j * net.Len() / max(k, 1))
	}
	var secs, taps int64
	fir := false
	if k > 0 {
		sub, err := net.Subnetwork(sample)
		if err != nil {
			return nil, err
		}
		tab, err := newIRFTable(irf, o.Params.Subset(sample), sub, m.f, o.MaxDelay*m.f)
		if err != nil {
			return nil, err
		}
		for j := 0; j < k; j++ {
			ri, err := tab.reach(j, sub, true)
			if err != nil {
				return nil, err
			}
			if ri.sections != nil {
				secs += int64(len(ri.sections))
			} else {
				nz := int64(0)
				for _, c := range ri.taps {
					if c != 0 {
						nz++
					}
				}
				taps += nz
				// Long kernels keep their spectrum for FFT convolution.
				m.recPerReach += convSpectrumBytes(int(nz))
				// Convolution reaches keep W−1 inflows per batch member.
				m.recPerReach += int64(B) * int64(o.MaxDelay*m.f-1) * 8
				fir = true
			}
		}
		m.recPerReach /= int64(k)
		if fir {
			m.recPerReach += planConvPerRch + int64(B)*8 // and every reach's last outflow
		}
		avgSecs := float64(secs) / float64(k)
		m.recPerReach += planRecRouterBase + int64(avgSecs*planSectionBytes) + int64(float64(taps)/float64(k)*12) +
			int64(B)*int64(planRecStatePerB+8*max(avgSecs-1, 0))
	}
	m.pendingBufs = int64(o.Workers) * int64(min(net.MaxDepth(), net.Len())+8)
	if o.Method == Kernel {
		ks, err := EstimateKernelBytes(net, o)
		if err != nil {
			return nil, err
		}
		if ks.Pairs > 0 {
			m.kernelPerPairB = float64(ks.BuildPeakBytes) / float64(ks.Pairs)
		}
	}
	return m, nil
}

// workBytes is the recursive router's inflow buffers in flight when it
// routes chunks of tc steps: each holds one block of sub-steps, and a block
// is about 4096 sub-steps or the whole chunk, whichever is shorter.
func (m *planModel) workBytes(tc int) int64 {
	steps := min(max(1, 4096/m.f), max(tc, 1))
	return m.pendingBufs * int64(steps*m.f*4)
}

// peak is the predicted peak of a run whose heap reaches heap bytes, its
// network included: with the runtime baseline, or, planning in a process
// (PlanIn), the whole process's peak; the process holds the network.
func (m *planModel) peak(heap int64) int64 {
	run := heap + planBaseBytes
	if m.proc == nil {
		return run
	}
	return m.proc.whole(run, int64(m.net.Len())*planNetworkPerRch)
}

// finish sums the parts and adds garbage and the runtime baseline. garbage
// is the total the strategy discards during the run; the collector keeps at
// most gc × live of it.
func (m *planModel) finish(s *StrategyEstimate, garbage int64, budget int64) {
	s.Live = 0
	for _, p := range s.Parts {
		s.Live += p.Bytes
	}
	s.heap = s.Live + min(garbage, int64(m.gc*float64(s.Live)))
	s.Peak = m.peak(s.heap)
	s.Fits = budget <= 0 || float64(s.Peak) <= planHeadroom*float64(budget)
}

func (m *planModel) unstaged(method Method, budget int64) StrategyEstimate {
	n := int64(m.net.Len())
	s := StrategyEstimate{Name: string(method) + ", unstaged, whole series", Method: method, TimeChunk: m.T}
	s.Parts = []MemPart{{"network", n * planNetworkPerRch}, {"runoff in", m.series}, {"discharge out", m.series}}
	var garbage int64
	if method == Recursive {
		s.Parts = append(s.Parts, MemPart{"recursive state", n * m.recPerReach}, MemPart{"inflow buffers", m.workBytes(m.T)})
	} else {
		ks, _ := EstimateKernelBytes(m.net, m.o)
		// Build and route do not overlap: the build peak includes the kernel.
		s.Parts = append(s.Parts, MemPart{"kernel (build peak)", ks.BuildPeakBytes})
		garbage = ks.BuildPeakBytes - ks.BlockBytes
		s.Note = fmt.Sprintf("%d pairs, kernel %s", ks.Pairs, fmtBytes(ks.BlockBytes))
	}
	m.finish(&s, garbage, budget)
	return s
}

// staged predicts a staged run with the given schedule and time chunk; with
// streaming, the full runoff and discharge are never in memory.
func (m *planModel) staged(cl *Clusters, method Method, tc int, streaming bool, budget int64) StrategyEstimate {
	n := int64(m.net.Len())
	B := int64(m.B)
	f := int64(m.f)
	tc = max(1, min(tc, m.T))
	name := string(method) + ", staged"
	if streaming {
		name += ", streaming per cluster"
	} else {
		name += ", whole series"
	}
	s := StrategyEstimate{Name: name, Method: method, Staged: true, Streaming: streaming, MaxPaths: cl.Options.MaxPaths,
		MaxNodes: cl.Options.MaxNodes, TimeChunk: tc, Clusters: cl.Len(), Transfers: len(cl.Transfers)}
	s.Parts = []MemPart{{"network", n * planNetworkPerRch}, {"clusters", n * planClusterPerRch}}
	if !streaming {
		s.Parts = append(s.Parts, MemPart{"runoff in", m.series}, MemPart{"discharge out", m.series})
	}
	nmax := int64(cl.MaxClusterNodes())
	// Transfer buffers alive at once: slots whose source has run and target
	// has not, at the worst cluster.
	alive, worst := 0, 0
	for _, c := range cl.Clusters {
		alive += len(c.Out)
		worst = max(worst, alive)
		alive -= len(c.In)
	}
	perSlot := B * int64(tc) * f * 4
	if m.o.Compat == CompatDiffRoute {
		perSlot = B * int64(tc) * 4
	}
	chunkIO := 2 * nmax * B * int64(tc) * 4 // cluster runoff + cluster discharge
	s.Parts = append(s.Parts, MemPart{"cluster runoff + discharge chunk", chunkIO},
		MemPart{fmt.Sprintf("transfer buffers (%d alive)", worst), int64(worst) * perSlot})
	chunks := int64((m.T + tc - 1) / tc)
	// Discarded per chunk: every cluster's discharge and transfers (and, whole
	// series, nothing else: the runoff buffer is reused).
	garbage := chunks * (n*B*int64(tc)*4 + int64(len(cl.Transfers))*perSlot)
	if method == Recursive {
		s.Parts = append(s.Parts, MemPart{"recursive state, all clusters", n * m.recPerReach}, MemPart{"inflow buffers", m.workBytes(tc)})
	} else {
		var peak, block int64
		for _, c := range cl.Clusters {
			ks, _ := EstimateKernelBytes(c.Net, m.o)
			peak = max(peak, ks.BuildPeakBytes)
			block = max(block, ks.BlockBytes)
			garbage += chunks * ks.BuildPeakBytes
		}
		w := int64(KernelWarmup(m.o))
		srcReaches, srcMax := int64(0), int64(0)
		for _, c := range cl.Clusters {
			if len(c.Out) == 0 {
				continue
			}
			ids := make([]int64, 0, len(c.Out))
			for _, slot := range c.Out {
				ids = append(ids, c.Net.ID(int(cl.Transfers[slot].SrcLocal)))
			}
			sub, _ := c.Net.UpstreamClosure(ids)
			srcReaches += int64(len(sub))
			srcMax = max(srcMax, int64(len(sub)))
		}
		s.Parts = append(s.Parts, MemPart{"largest cluster kernel (build peak)", peak},
			MemPart{"transfer-source recursive routers", srcReaches * (m.recPerReach + planNetworkPerRch)},
			MemPart{"warm-up carry (runoff + transfers)", n*B*w*4 + int64(len(cl.Transfers))*B*w*f*4})
		if chunks > 1 || tc < m.T {
			s.Parts = append(s.Parts, MemPart{"warm-up copy of a cluster chunk", nmax * B * (int64(tc) + w) * 4})
		}
		if m.o.ExcludeSelf && m.o.Compat != CompatDiffRoute && srcMax > 0 {
			s.Parts = append(s.Parts, MemPart{"runoff moved down for transfer sources (exclude self)", srcMax * B * int64(tc) * 4})
		}
		s.Note = fmt.Sprintf("largest cluster kernel %s", fmtBytes(block))
	}
	m.finish(&s, garbage, budget)
	return s
}

// Plan predicts the peak memory of routing net for T steps and batch
// members under each strategy — unstaged, staged with the whole series in
// memory, staged streaming per cluster — and chooses the method (opts.Method,
// or the recursive CPU default), max_paths, max_nodes and the time chunk that
// fit budget bytes (0: no budget) with 10 % headroom. Predictions count the allocations of this
// package (tensors, routers, kernels, transfer buffers) plus the garbage the
// Go collector lets accumulate and a runtime baseline; file readers and
// writers are the caller's to add.
func Plan(net *Network, T, batch int, budget int64, opts Options) (*MemoryPlan, error) {
	return planMemory(net, T, batch, budget, opts, nil)
}

// PlanIn is Plan for a process that has read its network (not its runoff)
// and whose budget covers the whole process: every strategy's peak is the
// process's, what it holds now (proc: the mapped binary and libraries, its
// heap) included, as PlanGradientIn counts it.
func PlanIn(net *Network, T, batch int, budget int64, opts Options, proc ProcessMemory) (*MemoryPlan, error) {
	return planMemory(net, T, batch, budget, opts, &proc)
}

func planMemory(net *Network, T, batch int, budget int64, opts Options, proc *ProcessMemory) (*MemoryPlan, error) {
	if net == nil {
		return nil, fmt.Errorf("diffroute: no network")
	}
	if T < 1 || batch < 1 {
		return nil, fmt.Errorf("diffroute: plan needs T ≥ 1 and batch ≥ 1 (got %d, %d)", T, batch)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	// Byte counts are int64: refuse sizes whose fine-grid series could not
	// be counted (they wrapped around to negative "fitting" predictions).
	if fine := float64(batch) * float64(max(net.Len(), 1)) * float64(T) * float64(o.SubSteps) * 8; fine >= 1<<62 {
		return nil, fmt.Errorf("diffroute: %d reaches × %d steps × %d sub-steps × batch %d is beyond what can be planned (%.3g bytes of fine-grid series)",
			net.Len(), T, o.SubSteps, batch, fine)
	}
	m, err := newPlanModel(net, T, batch, o)
	if err != nil {
		return nil, err
	}
	m.proc = proc
	p := &MemoryPlan{Reaches: net.Len(), T: T, Batch: batch, SubSteps: o.SubSteps, Pairs: net.Pairs(), Budget: budget, Method: o.Method}
	add := func(s StrategyEstimate) int {
		p.Strategies = append(p.Strategies, s)
		return len(p.Strategies) - 1
	}
	schedules := map[int]*Clusters{}
	choose := func(k int, why string) {
		p.Chosen = k
		s := p.Strategies[k]
		if proc != nil {
			p.Process = proc.describe(s.heap + planBaseBytes)
		}
		p.Method, p.Staged, p.Streaming, p.MaxPaths, p.MaxNodes, p.TimeChunk, p.Predicted = s.Method, s.Staged, s.Streaming, s.MaxPaths, s.MaxNodes, s.TimeChunk, s.Peak
		p.Clusters = schedules[k]
		p.Reasons = append(p.Reasons, why)
	}
	method := o.Method

	// 1. Unstaged.
	u := add(m.unstaged(method, budget))
	if p.Strategies[u].Fits {
		choose(u, fmt.Sprintf("the unstaged %s run fits the budget: no clusters, no time chunks", method))
		return p, nil
	}
	p.Reasons = append(p.Reasons, fmt.Sprintf("the unstaged %s run needs %s", method, fmtBytes(p.Strategies[u].Peak)))

	// 2. Cluster bounds. The kernel method bounds each cluster's kernel: the
	// pairs a quarter of the budget buys; the recursive method only needs
	// clusters for streaming, bounded in reaches.
	n := int64(net.Len())
	var maxPaths int64
	var maxNodes int
	avail := budget - m.peak(n*(planNetworkPerRch+planClusterPerRch))
	if budget <= 0 {
		avail = 1 << 62
	}
	if method == Kernel && m.kernelPerPairB > 0 {
		maxPaths = max(1, int64(float64(avail)/4/m.kernelPerPairB))
	}
	// Streaming holds one cluster's runoff and discharge chunk: let that be
	// an eighth of what is left, at one step.
	maxNodes = int(max(1, min(n, avail/8/(int64(batch)*4*int64(min(T, 64))))))
	if method == Recursive {
		maxPaths = int64(maxNodes) // a segment has at least as many pairs as reaches
	}
	var cl *Clusters
	for try := 0; try < 6; try++ {
		if cl, err = Schedule(net, maxPaths, maxNodes); err != nil {
			return nil, err
		}
		if method != Kernel {
			break
		}
		// Shrink max_paths until the largest cluster kernel takes ≤ 1/4.
		var peak int64
		for _, c := range cl.Clusters {
			ks, _ := EstimateKernelBytes(c.Net, o)
			peak = max(peak, ks.BuildPeakBytes)
		}
		if budget <= 0 || peak <= avail/4 || maxPaths <= 1 {
			break
		}
		maxPaths = max(1, maxPaths*(avail/4)/peak*9/10)
	}

	// 3. Staged with the whole series in memory.
	k := add(m.staged(cl, method, T, false, budget))
	schedules[k] = cl
	if p.Strategies[k].Fits {
		choose(k, fmt.Sprintf("staged %s with the whole series in memory fits: max_paths %d bounds each cluster's kernel, clusters run one at a time", method, maxPaths))
		return p, nil
	}
	// 4. Streaming: largest time chunk that fits (bisection on the chunk).
	lo, hi := 1, T
	best := -1
	for lo <= hi {
		mid := (lo + hi) / 2
		s := m.staged(cl, method, mid, true, budget)
		if s.Fits {
			best, lo = mid, mid+1
		} else {
			hi = mid - 1
		}
	}
	if best > 0 {
		k := add(m.staged(cl, method, best, true, budget))
		schedules[k] = cl
		choose(k, fmt.Sprintf("neither the unstaged nor the whole-series staged run fits; streaming per cluster (RouteClusters) in time chunks of %d steps does", best))
		return p, nil
	}
	k = add(m.staged(cl, method, 1, true, budget))
	schedules[k] = cl
	choose(k, "nothing fits the budget; the smallest configuration is shown (one-step chunks, streaming)")
	peak := p.Strategies[k].Peak
	return p, fmt.Errorf("diffroute: no strategy fits %s (the smallest needs a budget of %s: predicted peak %s)", fmtBytes(budget), fmtBudget(int64(math.Ceil(float64(peak)/planHeadroom))), fmtBytes(peak))
}

func fmtBytes(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}

// fmtBudget writes b as fmtBytes does but rounded up, so that a budget of
// what it prints is at least b.
func fmtBudget(b int64) string {
	x := float64(b)
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", math.Ceil(x/(1<<30)*100)/100)
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", math.Ceil(x/(1<<20)*10)/10)
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", math.Ceil(x/(1<<10)*10)/10)
	}
	return fmt.Sprintf("%d B", b)
}

// String explains the plan: every strategy's predicted peak with its parts,
// and why the chosen one was taken.
func (p *MemoryPlan) String() string {
	var sb strings.Builder
	budget := "none"
	if p.Budget > 0 {
		budget = fmtBytes(p.Budget)
	}
	fmt.Fprintf(&sb, "Memory plan: %d reaches, %d closure pairs, T = %d steps × f = %d, batch %d, budget %s\n", p.Reaches, p.Pairs, p.T, p.SubSteps, p.Batch, budget)
	for k, s := range p.Strategies {
		mark := " "
		if k == p.Chosen {
			mark = "*"
		}
		fits := "fits"
		if !s.Fits {
			fits = "over budget"
		}
		fmt.Fprintf(&sb, "%s %-45s peak %10s (%s)", mark, s.Name, fmtBytes(s.Peak), fits)
		if s.Staged {
			fmt.Fprintf(&sb, " — %d clusters, %d transfers, max_paths %d, max_nodes %d, time chunk %d", s.Clusters, s.Transfers, s.MaxPaths, s.MaxNodes, s.TimeChunk)
		}
		if s.Note != "" {
			fmt.Fprintf(&sb, " [%s]", s.Note)
		}
		sb.WriteByte('\n')
		for _, part := range s.Parts {
			fmt.Fprintf(&sb, "      %-40s %10s\n", part.Name, fmtBytes(part.Bytes))
		}
		rest := "garbage before collection + runtime"
		if p.Process != "" {
			rest = "garbage + the process (see below)"
		}
		fmt.Fprintf(&sb, "      %-40s %10s\n", rest, fmtBytes(s.Peak-s.Live))
	}
	fmt.Fprintf(&sb, "Chosen: %s", p.Strategies[p.Chosen].Name)
	if p.Staged {
		fmt.Fprintf(&sb, " (max_paths %d, max_nodes %d, time chunk %d)", p.MaxPaths, p.MaxNodes, p.TimeChunk)
	}
	fmt.Fprintf(&sb, ", predicted peak %s\n", fmtBytes(p.Predicted))
	for _, r := range p.Reasons {
		fmt.Fprintf(&sb, "  - %s\n", r)
	}
	if p.Process != "" {
		fmt.Fprintf(&sb, "  %s\n", p.Process)
	}
	if d := p.Device; d != nil {
		fits := "fits"
		if !d.Fits {
			fits = "over budget"
		}
		fmt.Fprintf(&sb, "Device (%s): budget %s, peak %s (%s), device time chunk %d steps\n", d.Name, fmtBytes(d.Budget), fmtBytes(d.Total), fits, d.ChunkSteps)
		for _, part := range d.Parts {
			fmt.Fprintf(&sb, "      %-40s %10s\n", part.Name, fmtBytes(part.Bytes))
		}
		if d.Note != "" {
			fmt.Fprintf(&sb, "  - %s\n", d.Note)
		}
	}
	return sb.String()
}

// ---- Device memory ---------------------------------------------------------

// DeviceMemory is an accelerator's memory model (package gpu's MemoryModel
// is one): the planner hands it the host plan, and it predicts the device
// memory of routing that plan there and the device time chunk.
type DeviceMemory interface {
	// PlanMemory predicts the device memory of routing net as host plans,
	// opts resolved (defaults filled in). With an error (not even a
	// one-step chunk fits, say) it still returns the estimate that shows why.
	PlanMemory(net *Network, host *MemoryPlan, opts Options) (*DeviceEstimate, error)
}

// DeviceEstimate is a DeviceMemory's prediction: the parts of the device's
// peak memory, their total against the budget, and the device time chunk.
type DeviceEstimate struct {
	Name       string // what runs there, as String prints it
	Budget     int64
	Parts      []MemPart
	Total      int64
	ChunkSteps int
	Fits       bool
	Note       string
}

// PlanDevice is Plan for the kernel method with its convolution on a device:
// the host plan as Plan makes it, plus dev's prediction of the device's
// memory (MemoryPlan.Device, printed by String).
func PlanDevice(net *Network, T, batch int, budget int64, opts Options, dev DeviceMemory) (*MemoryPlan, error) {
	opts.Method = Kernel
	p, err := Plan(net, T, batch, budget, opts)
	if err != nil {
		return p, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p.Device, err = dev.PlanMemory(net, p, o)
	return p, err
}
