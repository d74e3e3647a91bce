package diffroute

import "context"

// The whole-series adjoint of networks whose every reach convolves (Hayami,
// nash_gamma, any IRF given by its taps). Instead of blocks recomputed from
// checkpoints, it keeps every reach's fine inflow over the whole run after
// its W−1 inflows of history: B·N·(W−1+TF) values, about what the
// checkpoints and block buffers of the block engine take once the history
// is long (each checkpoint holds W−1 inflows per reach). Each reach then
// convolves its whole series at once, as the forward run does, nothing is
// recomputed, and the backward pass overwrites a reach's inflows with their
// adjoint, which its upstream reaches read.

// gradSeriesOff turns the whole-series adjoint off (tests compare it with
// the block engine).
var gradSeriesOff = false

// gradSeriesMinBytes is the inflow storage the whole-series adjoint may
// always take; beyond it, it may take as much as the block engine would.
const gradSeriesMinBytes = 256 << 20

// seriesUsable reports whether the whole-series adjoint runs B members of
// TF sub-steps: every reach convolves, no checkpoint interval was asked for,
// and the series fit (seriesChosen).
func (e *gradEngine) seriesUsable(B, TF int) bool {
	n := e.net.Len()
	if gradSeriesOff || e.block > 0 || n == 0 || e.nconv != n || TF == 0 {
		return false
	}
	_, ok := seriesChosen(int64(n), int64(B), int64(TF), int64(max(e.w-1, 0)), int64(e.blockLen(TF)))
	return ok
}

// seriesChosen returns the inflow series' bytes of the whole-series adjoint
// (n convolution reaches, H inflows of history) and whether they take no
// more than the block engine's checkpoints and block buffers would with
// blocks of bl sub-steps, or less than gradSeriesMinBytes.
func seriesChosen(n, B, TF, H, bl int64) (int64, bool) {
	series := B * n * (H + TF) * 8
	nblk := (TF + bl - 1) / bl
	blocks := 2*n*bl*8 + B*nblk*n*H*8
	return series, series <= max(blocks, gradSeriesMinBytes)
}

// seriesRun is the state of one whole-series gradient.
type seriesRun struct {
	x      []float64 // [b][i] W−1 inflows of history, then TF inflows; then their adjoint
	row    int       // W−1+TF
	filled []bool    // [i] some upstream reach has stored into the inflow (this member)
	slot   []int32   // [i] boundary buffer of a part's reach draining into the trunk, or −1
	bnd    [][]float64
}

// xrow returns reach i's inflow series of member b.
func (s *seriesRun) xrow(b, n, i int) []float64 {
	o := (b*n + i) * s.row
	return s.x[o : o+s.row : o+s.row]
}

// runSeries is run for the whole-series adjoint.
func (g *gradRun) runSeries(ctx context.Context, loss func() error) error {
	e := g.e
	n := g.N
	H := max(e.w-1, 0)
	g.series = true
	s := &seriesRun{row: H + g.TF}
	// From the pool of block buffers: calibration builds a router for every
	// set of parameters, and fresh pages for hundreds of MB of inflows would
	// cost about as much as the arithmetic on them.
	s.x = slabs.take(g.B * n * s.row)
	defer slabs.put(s.x)
	g.y = reuse(&e.yBuf, g.B*n*g.T)
	s.filled = make([]bool, n)
	// A part's reach draining into the trunk keeps its outflow apart: the
	// parts run at once, and two of them may drain into one trunk reach.
	s.slot = make([]int32, n)
	for i := range s.slot {
		s.slot[i] = -1
	}
	if len(e.trunk) > 0 {
		inTrunk := make([]bool, n)
		for _, i := range e.trunk {
			inTrunk[i] = true
		}
		for i := range n {
			if d := e.net.down[i]; d >= 0 && inTrunk[d] && !inTrunk[i] {
				s.slot[i] = int32(len(s.bnd))
				s.bnd = append(s.bnd, make([]float64, g.TF))
			}
		}
	}
	for b := 0; b < g.B; b++ {
		clear(s.filled)
		err := g.each(ctx, false, func(wk *gradWorker, i int32) {
			g.seriesForward(s, wk, b, int(i))
		})
		if err != nil {
			return err
		}
	}
	if loss == nil {
		return nil
	}
	if err := loss(); err != nil {
		return err
	}
	g.allocResults()
	for b := g.B - 1; b >= 0; b-- {
		err := g.each(ctx, true, func(wk *gradWorker, i int32) {
			g.seriesBackward(s, wk, b, int(i))
		})
		if err != nil {
			return err
		}
	}
	g.finishParams()
	return nil
}

// seriesForward routes reach i of member b over the whole run: its inflow
// series is complete (its upstream reaches have added their outflows), and
// its outflow goes into its downstream reach's.
func (g *gradRun) seriesForward(s *seriesRun, wk *gradWorker, b, i int) {
	e := g.e
	n, f, TF := g.N, e.f, g.TF
	x := s.xrow(b, n, i)
	H := s.row - TF
	// The inflows before the run are the reach's initial discharge (only
	// those the taps reach, and the adjoint's wider span, are read).
	q0 := 0.0
	if e.o.InitialQ != nil {
		q0 = e.o.InitialQ[i]
	}
	_, hi8 := tapSpan8(int(e.tapLo[i]), int(e.tapHi[i]), H)
	for k := range x[H-max(hi8-1, 0) : H] {
		x[H-max(hi8-1, 0)+k] = q0
	}
	in := x[H:]
	// Outflows of the parts' reaches draining into this trunk reach.
	for _, u := range e.net.Upstream(i) {
		if k := s.slot[u]; k >= 0 {
			addOrStore(in, s.bnd[k], s.filled[i])
			s.filled[i] = true
		}
	}
	lat := g.lat[(b*n+i)*g.T:][:g.T]
	if s.filled[i] {
		for q, l := range lat {
			for j := range in[q*f : q*f+f] {
				in[q*f+j] += l
			}
		}
	} else {
		for q, l := range lat {
			for j := range in[q*f : q*f+f] {
				in[q*f+j] = l
			}
		}
	}
	if ext := g.in[i]; ext != nil {
		for k, v := range ext[b*TF : (b+1)*TF] {
			in[k] += v
		}
	}
	// The outflow goes straight into the downstream reach's inflow when it
	// is the first there, else through the worker's scratch.
	d := e.net.down[i]
	var xd []float64
	if d >= 0 && s.slot[i] < 0 {
		xd = s.xrow(b, n, int(d))[H:]
	}
	wk.u = grow(wk.u, TF)
	y := wk.u
	if xd != nil && !s.filled[d] {
		y = xd
	}
	convTapsForward(e.rev[i], int(e.tapHi[i]), x, H, y)
	g.coarsen(b, i, 0, TF, q0, y)
	if o := g.out[i]; o != nil {
		copy(o[b*TF:(b+1)*TF], y)
	}
	switch {
	case d < 0:
	case s.slot[i] >= 0:
		copy(s.bnd[s.slot[i]], y)
	default:
		if s.filled[d] {
			addOrStore(xd, y, true)
		}
		s.filled[d] = true
	}
}

// tapSpan8 widens taps[lo:hi] to a multiple of 8 taps where the window of
// H+1 taps allows: the span whose ∂L/∂taps the vector kernel computes in
// whole blocks (a few more outputs cost less than a scalar tail over the
// whole run).
func tapSpan8(lo, hi, H int) (lo8, hi8 int) {
	l8 := (hi - lo + 7) &^ 7
	hi8 = min(H+1, lo+l8)
	lo8 = max(0, hi8-l8)
	return lo8, hi8
}

// addOrStore adds src into dst, or with add false stores it.
func addOrStore(dst, src []float64, add bool) {
	dst = dst[:len(src)]
	if !add {
		copy(dst, src)
		return
	}
	for k, v := range src {
		dst[k] += v
	}
}

// seriesBackward is the adjoint of reach i of member b over the whole run:
// its downstream reach's inflow series already holds that inflow's adjoint,
// and its own is overwritten with its own (its inflows are read for the
// last time here).
func (g *gradRun) seriesBackward(s *seriesRun, wk *gradWorker, b, i int) {
	e := g.e
	n, f, TF := g.N, e.f, g.TF
	x := s.xrow(b, n, i)
	H := s.row - TF
	// ∂L/∂y over the run, then H zeros (no outflow after the run).
	wk.ybx = grow(wk.ybx, TF+H)
	ybx := wk.ybx
	ybar := ybx[:TF]
	clear(ybx[TF:])
	g.directBlock(ybar, b, i, 0)
	if d := e.net.down[i]; d >= 0 {
		for k, v := range s.xrow(b, n, int(d))[H:] {
			ybar[k] += v
		}
	}
	if go_ := g.gout[i]; go_ != nil {
		for k, v := range go_[b*TF : (b+1)*TF] {
			ybar[k] += v
		}
	}
	taps := e.taps[i]
	lo, hi := int(e.tapLo[i]), int(e.tapHi[i])
	// ∂L/∂taps is computed over tapSpan8 and kept for taps[lo:hi], the taps
	// the forward pass convolves with.
	lo8, hi8 := tapSpan8(lo, hi, H)
	if hi > lo {
		wk.tmp = grow(wk.tmp, hi8-lo8)
		tmp := wk.tmp
		convDense(ybar, x[H-hi8+1:], tmp)
		// tmp[m] is ∂L/∂taps[hi8−1−m].
		dh := g.dh[i]
		for k := lo; k < hi; k++ {
			dh[k] += tmp[hi8-1-k]
		}
	}
	// The history before the first step is q0, as is the outflow before it.
	g.dq0[i] += convHistoryAdjoint(taps, lo, hi, ybx)
	g.dq0[i] += g.direct(b, i, -1)
	ub := x[H:]
	convInflowAdjoint(taps, lo, hi, ybx, ub)
	dx := g.dx[(b*n+i)*g.T:][:g.T]
	for q := range dx {
		sum := 0.0
		for _, v := range ub[q*f : q*f+f] {
			sum += v
		}
		dx[q] += sum
	}
	if d := g.din[i]; d != nil {
		for k, v := range ub {
			d[b*TF+k] += v
		}
	}
}
