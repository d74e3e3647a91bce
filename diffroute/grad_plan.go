package diffroute

import (
	"fmt"
	"math"
	"strings"
)

// GradPlan is the planner's prediction for a gradient run (RouteGrad,
// forward and backward pass) and its choice of Options.CheckpointSteps for
// a budget.
type GradPlan struct {
	// Method is the router's: the recursive method's gradient runs in
	// checkpoint blocks; the kernel method's holds the whole series and
	// kernel (no time chunks), and only its recursive parameter adjoint
	// runs in blocks. Either is staged when that does not fit.
	Method                      Method
	Reaches, T, Batch, SubSteps int
	Budget                      int64
	// CheckpointSteps is the block length chosen (0: the whole series in one
	// block, no recomputation); Blocks the number of blocks.
	CheckpointSteps, Blocks int
	Parts                   []MemPart
	// Live sums Parts; Predicted adds the collector's garbage and the
	// runtime baseline: the predicted peak resident memory (of the whole
	// process, from PlanGradientIn).
	Live, Predicted int64
	Fits            bool
	Note            string
	// Process says how PlanGradientIn counted the process's own memory.
	Process string
	// Staged: the gradient runs cluster by cluster over Clusters
	// (StagedRouter.RouteGrad, either method), scheduled with MaxPaths
	// closure pairs per cluster; chosen when the unstaged run does not fit.
	Staged   bool
	MaxPaths int64
	Clusters *Clusters

	tiled   bool              // the recursive method's tiled adjoint
	adjoint kernelGradAdjoint // the kernel method's parameter adjoint
}

// String describes the plan in a few lines.
func (p *GradPlan) String() string {
	var sb strings.Builder
	ck := "whole series in one block"
	if p.Blocks > 1 {
		ck = fmt.Sprintf("%d checkpoint blocks (one recomputation)", p.Blocks)
	}
	if p.Method == Kernel {
		ck = "whole series and kernel, parameters by " + p.adjoint.String()
		if p.adjoint == adjointRecursive && p.Blocks > 1 {
			ck += fmt.Sprintf(" in %d checkpoint blocks", p.Blocks)
		}
		sb.WriteString("kernel-method ")
	}
	if p.Staged {
		ck = fmt.Sprintf("staged over %d clusters (max_paths %d, largest %d reaches, %d transfers), one cluster's adjoint at a time", p.Clusters.Len(), p.MaxPaths, p.Clusters.MaxClusterNodes(), len(p.Clusters.Transfers))
	}
	fmt.Fprintf(&sb, "gradient of %d reaches × %d steps × %d sub-steps (batch %d): %s, predicted peak %s", p.Reaches, p.T, p.SubSteps, p.Batch, ck, fmtBytes(p.Predicted))
	if p.Budget > 0 {
		fmt.Fprintf(&sb, " of a %s budget", fmtBytes(p.Budget))
	}
	sb.WriteByte('\n')
	for _, part := range p.Parts {
		fmt.Fprintf(&sb, "  %-28s %s\n", part.Name, fmtBytes(part.Bytes))
	}
	if p.Process != "" {
		sb.WriteString("  " + p.Process + "\n")
	}
	if p.Note != "" {
		sb.WriteString("  " + p.Note + "\n")
	}
	return sb.String()
}

// ProcessMemory is what a process holds when it plans a gradient run after
// reading its inputs: the Go heap after a collection (runtime.MemStats) and
// the resident set. PlanGradientIn adds it to the prediction so that the
// prediction covers the whole process, input reading included.
type ProcessMemory struct {
	// Peak is the resident peak so far (the input reading's) and Resident
	// the resident set now; 0 if unknown.
	Peak, Resident int64
	// HeapLive is the heap's live bytes after a collection (the runoff
	// and network included); HeapHeld the heap memory the runtime keeps
	// from the OS (live, fragmented and free: the gradient reuses the
	// free part before the heap grows).
	HeapLive, HeapHeld int64
}

// PlanGradient predicts the peak memory of a gradient run of T steps and
// batch members through net, and picks the longest checkpoint block that
// fits the budget (0: no budget; Options.CheckpointSteps, when set, is kept).
// When no block fits, the gradient is planned staged over clusters (Staged,
// Clusters: run it with StagedRouter.RouteGrad); a run that fits neither
// way is reported (Fits false). For the kernel method (Options.Method) it
// predicts the kernel gradient's own peak: the whole series and kernel,
// with blocks for its recursive parameter adjoint only, or one cluster's
// kernel and adjoint at a time when staged; Note says so, and what to do
// when the budget is not met.
func PlanGradient(net *Network, T, batch int, budget int64, opts Options) (*GradPlan, error) {
	return planGradient(net, T, batch, budget, opts, nil)
}

// PlanGradientIn is PlanGradient for a process that has read its inputs
// (the runoff of T steps, batch members, and net): the prediction and the
// budget cover the whole process. Of what it holds, the runoff and the
// network are the run's own; the rest (the collector's free heap after
// reading the runoff file, the runtime and libraries outside the heap,
// labels, parameters) is added: the peak is
// max(Peak, Resident − HeapHeld + max(HeapHeld, HeapLive + run)), run being
// the run's own predicted heap beyond the runoff and network.
func PlanGradientIn(net *Network, T, batch int, budget int64, opts Options, proc ProcessMemory) (*GradPlan, error) {
	return planGradient(net, T, batch, budget, opts, &proc)
}

// BudgetNeeded is the smallest budget this plan fits: its predicted peak
// is kept within a share of the budget (the rest absorbs the prediction's
// error), so a budget just above Predicted does not fit.
func (p *GradPlan) BudgetNeeded() int64 {
	return int64(math.Ceil(float64(p.Predicted) / planHeadroom))
}

// settle sets Predicted and Fits from the run's own prediction: with a
// process, the whole process's peak.
func (p *GradPlan) settle(run int64, proc *ProcessMemory, counted int64) {
	p.Predicted = run
	if proc != nil {
		p.Predicted = proc.whole(run, counted)
		p.Process = proc.describe(run)
	}
	p.Fits = p.Budget <= 0 || float64(p.Predicted) <= planHeadroom*float64(p.Budget)
}

// settleStaged is settle for a staged plan whose parts are all set, the
// first being the network's, with the runoff's bytes: every cluster's
// engine is garbage once the next one starts, and their sum is many times
// the heap, so the collector lets the heap grow by its full share gc
// (GOGC) of what is live, the process's too.
func (p *GradPlan) settleStaged(gc float64, proc *ProcessMemory, runoff int64) {
	for _, part := range p.Parts {
		p.Live += part.Bytes
	}
	counted := p.Parts[0].Bytes + runoff
	heapLive := p.Live
	if proc != nil {
		heapLive += proc.HeapLive - counted
	}
	p.settle(p.Live+int64(gc*float64(heapLive))+planBaseBytes, proc, counted)
}

// whole is the peak of this process when it runs a plan whose own predicted
// peak is run (planBaseBytes included), counted bytes of which (its network,
// its runoff) the process already holds: the memory outside the heap (the
// mapped binary and libraries, stacks), and the heap the run needs beyond
// what is live, where the kept free heap absorbs it first.
func (proc *ProcessMemory) whole(run, counted int64) int64 {
	heap := max(run-planBaseBytes-counted, 0) // the run's heap beyond what the process holds of it
	return max(proc.Peak, proc.outside()+max(proc.HeapHeld, proc.HeapLive+heap))
}

// outside is the resident memory outside the Go heap.
func (proc *ProcessMemory) outside() int64 { return max(proc.Resident-proc.HeapHeld, 0) }

// describe says what whole counted, for a plan's Process line.
func (proc *ProcessMemory) describe(run int64) string {
	return fmt.Sprintf("whole process: %s held after reading the inputs (heap: %s live, %s kept; %s outside it), the run's own peak %s",
		fmtBytes(proc.Resident), fmtBytes(proc.HeapLive), fmtBytes(proc.HeapHeld), fmtBytes(proc.outside()), fmtBytes(run))
}

func planGradient(net *Network, T, batch int, budget int64, opts Options, proc *ProcessMemory) (*GradPlan, error) {
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
	if fine := float64(batch) * float64(max(net.Len(), 1)) * float64(T) * float64(o.SubSteps) * 8; fine >= 1<<62 {
		return nil, fmt.Errorf("diffroute: %d reaches × %d steps × %d sub-steps × batch %d is beyond what can be planned", net.Len(), T, o.SubSteps, batch)
	}
	m, err := newPlanModel(net, T, batch, o)
	if err != nil {
		return nil, err
	}
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return nil, err
	}
	n, B, f := int64(net.Len()), int64(batch), int64(o.SubSteps)
	P := int64(len(irf.GradParams))
	w := int64(o.MaxDelay) * f
	// Shape of the reaches' IRFs, from a sample as Plan does.
	secs, conv := m.shape(irf)
	p := &GradPlan{Method: Recursive, Reaches: net.Len(), T: T, Batch: batch, SubSteps: o.SubSteps, Budget: budget}
	if o.Method == Kernel {
		return planKernelGradient(p, net, o, m, irf, proc)
	}
	if !gradTilesOff && tileOptionsUsable(o) && secs >= 1 && conv == 0 {
		return planTiled(p, net, o, m, P, secs, proc), nil
	}
	estimate := func(ck int) {
		p.Parts, p.CheckpointSteps, p.Blocks = generalGradParts(net.Len(), B, int64(T), f, P, secs, conv, w, ck)
		p.Live = 0
		for _, part := range p.Parts {
			p.Live += part.Bytes
		}
		// The big arrays live to the end: little garbage besides scratch.
		p.settle(p.Live+min(int64(m.gc*float64(p.Live)), B*n*int64(T)*8)+planBaseBytes, proc, p.Parts[0].Bytes+B*n*int64(T)*4)
	}
	if o.CheckpointSteps > 0 || budget <= 0 {
		estimate(o.CheckpointSteps)
		return p, nil
	}
	// The longest block that fits: block buffers grow with the block,
	// checkpoints with the number of blocks, so the smallest prediction lies
	// in between; longer blocks mean fewer, cheaper block switches.
	estimate(0)
	if p.Fits {
		return p, nil
	}
	best := 0
	for ck := T - 1; ck >= 1; ck-- {
		estimate(ck)
		if p.Fits {
			best = ck
			break
		}
	}
	if best == 0 {
		// Report the smallest prediction there is.
		lowest, at := int64(-1), 1
		for ck := 1; ck < T; ck++ {
			estimate(ck)
			if lowest < 0 || p.Predicted < lowest {
				lowest, at = p.Predicted, ck
			}
		}
		estimate(at)
		return planStagedGradient(p, net, o, m, P, secs, conv, proc)
	}
	estimate(best)
	return p, nil
}

// shape returns the mean number of sections per reach and the share of
// convolution reaches, from a sample of reaches.
func (m *planModel) shape(irf IRF) (secs, conv float64) {
	net := m.net
	k := min(net.Len(), 64)
	if k == 0 {
		return 0, 0
	}
	sample := make([]int32, k)
	for j := range sample {
		sample[j] = int32(j * net.Len() / k)
	}
	sub, err := net.Subnetwork(sample)
	if err != nil {
		return 1, 0
	}
	tab, err := newIRFTable(irf, m.o.Params.Subset(sample), sub, m.f, m.o.MaxDelay*m.f)
	if err != nil {
		return 1, 0
	}
	nconv, nsec := 0, 0
	for j := 0; j < k; j++ {
		ri, err := tab.reach(j, sub, true)
		if err != nil {
			return 1, 0
		}
		if ri.sections != nil {
			nsec += len(ri.sections)
		} else {
			nconv++
		}
	}
	return float64(nsec) / float64(k), float64(nconv) / float64(k)
}

// planTiled is PlanGradient for the tiled adjoint (reaches of secs sections): the
// caller's runoff and the float32 discharge, ∂L/∂y and ∂L/∂runoff, and their
// copies in tile order; the outflow series leaving each tile; every reach's
// state at block starts; one tile's block per worker. Longer blocks mean fewer checkpoints but
// smaller tiles, so more boundary series: the automatic block sits near the
// smallest sum; under a budget shorter and longer blocks are tried.
func planTiled(p *GradPlan, net *Network, o Options, m *planModel, P int64, secs float64, proc *ProcessMemory) *GradPlan {
	n, B, T, f := int64(net.Len()), int64(p.Batch), int64(p.T), int64(o.SubSteps)
	TF := T * f
	p.tiled = true
	parts, trunk := partition(net, o.Workers)
	// Sections per reach, as sampled (a cascade of n has n).
	K := int64(math.Round(secs))
	nsec := make([]int32, n)
	for v := range nsec {
		nsec[v] = int32(K)
	}
	estimate := func(ck int) {
		bl := int64(tileBlock(ck, int(TF), int(f)))
		tl := buildTiling(net, parts, trunk, int(bl), nsec)
		blocks := (TF + bl - 1) / bl
		workers := int64(max(1, len(tl.groups)))
		p.Parts = []MemPart{
			{"network", n * planNetworkPerRch},
			{"runoff, y, ∂L/∂y, ∂L/∂x (float32)", B * n * T * 16},
			{"runoff and y, ∂L/∂y, ∂L/∂x in tile order (float32)", B * n * T * 8},
			{"IRFs, derivatives, tiles", n*(planRecRouterBase+(P+1)*8) + K*n*24*(1+P) + n*16},
			{"tile boundary series", int64(tl.nslot) * TF * 8},
			{"state checkpoints", (K + 2) * blocks * n * 8},
			{"tile buffers", workers * (int64(tl.maxRows) + 7) * bl * 8},
			{"parameter sums, state", n*(P+1+3+2+3)*8 + K*n*(3+3+1+1)*8},
		}
		p.Live = 0
		for _, part := range p.Parts {
			p.Live += part.Bytes
		}
		// Garbage: about one float32 series between collections.
		p.CheckpointSteps, p.Blocks = ck, int(blocks)
		p.settle(p.Live+min(int64(m.gc*float64(p.Live)), B*n*T*4)+planBaseBytes, proc, p.Parts[0].Bytes+B*n*T*4)
	}
	estimate(o.CheckpointSteps)
	if o.CheckpointSteps > 0 || p.Fits {
		return p
	}
	best, bestPeak := 0, int64(-1)
	for ck := 1; ck <= p.T; ck *= 2 {
		estimate(ck)
		if bestPeak < 0 || p.Predicted < bestPeak {
			best, bestPeak = ck, p.Predicted
		}
	}
	estimate(best)
	if !p.Fits {
		p, _ = planStagedGradient(p, net, o, m, P, secs, 0, proc)
	}
	return p
}

// generalGradParts are the general adjoint engine's parts for n reaches
// (checkpoint block ck steps, 0: automatic), and the block and number of
// blocks.
func generalGradParts(nr int, B, T, f, P int64, secs, conv float64, w int64, ck int) ([]MemPart, int, int) {
	n := int64(nr)
	bl := int64(autoBlock(nr, int(T*f), int(f), conv*float64(max(w-1, 0))))
	if ck > 0 {
		bl = min(int64(ck), T) * f
	}
	blocks := (T*f + bl - 1) / bl
	// Runoff (float32, the caller's), its float64 copy, discharge in both
	// precisions, ∂L/∂y in both, ∂L/∂runoff in both: 48 bytes a value.
	series := B * n * T * 48
	if ck <= 0 && conv >= 1 && !gradSeriesOff && T > 0 {
		// Every reach convolves: the whole-series adjoint, when chosen,
		// keeps every reach's inflow series instead of blocks and
		// checkpoints.
		if in, ok := seriesChosen(n, B, T*f, max(w-1, 0), bl); ok {
			return []MemPart{
				{"network", n * planNetworkPerRch},
				{"runoff, y, ∂L/∂y, ∂L/∂x", series},
				{"IRFs and their derivatives", n*(planRecRouterBase+(P+1)*8) + n*w*8},
				{"inflow series", in},
				{"parameter sums", n*(P+1)*8 + n*w*8},
			}, 0, 1
		}
	}
	perReachState := 3*8 + int64(secs*8) + int64(conv*float64(w-1)*8)
	return []MemPart{
		{"network", n * planNetworkPerRch},
		{"runoff, y, ∂L/∂y, ∂L/∂x", series},
		{"IRFs and their derivatives", n*(planRecRouterBase+(P+1)*8) + int64(secs*float64(n)*24*float64(1+P)) + int64(conv*float64(n*w)*8)},
		{"block outflows and adjoints", 2 * n * bl * 8},
		{"state checkpoints", B * blocks * n * perReachState},
		{"parameter sums", n*(P+1)*8 + int64(secs*float64(n)*32) + int64(conv*float64(n)*float64(2*w)*8)},
	}, ck, int(blocks)
}

// planStagedGradient is tried when no checkpoint block fits (unstaged is
// the smallest unstaged plan): the gradient staged over clusters
// (StagedRouter.RouteGrad) holds the network's discharge, ∂L/∂y and
// ∂L/∂runoff in float32, the fine transfer series (and their adjoints) of
// the cut edges, and one cluster's general adjoint engine at a time.
// Smaller clusters shrink the engine and add transfers: the largest
// clusters that fit are chosen; when none fit, the smaller of the two
// smallest predictions is reported.
func planStagedGradient(unstaged *GradPlan, net *Network, o Options, m *planModel, P int64, secs, conv float64, proc *ProcessMemory) (*GradPlan, error) {
	const none = "does not fit with any checkpoint block, staged or not: shorten the series or raise the budget"
	n, B, T, f := int64(net.Len()), int64(unstaged.Batch), int64(unstaged.T), int64(o.SubSteps)
	w := int64(o.MaxDelay) * f
	var best *GradPlan
	try := func(maxPaths int64) (*GradPlan, error) {
		cl, err := Schedule(net, maxPaths, 0)
		if err != nil {
			return nil, err
		}
		p := &GradPlan{Method: Recursive, Reaches: unstaged.Reaches, T: unstaged.T, Batch: unstaged.Batch, SubSteps: unstaged.SubSteps, Budget: unstaged.Budget,
			Staged: true, MaxPaths: maxPaths, Clusters: cl}
		// The largest cluster's engine, and the transfers into and out of it.
		var engine int64
		for k := range cl.Clusters {
			c := &cl.Clusters[k]
			parts, _, blocks := generalGradParts(c.Net.Len(), B, T, f, P, secs, conv, w, 0)
			var e int64
			for _, part := range parts {
				e += part.Bytes
			}
			e += int64(len(c.In)+len(c.Out)) * B * T * f * 8
			// gathered runoff, ∂L/∂y, discharge and ∂L/∂runoff (float32)
			e += B * int64(c.Net.Len()) * T * 16
			if e > engine {
				engine, p.Blocks = e, blocks
			}
		}
		p.Parts = []MemPart{
			{"network", n * planNetworkPerRch},
			{"runoff, y, ∂L/∂y, ∂L/∂x (float32)", B * n * T * 16},
			{"clusters", n * planClusterPerRch},
			{"transfers and their adjoints", int64(len(cl.Transfers)) * B * T * f * 8},
			{"largest cluster's adjoint", engine},
			{"parameter gradients", n * (P + 1) * 8},
		}
		p.settleStaged(m.gc, proc, B*n*T*4)
		return p, nil
	}
	pairs := net.Pairs()
	for mp := pairs / 2; mp >= 1; mp /= 2 {
		p, err := try(mp)
		if err != nil {
			return nil, err
		}
		if p.Fits {
			return p, nil
		}
		if best == nil || p.Predicted < best.Predicted {
			best = p
		} else if p.Predicted > best.Predicted {
			break // smaller clusters cost more in transfers than they save
		}
	}
	if best == nil || best.Predicted >= unstaged.Predicted {
		unstaged.Note = none
		return unstaged, nil
	}
	best.Note = none
	return best, nil
}
