package diffroute

import "fmt"

// The kernel method's gradient (KernelRouter.RouteGrad) has no time
// chunks: it builds the whole kernel, routes the whole series and holds the
// runoff, the discharge, ∂L/∂y and ∂L/∂runoff at once, then runs the
// parameter adjoint. Of that adjoint only the recursive one (kernels built
// in the time domain without ReLU, renormalisation or excluded self pairs)
// runs in checkpoint blocks; the adjoints of the build keep per-reach
// spectra (FFT builds) or per-worker parameter sums (time-domain builds)
// whatever the budget. So the planner predicts the larger of the build's
// peak and the backward pass's and picks checkpoint blocks for the
// recursive adjoint; when that does not fit, it plans the gradient staged
// over clusters (StagedRouter.RouteGrad: one cluster's kernel and adjoint
// at a time).

// kernelGradAdjoint says which parameter adjoint a kernel gradient runs.
type kernelGradAdjoint int

const (
	adjointRecursive kernelGradAdjoint = iota // time-domain kernels: the recursive adjoint
	adjointFFTBuild                           // kernels built from spectra: the build's adjoint
	adjointTDBuild                            // time-domain kernels with ReLU, renormalisation or excluded self pairs
	adjointNone                               // an IRF without parameter gradients
)

func (a kernelGradAdjoint) String() string {
	switch a {
	case adjointRecursive:
		return "the recursive adjoint"
	case adjointFFTBuild:
		return "the adjoint of the FFT build"
	case adjointTDBuild:
		return "the adjoint of the time-domain build"
	}
	return "none (runoff gradient only)"
}

// kernelNoChunks is what the plan says of the kernel gradient's strategies.
const kernelNoChunks = "the kernel method's gradient holds the whole series and the whole kernel: it has no time chunks"

// planKernelGradient is PlanGradient for the kernel method.
func planKernelGradient(p *GradPlan, net *Network, o Options, m *planModel, irf IRF, proc *ProcessMemory) (*GradPlan, error) {
	ks, err := EstimateKernelBytes(net, o)
	if err != nil {
		return nil, err
	}
	n, B, T := int64(net.Len()), int64(p.Batch), int64(p.T)
	P := int64(len(irf.GradParams))
	series := B * n * T * 4
	workers := int64(max(1, min(o.Workers, net.Len())))
	td := ks.FFTLen == 0
	adj := adjointRecursive
	switch {
	case P == 0:
		adj = adjointNone
	case !td:
		adj = adjointFFTBuild
	case o.ReLU || o.Normalize || o.ExcludeSelf:
		adj = adjointTDBuild
	}
	p.Method, p.adjoint = Kernel, adj
	secs, _ := m.shape(irf)
	// The adjoint's own memory, for a checkpoint block (recursive adjoint).
	adjoint := func(ck int) (string, int64, int) {
		switch adj {
		case adjointRecursive:
			// The recursive engine as PlanGradient predicts it, less the
			// network and the series it does not hold here: it reads the
			// runoff and ∂L/∂y in float32 and writes a float32 ∂L/∂runoff
			// (the kernel's own comes from the transposed convolution).
			ro := o
			ro.Method, ro.CheckpointSteps = Recursive, ck
			rp, err := planGradient(net, p.T, p.Batch, 0, ro, nil)
			if err != nil || len(rp.Parts) < 2 {
				return "recursive adjoint", 0, 1
			}
			own := rp.Live - rp.Parts[0].Bytes - rp.Parts[1].Bytes
			eng := own + series
			if !rp.tiled { // the general engine: runoff, y, ∂L/∂y and ∂L/∂x in float64 too
				eng = own + 8*series + series
			}
			return fmt.Sprintf("recursive adjoint (%d checkpoint blocks)", rp.Blocks), eng, rp.Blocks
		case adjointFFTBuild:
			nf := int64(ks.FFTLen/2 + 1)
			tables := int64(2)
			if o.Lateral == LateralRAPID && !o.ExcludeSelf {
				tables = 3 // the lateral terms' own sums
			}
			depth := int64(net.MaxDepth())
			perWorker := 2*nf*16 + 3*int64(ks.FFTLen)*8 + depth*nf*16 + int64(o.MaxDelay*o.SubSteps)*8*2
			return "spectra and their adjoints (build adjoint)", tables*n*nf*16 + workers*perWorker + P*n*8, 1
		case adjointTDBuild:
			w := int64(o.MaxDelay * o.SubSteps)
			depth := int64(net.MaxDepth())
			perWorker := P*n*8 + 2*depth*w*8 + 6*w*8
			return "sections and per-worker sums (build adjoint)", int64(secs*float64(n))*24*(1+P) + workers*perWorker + P*n*8, 1
		}
		return "no parameter adjoint", 0, 1
	}
	// The tiles' pages that hold pairs: the rest is never touched.
	kernel := min(ks.BlockBytes, kernelResidentBytes(net, ks.BlockSize, ks.Taps))
	buildPeak := ks.BuildPeakBytes - ks.BlockBytes + kernel
	estimate := func(ck int) {
		name, eng, blocks := adjoint(ck)
		p.Parts = []MemPart{
			{"network", n * planNetworkPerRch},
			{"runoff (float32)", series},
			{"kernel (its pages holding pairs)", kernel},
			{"discharge, ∂L/∂y, ∂L/∂runoff (float32)", 3 * series},
			{name, eng},
		}
		p.Live = 0
		for _, part := range p.Parts {
			p.Live += part.Bytes
		}
		// The build's peak comes first, before any series but the runoff:
		// what it frees is reused by the series allocated after it.
		build := p.Parts[0].Bytes + series + buildPeak
		live := max(p.Live, build)
		garbage := min(int64(m.gc*float64(live)), buildPeak-kernel)
		p.CheckpointSteps, p.Blocks = ck, blocks
		p.settle(live+garbage+planBaseBytes, proc, p.Parts[0].Bytes+series)
	}
	advice := "" // what to do when the budget is not met
	note := func() {
		p.Note = kernelNoChunks
		if adj == adjointRecursive {
			p.Note += "; checkpoint blocks bound only its parameter adjoint"
		}
		if p.Fits {
			return
		}
		switch ro := o; {
		case o.ReLU || o.Normalize || o.ExcludeSelf:
			advice = "raise the budget (the recursive method has no ReLU, renormalisation or excluded self pairs)"
		default:
			// What the recursive method, which checkpoints, would need.
			ro.Method, ro.CheckpointSteps = Recursive, 0
			if rp, err := planGradient(net, p.T, p.Batch, p.Budget, ro, proc); err == nil && rp.Fits {
				advice = fmt.Sprintf("the recursive method's gradient fits (predicted %s): use --method recursive, or raise the budget", fmtBytes(rp.Predicted))
			} else {
				advice = "raise the budget"
			}
		}
		p.Note += "; " + advice
	}
	staged := func() (*GradPlan, error) {
		if p.Fits || p.Budget <= 0 {
			return p, nil
		}
		sp, err := planStagedKernelGradient(p, net, o, m, proc, advice)
		if err != nil || sp == nil {
			return p, err
		}
		return sp, nil
	}
	estimate(o.CheckpointSteps)
	if o.CheckpointSteps > 0 || p.Fits || adj != adjointRecursive {
		note()
		return staged()
	}
	best, bestPeak := 0, int64(-1)
	for ck := 1; ck <= p.T; ck *= 2 {
		estimate(ck)
		if bestPeak < 0 || p.Predicted < bestPeak {
			best, bestPeak = ck, p.Predicted
		}
	}
	estimate(best)
	note()
	return staged()
}

// planStagedKernelGradient plans the kernel method's gradient staged over
// clusters when the unstaged one does not fit: the network's runoff,
// discharge, ∂L/∂y and ∂L/∂runoff in float32, every transfer (the forward
// pass keeps it in float32 for the backward pass, which hands its adjoint
// upstream in float64), and the largest cluster's own kernel gradient (as
// planned unstaged, its kernel rebuilt for the backward pass) plus, for a
// cluster with transfer sources, the recursive adjoint of their fine
// outflow. The largest clusters that fit are chosen; when none fit, the
// smallest prediction is reported (nil when it is not below the unstaged
// one).
func planStagedKernelGradient(unstaged *GradPlan, net *Network, o Options, m *planModel, proc *ProcessMemory, advice string) (*GradPlan, error) {
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return nil, err
	}
	n, B, T, f := int64(net.Len()), int64(unstaged.Batch), int64(unstaged.T), int64(o.SubSteps)
	P := int64(len(irf.GradParams))
	secs, conv := m.shape(irf)
	w := int64(o.MaxDelay) * f
	var best *GradPlan
	try := func(maxPaths int64) (*GradPlan, error) {
		cl, err := Schedule(net, maxPaths, 0)
		if err != nil {
			return nil, err
		}
		p := &GradPlan{Method: Kernel, Reaches: unstaged.Reaches, T: unstaged.T, Batch: unstaged.Batch, SubSteps: unstaged.SubSteps, Budget: unstaged.Budget,
			Staged: true, MaxPaths: maxPaths, Clusters: cl, adjoint: unstaged.adjoint}
		var largest int64
		for k := range cl.Clusters {
			c := &cl.Clusters[k]
			co := subsetOptions(o, c.Reaches)
			co.CheckpointSteps = 0
			cm, err := newPlanModel(c.Net, unstaged.T, unstaged.Batch, co)
			if err != nil {
				return nil, err
			}
			cp, err := planKernelGradient(&GradPlan{Reaches: c.Net.Len(), T: unstaged.T, Batch: unstaged.Batch, SubSteps: unstaged.SubSteps}, c.Net, co, cm, irf, nil)
			if err != nil {
				return nil, err
			}
			own := cp.Predicted - planBaseBytes
			if len(c.Out) > 0 { // the recursive adjoint of the sources' closure
				ids := make([]int64, 0, len(c.Out))
				for _, slot := range c.Out {
					ids = append(ids, c.Net.ID(int(cl.Transfers[slot].SrcLocal)))
				}
				sub, err := c.Net.UpstreamClosure(ids)
				if err != nil {
					return nil, err
				}
				parts, _, _ := generalGradParts(len(sub), B, T, f, P, secs, conv, w, 0)
				for _, part := range parts[1:] {
					own += part.Bytes
				}
				if o.ExcludeSelf && o.Compat != CompatDiffRoute { // the runoff moved one reach down and its adjoint (float32)
					own += int64(len(sub)) * B * T * 8
				}
			}
			own += int64(len(c.In)+len(c.Out)) * B * T * f * 8 // the fine series it reads and writes
			largest = max(largest, own)
		}
		p.Parts = []MemPart{
			{"network", n * planNetworkPerRch},
			{"runoff, y, ∂L/∂y, ∂L/∂x (float32)", B * n * T * 16},
			{"clusters", n * planClusterPerRch},
			{"transfers and their adjoints", int64(len(cl.Transfers)) * B * T * f * 12},
			{"largest cluster's kernel gradient", largest},
			{"parameter gradients", n * P * 8},
		}
		p.settleStaged(m.gc, proc, B*n*T*4)
		return p, nil
	}
	for mp := net.Pairs() / 2; mp >= 1; mp /= 2 {
		p, err := try(mp)
		if err != nil {
			return nil, err
		}
		if p.Fits {
			p.Note = "the kernel method's gradient staged: one cluster's kernel and adjoint at a time, the derivative of the staged kernel run (route --max-paths with the same max_paths)"
			return p, nil
		}
		if best == nil || p.Predicted < best.Predicted {
			best = p
		}
	}
	if best == nil || best.Predicted >= unstaged.Predicted {
		return nil, nil
	}
	best.Note = "it fits neither whole nor staged (one cluster's kernel at a time): " + advice
	return best, nil
}

// kernelResidentBytes is what the block-sparse kernel of net keeps resident:
// its tiles are allocated whole (KernelStats.BlockBytes), but only the pages
// holding a pair's taps are ever written, and untouched pages of a fresh
// allocation take no memory. Row position p of the pre-order holds pairs
// with the sources q ∈ [p, p + size(p)), a contiguous run in each tile it
// crosses; the pages of those runs are counted once each, in memory order.
func kernelResidentBytes(net *Network, blockSize, taps int) int64 {
	const page = 4096
	n := net.Len()
	b := tileSize(blockSize, net)
	rowTiles, _, _ := tileLayout(net, b)
	order := net.PreOrder()
	nb := len(rowTiles) - 1
	B, W := int64(b), int64(taps)*4 // W: bytes per pair
	var pages int64
	last := int64(-1)
	for r := 0; r < nb; r++ {
		for t := rowTiles[r]; t < rowTiles[r+1]; t++ {
			c := r + int(t-rowTiles[r])
			for p := r * b; p < min(n, (r+1)*b); p++ {
				lo, hi := max(p, c*b), min(p+net.Size(int(order[p])), (c+1)*b)
				if lo >= hi {
					continue
				}
				row := (t*B + int64(p%b)) * B
				first := (row + int64(lo%b)) * W / page
				end := ((row+int64((hi-1)%b))*W + W - 1) / page
				first = max(first, last+1)
				if end >= first {
					pages += end - first + 1
					last = end
				}
			}
		}
	}
	return pages * page
}
