package diffroute

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
)

// gradEngine runs the recursive method in float64 forwards and its adjoint
// backwards. Reaches are visited upstream first in the forward pass and
// outlets first in the backward pass, each over a whole block of sub-steps:
// the forward pass keeps every reach's fine outflow for one block and the
// reaches' state at each block start, so memory is O(N·block), not O(N·T·f);
// blocks before the last are recomputed from their checkpoints. Networks
// whose every reach convolves keep every inflow series whole instead when
// that takes no more memory than the checkpoints would (runSeries).
type gradEngine struct {
	net    *Network
	o      Options
	f      int
	r      float64
	w      int // fine window of convolution reaches
	irf    IRF
	params [][]float64 // per reach, irf.Params order
	gp     []int       // indices into irf.Params of the parameters with a gradient

	secStart []int32
	secs     []Section
	dsecs    [][]Section // [j][section]: ∂section/∂params[gp[j]]
	taps     [][]float64 // convolution reaches: full window of taps
	// tapLo, tapHi bound the taps that matter (above 1e-13 of the peak):
	// a smooth kernel such as Hayami's is negligible over most of a long
	// window, and so is its derivative there.
	tapLo, tapHi []int32
	rev          [][]float64 // taps[tapLo:tapHi] reversed, for convDense
	histMean     float64     // convolution history per reach (W−1 per convolution reach)
	nconv        int         // convolution reaches

	parts [][]int32
	trunk []int32
	block int // fine sub-steps per block, a multiple of f

	tiles bool    // the tiled adjoint runs (grad_tiles.go)
	tl    *tiling // its tiling for the last block length

	// Series buffers kept between runs: calibration runs the same router
	// many times, and fresh pages cost more than the arithmetic on them.
	latBuf, yBuf, gyBuf, dxBuf []float64
	gyT                        *DataTensor
	gyZero                     bool               // gyT is all zeros (the tiled adjoint zeroed it as it read it)
	tileBuf                    []float64          // per-reach scratch of the tiled backward pass
	tileStateBuf               []float64          // the state of the tiled passes
	rowTBuf                    []int              // the runoff rows and the reaches in tile order
	dsecTBuf                   [][3]float64       // section sums of the tiled backward pass
	ckBuf                      [][]gradCheckpoint // [b][block]
	dhBuf, ybnBuf              []float64          // convRows slabs
	chunkALBuf                 []float64          // gradRun.chunkAL
}

// rows returns per-reach block buffers for the outflows and adjoints of a
// block, from a slab kept between runs: calibration builds a router for
// every set of parameters, and touching fresh pages for every gradient
// would cost more than the gradient.
func (e *gradEngine) rows(bl int) (Y, UB [][]float64, release func()) {
	n := e.net.Len()
	slab := slabs.take(2 * n * bl)
	Y, UB = make([][]float64, n), make([][]float64, n)
	for i := 0; i < n; i++ {
		Y[i] = slab[i*bl : (i+1)*bl : (i+1)*bl]
		UB[i] = slab[(n+i)*bl : (n+i+1)*bl : (n+i+1)*bl]
	}
	return Y, UB, func() { slabs.put(slab) }
}

// bufPool keeps the largest buffer released, for the next run: calibration
// builds a router for every set of parameters, and a gradient's buffers
// are hundreds of MB of fresh pages otherwise.
type bufPool[E float32 | float64] struct {
	mu   sync.Mutex
	buf  []E
	huge bool // new buffers ask for huge pages
}

// take returns n values (not cleared): the kept buffer when it is large
// enough, else a new one.
func (p *bufPool[E]) take(n int) []E {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cap(p.buf) >= n {
		s := p.buf[:n]
		p.buf = nil
		return s
	}
	s := make([]E, n)
	if p.huge {
		adviseHugePages(s)
	}
	return s
}

// put releases s, kept if it is the largest.
func (p *bufPool[E]) put(s []E) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cap(s) > cap(p.buf) {
		p.buf = s
	}
}

// slabs are the block buffers of the gradient engines.
var slabs = bufPool[float64]{huge: true}

// makeSeries allocates n float64 values, asking for huge pages where the
// buffer is large: a gradient touches hundreds of MB of fresh buffers
// (block outflows, checkpoints, series), and faulting them in 4 KiB pages
// cost more system time than the first run's arithmetic on a virtual
// machine (2.7 s of 7 CPU-s on Hayami, 20,000 reaches × 2,400 sub-steps).
func makeSeries(n int) []float64 {
	s := make([]float64, n)
	adviseHugePages(s)
	return s
}

// gradAutoBlockBytes bounds the block buffers (outflows and adjoints of
// every reach) when Options.CheckpointSteps is 0, and gradMaxAutoBlocks the
// number of blocks (each keeps a checkpoint of every reach's state). Short
// blocks cost one more forward pass but keep the buffers small: cheaper
// than touching, and streaming through, long ones (measured: half the CPU
// time and 40 % of the memory on 5,000 reaches × 2,880 sub-steps).
const (
	gradAutoBlockBytes = 32 << 20
	gradMaxAutoBlocks  = 32
)

// autoBlock is the block length (sub-steps, whole runoff steps) for n
// reaches, TF sub-steps and f sub-steps per step, when the reaches keep on
// average hist inflows of convolution history in each checkpoint. Such
// checkpoints outweigh the block buffers (hist ~ W−1 against a few values
// for sections), so blocks are lengthened to about √(hist·TF/2), where
// buffers (∝ block) and checkpoints (∝ 1/block) balance.
func autoBlock(n, TF, f int, hist float64) int {
	if int64(n)*int64(TF)*16 <= gradAutoBlockBytes {
		return TF
	}
	bl := int(gradAutoBlockBytes / (16 * int64(max(n, 1))))
	bl = max(bl, (TF+gradMaxAutoBlocks-1)/gradMaxAutoBlocks)
	bl = max(bl, int(math.Sqrt(hist*float64(TF)/2)))
	return min(TF, max(f, (bl+f-1)/f*f))
}

// errNoParamGrad reports an IRF without parameter derivatives.
func errNoParamGrad(irf IRF) error {
	if irf.Name == "pure_lag" {
		return fmt.Errorf("diffroute: pure_lag's delay is a whole number of sub-steps in effect and has no gradient; gradients with respect to runoff and the initial discharge are available (ask for no parameter gradient)")
	}
	return fmt.Errorf("diffroute: IRF %q registers no parameter derivatives (IRF.GradParams with SectionsGrad or ImpulseGrad): no gradient with respect to its parameters", irf.Name)
}

// newGradEngine prepares the adjoint of the recursive method. With
// paramGrads false, parameter derivatives are not required (gradients with
// respect to runoff and initial discharge only).
func newGradEngine(net *Network, opts Options, paramGrads bool) (*gradEngine, error) {
	return newGradEngineTaps(net, opts, paramGrads, nil)
}

// newGradEngineTaps is newGradEngine with the convolution reaches' taps
// already evaluated for opts (nil: evaluated here).
func newGradEngineTaps(net *Network, opts Options, paramGrads bool, full *irfTaps) (*gradEngine, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.ReLU || o.Normalize || o.ExcludeSelf {
		return nil, fmt.Errorf("diffroute: the recursive adjoint has no ReLU, kernel normalisation or excluded self pairs (--compat diffroute): parameter gradients of those kernels are not implemented")
	}
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return nil, err
	}
	n := net.Len()
	if o.InitialQ != nil && len(o.InitialQ) != n {
		return nil, fmt.Errorf("diffroute: initial discharge has %d values for %d reaches", len(o.InitialQ), n)
	}
	w := o.MaxDelay * o.SubSteps
	tab, err := newIRFTable(irf, o.Params, net, o.SubSteps, w)
	if err != nil {
		return nil, err
	}
	e := &gradEngine{net: net, o: o, f: o.SubSteps, r: 1 / float64(o.SubSteps), w: w, irf: irf,
		params: tab.params, secStart: make([]int32, n+1), taps: make([][]float64, n),
		tapLo: make([]int32, n), tapHi: make([]int32, n), rev: make([][]float64, n)}
	if paramGrads {
		if len(irf.GradParams) == 0 {
			return nil, errNoParamGrad(irf)
		}
		for _, name := range irf.GradParams {
			j := slices.Index(irf.Params, name)
			if j < 0 {
				return nil, fmt.Errorf("diffroute: IRF %q lists gradient parameter %q, which is not one of its parameters", irf.Name, name)
			}
			e.gp = append(e.gp, j)
		}
	}
	var dsec [][]Section
	if len(e.gp) > 0 {
		e.dsecs = make([][]Section, len(e.gp))
		dsec = make([][]Section, len(irf.Params))
	}
	if full != nil && (irf.Sections != nil || full.w != w || len(full.h) != n*w) {
		full = nil
	}
	for i := 0; i < n; i++ {
		var ri reachIRF
		if full != nil {
			ri.taps = full.row(i)
		} else if ri, err = tab.reach(i, net, true); err != nil {
			return nil, err
		}
		if ri.sections != nil {
			e.secs = append(e.secs, ri.sections...)
			if len(e.gp) > 0 {
				if irf.SectionsGrad == nil {
					return nil, errNoParamGrad(irf)
				}
				for j := range dsec {
					dsec[j] = slices.Grow(dsec[j][:0], len(ri.sections))[:len(ri.sections)]
				}
				if err := irf.SectionsGrad(dsec, e.params[i], e.r); err != nil {
					return nil, reachIRFError(net.ID(i), irf.Name, err)
				}
				for j, pj := range e.gp {
					e.dsecs[j] = append(e.dsecs[j], dsec[pj]...)
				}
			}
		} else {
			if len(e.gp) > 0 && irf.ImpulseGrad == nil {
				return nil, errNoParamGrad(irf)
			}
			e.taps[i] = ri.taps
			e.tapLo[i], e.tapHi[i] = tapRange(ri.taps)
		}
		e.secStart[i+1] = int32(len(e.secs))
	}
	// The taps that matter, reversed, in one allocation.
	nrev := 0
	for i := range n {
		nrev += int(e.tapHi[i] - e.tapLo[i])
	}
	revs := make([]float64, nrev)
	for i, t := range e.taps {
		if t == nil {
			continue
		}
		l := int(e.tapHi[i] - e.tapLo[i])
		rev := revs[:l:l]
		revs = revs[l:]
		copy(rev, t[e.tapLo[i]:e.tapHi[i]])
		slices.Reverse(rev)
		e.rev[i] = rev
	}
	nconv := 0
	for _, t := range e.taps {
		if t != nil {
			nconv++
		}
	}
	e.histMean = float64(nconv) / float64(max(n, 1)) * float64(max(w-1, 0))
	e.nconv = nconv
	e.parts, e.trunk = partition(net, o.Workers)
	if o.CheckpointSteps > 0 {
		e.block = o.CheckpointSteps * e.f
	}
	e.tiles = e.tilesUsable()
	return e, nil
}

// gradNames returns the names of the parameters with a gradient.
func (e *gradEngine) gradNames() []string {
	names := make([]string, len(e.gp))
	for j, pj := range e.gp {
		names[j] = e.irf.Params[pj]
	}
	return names
}

// gradRun is one forward+backward computation over a batch.
type gradRun struct {
	e       *gradEngine
	B, N, T int
	TF      int
	lat     []float64 // [b][i][t] lateral runoff, network order
	y       []float64 // [b][i][t] coarse discharge, network order
	gy      []float64 // [b][i][t] ∂L/∂y, network order (set before backward)
	in      [][]float64
	inPrev  []float64   // [i] inflow before the first step from outside the network (staged transfers under qinit)
	out     [][]float64 // fine outflow of outlets, [i] → B·TF values (forward)
	gout    [][]float64 // ∂L/∂(fine outflow of outlets) [i] → B·TF values (backward)

	// results
	dx      []float64   // [b][i][t]
	dth     [][]float64 // [j][i]
	dq0     []float64   // [i]
	din     [][]float64 // ∂L/∂in[i], B·TF values, for reaches with fine inflow
	dinPrev []float64   // ∂L/∂inPrev[i]
	dh      [][]float64 // convolution reaches: Σ over blocks and batch of ∂L/∂h[k]
	dsec    [][3]float64

	// per batch member, per block
	nblk  int
	yLast []float64 // [i]
	ys    []float64 // [section]
	uPrev []float64 // [i]
	lPrev []float64 // [i]
	// hist holds, per convolution reach, the W−1 inflows before the block:
	// rows of the block's checkpoint, read in place; histOut the rows of
	// the next block's checkpoint, which the first forward pass fills
	// (nil: recomputation, or the last block).
	hist, histOut [][]float64
	histNext      bool
	Y             [][]float64 // [i] fine outflow over the current block
	UB            [][]float64 // [i] ∂L/∂(inflow) over the current block
	lam           []float64   // [section] λ at the first sub-step of the next block
	ybn           [][]float64 // [i] conv reaches: ∂L/∂y of the next W−1 sub-steps
	wks           []*gradWorker

	// the tiled adjoint
	x             *DataTensor // the runoff (lat is nil: the tiled adjoint reads its rows)
	rows          []int
	y32, gy32     []float32   // discharge and ∂L/∂y in float32 instead of y and gy (tiled)
	dxT           *DataTensor // ∂L/∂runoff in the runoff's layout instead of dx (tiled)
	noY           bool        // no discharge wanted (Backward)
	dxCarry       []float64   // [p] tiled, lti rule: ∂L/∂runoff of the step before a block
	bound         [][]float64 // per boundary slot: outflow, then its adjoint (TF values)
	ckY, ckU, ckL []float64   // [block][p] state at block starts
	lamT          []float64   // [p] λ at the first sub-step of the next block
	rowT          []int       // [p] the runoff's row
	reachT        []int       // [p] the reach
	ysT           []float64   // [section in tile order] ys, during the tiled passes
	uPrevT        []float64   // [p] uPrev, during the tiled passes
	lPrevT        []float64   // [p] lPrev, during the tiled passes
	xT, yT        []float32   // [b][p][t] staged runoff; discharge, then ∂L/∂y, then ∂L/∂runoff
	dsecT         [][3]float64
	gyNext        []float64 // [p] ∂L/∂y of the first step of the block after
	dq0T, dq0UpT  []float64 // [p] ∂L/∂q0 of the reach, of each upstream reach
	zeroGy        bool      // zero ∂L/∂y (gy32) as it is read: the router's own tensor
	// whether any reach has a fine inflow, a fine output, ∂L/∂ of one
	anyIn, anyOut, anyGout bool
	keep                   *Gradients // RouteGradTo's: its slices are reused
	chunk                  bool       // the backward pass runs whole chunkSteps-step blocks chunked
	chunkL                 int        // sub-steps of a chunk of a full block
	chunkAL                []float64  // per section in tile order: a^chunkL
	twks                   []*tileWorker

	series bool // the whole-series adjoint runs (grad_series.go)
}

type gradCheckpoint struct {
	yLast, ys, uPrev, lPrev []float64
	hist                    []float64 // W−1 inflows per convolution reach, in gradRun.hist's rows
}

// gradWorker holds one goroutine's scratch.
type gradWorker struct {
	u, ybar, y0 []float64
	sec         [][]float64 // per section outputs over the block
	ext, ybx    []float64
	tmp         []float64
}

func (e *gradEngine) newRun(lat []float64, B, T int) *gradRun {
	n := e.net.Len()
	g := &gradRun{e: e, B: B, N: n, T: T, TF: T * e.f, lat: lat}
	g.in = make([][]float64, n)
	g.out = make([][]float64, n)
	g.gout = make([][]float64, n)
	return g
}

// blockLen is the fine length of the blocks (whole runoff steps).
func (e *gradEngine) blockLen(TF int) int {
	bl := e.block
	if bl <= 0 {
		bl = autoBlock(e.net.Len(), TF, e.f, e.histMean)
	}
	bl = max(e.f, bl/e.f*e.f)
	return min(bl, max(TF, e.f))
}

// step returns the lateral runoff of reach i at runoff step q for member b.
func (g *gradRun) latAt(b, i, q int) float64 { return g.lat[(b*g.N+i)*g.T+q] }

func (g *gradRun) initState(b int) {
	e, n := g.e, g.N
	if g.yLast == nil {
		g.yLast = make([]float64, n)
		g.ys = make([]float64, len(e.secs))
		g.uPrev = make([]float64, n)
		g.lPrev = make([]float64, n)
	}
	q0 := e.o.InitialQ
	for i := 0; i < n; i++ {
		q := 0.0
		if q0 != nil {
			q = q0[i]
		}
		up := 0.0
		if q0 != nil {
			for _, u := range e.net.Upstream(i) {
				up += q0[u]
			}
		}
		if g.inPrev != nil {
			up += g.inPrev[i]
		}
		g.yLast[i], g.uPrev[i], g.lPrev[i] = q, up, 0
		for k := e.secStart[i]; k < e.secStart[i+1]; k++ {
			g.ys[k] = q
		}
		if e.taps[i] != nil {
			for k := range g.hist[i] {
				g.hist[i][k] = q
			}
		}
	}
}

func (g *gradRun) save(c *gradCheckpoint) {
	c.yLast = append(c.yLast[:0], g.yLast...)
	c.ys = append(c.ys[:0], g.ys...)
	c.uPrev = append(c.uPrev[:0], g.uPrev...)
	c.lPrev = append(c.lPrev[:0], g.lPrev...)
}

func (g *gradRun) restore(c *gradCheckpoint) {
	copy(g.yLast, c.yLast)
	copy(g.ys, c.ys)
	copy(g.uPrev, c.uPrev)
	copy(g.lPrev, c.lPrev)
}

// pointHist points g.hist at checkpoint c's convolution history and
// g.histOut at next's (nil: the history is not carried on). The
// checkpoints' histories are the only copies: the forward pass reads one
// and writes the next in place, the backward pass reads them where they
// are.
func (g *gradRun) pointHist(c, next *gradCheckpoint) {
	e := g.e
	H := max(e.w-1, 0)
	rows := func(rows [][]float64, c *gradCheckpoint) [][]float64 {
		if rows == nil {
			rows = make([][]float64, g.N)
		}
		if cap(c.hist) < e.nconv*H {
			c.hist = makeSeries(e.nconv * H)
		}
		c.hist = c.hist[:e.nconv*H]
		k := 0
		for i, t := range e.taps {
			if t != nil {
				rows[i] = c.hist[k*H : (k+1)*H : (k+1)*H]
				k++
			}
		}
		return rows
	}
	if e.nconv == 0 {
		return
	}
	g.hist = rows(g.hist, c)
	g.histNext = next != nil
	if next != nil {
		g.histOut = rows(g.histOut, next)
	}
}

// each runs fn over the reaches, upstream first (forward) or outlets first
// (backward), in parallel over independent subtrees.
func (g *gradRun) each(ctx context.Context, backward bool, fn func(wk *gradWorker, i int32)) error {
	e := g.e
	for len(g.wks) < max(1, len(e.parts)) {
		g.wks = append(g.wks, &gradWorker{})
	}
	runParts := func() {
		var wg sync.WaitGroup
		for p, part := range e.parts {
			wg.Add(1)
			go func(wk *gradWorker, part []int32) {
				defer wg.Done()
				if backward {
					for k := len(part) - 1; k >= 0; k-- {
						if cancelled(ctx, k) {
							return
						}
						fn(wk, part[k])
					}
					return
				}
				for k, i := range part {
					if cancelled(ctx, k) {
						return
					}
					fn(wk, i)
				}
			}(g.wks[p], part)
		}
		wg.Wait()
	}
	if backward {
		for k := len(e.trunk) - 1; k >= 0; k-- {
			fn(g.wks[0], e.trunk[k])
		}
		runParts()
	} else {
		runParts()
		for _, i := range e.trunk {
			fn(g.wks[0], i)
		}
	}
	return ctx.Err()
}

// reuse returns n values of the buffer *p, reallocated when too short.
func reuse(p *[]float64, n int) []float64 {
	if cap(*p) < n {
		*p = makeSeries(n)
	}
	return (*p)[:n]
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// inflow builds reach i's upstream inflow over the block [n0, n0+nb) from
// the stored outflows of its upstream reaches and its fine inflow.
func (g *gradRun) inflow(dst []float64, b int, i int32, n0, nb int) []float64 {
	dst = grow(dst, nb)
	clear(dst)
	for _, u := range g.e.net.Upstream(int(i)) {
		for n, v := range g.Y[u][:nb] {
			dst[n] += v
		}
	}
	if ext := g.in[i]; ext != nil {
		for n, v := range ext[b*g.TF+n0 : b*g.TF+n0+nb] {
			dst[n] += v
		}
	}
	return dst
}

// forwardBlock routes every reach over the block [n0, n0+nb) for member b,
// storing each reach's fine outflow in Y and, when coarse, its discharge.
func (g *gradRun) forwardBlock(ctx context.Context, b, n0, nb int, coarse bool) error {
	e := g.e
	return g.each(ctx, false, func(wk *gradWorker, i int32) {
		wk.u = g.inflow(wk.u, b, i, n0, nb)
		y := g.Y[i][:nb]
		yPrev := g.yLast[i]
		if t := e.taps[i]; t != nil {
			g.convForward(wk, b, int(i), n0, nb, y)
		} else {
			g.secForward(b, int(i), n0, nb, wk.u, y, nil)
		}
		if o := g.out[i]; o != nil {
			copy(o[b*g.TF+n0:], y)
		}
		if coarse {
			g.coarsen(b, int(i), n0, nb, yPrev, y)
		}
		g.yLast[i] = y[nb-1]
	})
}

// secForward runs reach i's sections over the block from the state in g,
// writing the outflow into y and, when sec is not nil, every section's
// output into sec[k]; the state advances.
func (g *gradRun) secForward(b, i, n0, nb int, u, y []float64, sec [][]float64) {
	e := g.e
	f := e.f
	if e.secStart[i+1]-e.secStart[i] == 1 && sec == nil {
		g.oneForward(b, i, n0, nb, u, y)
		return
	}
	secs := e.secs[e.secStart[i]:e.secStart[i+1]]
	ys := g.ys[e.secStart[i]:e.secStart[i+1]]
	rapid := e.o.Lateral == LateralRAPID
	up, lp := g.uPrev[i], g.lPrev[i]
	for n := 0; n < nb; n++ {
		gn := n0 + n
		l := g.latAt(b, i, gn/f)
		lprev := l
		if !rapid && gn%f == 0 {
			lprev = lp
		}
		x, xp := u[n]+l, up+lprev
		for k, s := range secs {
			yk := s.B0*x + s.B1*xp + s.A1*ys[k]
			xp = ys[k]
			ys[k] = yk
			x = yk
			if sec != nil {
				sec[k][n] = yk
			}
		}
		y[n] = x
		up, lp = u[n], l
	}
	g.uPrev[i], g.lPrev[i] = up, lp
}

// oneForward is secForward for a single section, step by step.
func (g *gradRun) oneForward(b, i, n0, nb int, u, y []float64) {
	e := g.e
	f := e.f
	s := e.secs[e.secStart[i]]
	yv := g.ys[e.secStart[i]]
	rapid := e.o.Lateral == LateralRAPID
	up, lp := g.uPrev[i], g.lPrev[i]
	lat := g.lat[(b*g.N+i)*g.T:][:g.T]
	u, y = u[:nb], y[:nb]
	for q0 := 0; q0 < nb; q0 += f {
		l := lat[(n0+q0)/f]
		lprev := l
		if !rapid {
			lprev = lp
		}
		uu := u[q0 : q0+f]
		yy := y[q0 : q0+f]
		uv := uu[0]
		yv = s.B0*(uv+l) + s.B1*(up+lprev) + s.A1*yv
		yy[0] = yv
		up = uv
		c := (s.B0 + s.B1) * l
		for j := 1; j < f; j++ {
			uv := uu[j]
			yv = s.B0*uv + s.B1*up + s.A1*yv + c
			yy[j] = yv
			up = uv
		}
		lp = l
	}
	g.ys[e.secStart[i]] = yv
	g.uPrev[i], g.lPrev[i] = up, lp
}

// convForward convolves reach i's inflow over the block with its taps.
func (g *gradRun) convForward(wk *gradWorker, b, i, n0, nb int, y []float64) {
	e := g.e
	f := e.f
	h := g.hist[i]
	H := len(h)
	wk.ext = grow(wk.ext, H+nb)
	ext := wk.ext
	copy(ext, h)
	g.fillInflow(ext[H:H+nb], wk.u, b, i, n0, f)
	convTapsForward(e.rev[i], int(e.tapHi[i]), ext, H, y[:nb])
	if g.histNext {
		copy(g.histOut[i], ext[nb:])
	}
}

// fillInflow sets dst[n] = u[n] + the lateral runoff of reach i at sub-step
// n0+n (member b), one runoff step (f sub-steps) at a time; n0 is a whole
// number of steps.
func (g *gradRun) fillInflow(dst, u []float64, b, i, n0, f int) {
	lat := g.lat[(b*g.N+i)*g.T:][:g.T]
	for m := 0; m < len(dst); m += f {
		l := lat[(n0+m)/f]
		uu, dd := u[m:m+f], dst[m:m+f]
		for k, v := range uu {
			dd[k] = v + l
		}
	}
}

// The adjoint engine's convolution reaches: taps[k] multiplies the inflow k
// sub-steps earlier; only taps[lo:hi] are non-negligible. ext holds H
// inflows before the block, then the block's; ybx holds ∂L/∂y over the block,
// then over the H sub-steps after it. The sums run on the dense vector kernel
// (convDense), in another order than plain loops: equal to float64 rounding.

// convTapsForward sets y[n] = Σ_k taps[k]·ext[H+n−k], n < len(y), from
// rev[j] = taps[hi−1−j] (taps[lo:hi] reversed):
// y[n] = Σ_j rev[j]·ext[H−hi+1+n+j].
func convTapsForward(rev []float64, hi int, ext []float64, H int, y []float64) {
	if len(rev) == 0 {
		clear(y)
		return
	}
	convDense(rev, ext[H-hi+1:], y)
}

// convTapsAdjoint adds ∂L/∂taps[k] = Σ_n ȳ[n]·ext[H−k+n] over the block
// (n < len(ybar)) into dh for k in [lo, hi); tmp holds hi−lo values.
func convTapsAdjoint(dh []float64, lo, hi int, ybar, ext []float64, H int, tmp []float64) {
	if hi <= lo || len(ybar) == 0 {
		return
	}
	// With m = hi−1−k: Σ_n ȳ[n]·ext[H−hi+1+m+n], a correlation with ȳ as
	// the kernel.
	tmp = tmp[:hi-lo]
	convDense(ybar, ext[H-hi+1:], tmp)
	for m, v := range tmp {
		dh[hi-1-m] += v
	}
}

// convInflowAdjoint sets ub[m] = ∂L/∂in[m] = Σ_k taps[k]·ȳ[m+k] for the
// block's inflows (m < len(ub)).
func convInflowAdjoint(taps []float64, lo, hi int, ybx, ub []float64) {
	if hi <= lo {
		clear(ub)
		return
	}
	convDense(taps[lo:hi], ybx[lo:], ub)
}

// convHistoryAdjoint is Σ_{m<0} ∂L/∂in[m] over the H inflows before the
// block: Σ_{m=−H}^{−1} Σ_{k≥−m} taps[k]·ȳ[m+k] = Σ_k taps[k]·Σ_{p<k} ȳ[p].
func convHistoryAdjoint(taps []float64, lo, hi int, ybx []float64) float64 {
	s, c := 0.0, 0.0
	for p := 0; p < hi; p++ {
		if p >= lo {
			s += taps[p] * c
		}
		c += ybx[p]
	}
	return s
}

// tapRange returns the range of taps at or above 1e-13 of the largest.
func tapRange(taps []float64) (lo, hi int32) {
	peak := 0.0
	for _, c := range taps {
		peak = max(peak, math.Abs(c))
	}
	lo, hi = int32(len(taps)), 0
	for k, c := range taps {
		if c != 0 && math.Abs(c) >= 1e-13*peak {
			lo, hi = min(lo, int32(k)), int32(k+1)
		}
	}
	if hi == 0 {
		return 0, 0
	}
	return lo, hi
}

// coarsen writes reach i's discharge for the runoff steps of the block from
// its fine outflow y (yPrev: the outflow before the block).
func (g *gradRun) coarsen(b, i, n0, nb int, yPrev float64, y []float64) {
	e := g.e
	f := e.f
	start := e.o.Average == AverageStart
	at := func(n int) float64 { // fine outflow at block-local n (−1: before)
		if n < 0 {
			return yPrev
		}
		return y[n]
	}
	dst := g.y[(b*g.N+i)*g.T:]
	for q := 0; q < nb/f; q++ {
		base := q * f
		v := 0.0
		switch {
		case e.o.Sampling == SampleLast && start:
			v = at(base + f - 2)
		case e.o.Sampling == SampleLast:
			v = at(base + f - 1)
		default:
			off := 0
			if start {
				off = -1
			}
			for j := 0; j < f; j++ {
				v += at(base + j + off)
			}
			v /= float64(f)
		}
		dst[n0/f+q] = v
	}
}

// direct is ∂L/∂(fine outflow at global sub-step n) through reach i's own
// discharge; n = −1 is the outflow before the first step.
func (g *gradRun) direct(b, i, n int) float64 {
	e := g.e
	f := e.f
	gy := g.gy[(b*g.N+i)*g.T:][:g.T]
	start := e.o.Average == AverageStart
	if e.o.Sampling == SampleLast {
		pos := f - 1
		if start {
			pos = f - 2
		}
		// n = q·f + pos for some step q (pos may be −1 when f = 1).
		q, rem := (n-pos)/f, (n-pos)%f
		if n-pos < 0 || rem != 0 || q >= g.T {
			return 0
		}
		return gy[q]
	}
	if start {
		n++
	}
	if n < 0 || n >= g.TF {
		return 0
	}
	return gy[n/f] / float64(f)
}

// directBlock fills ybar with direct(b, i, n0+n) for the block.
func (g *gradRun) directBlock(ybar []float64, b, i, n0 int) {
	e := g.e
	f := e.f
	if e.o.Sampling == SampleLast || n0%f != 0 {
		for n := range ybar {
			ybar[n] = g.direct(b, i, n0+n)
		}
		return
	}
	gy := g.gy[(b*g.N+i)*g.T:][:g.T]
	inv := 1 / float64(f)
	m := n0 // global sub-step whose step's ∂L/∂y ybar[n] takes
	if e.o.Average == AverageStart {
		m++ // y[n] is the start of sub-step n+1
	}
	// A step's f sub-steps at a time.
	for n := 0; n < len(ybar); {
		q := m / f
		if q >= g.T {
			clear(ybar[n:])
			return
		}
		seg := ybar[n:min(len(ybar), n+f-m%f)]
		v := gy[q] * inv
		for k := range seg {
			seg[k] = v
		}
		n += len(seg)
		m += len(seg)
	}
}

// run computes the forward pass (into g.y) and, when g.gy is set by the
// loss callback between the passes, the backward pass.
func (g *gradRun) run(ctx context.Context, loss func() error) error {
	if g.e.tiles {
		return g.runTiles(ctx, loss)
	}
	if g.e.seriesUsable(g.B, g.TF) {
		return g.runSeries(ctx, loss)
	}
	e := g.e
	g.y = reuse(&e.yBuf, g.B*g.N*g.T)
	bl := e.blockLen(g.TF)
	g.nblk = (g.TF + bl - 1) / bl
	if g.TF == 0 {
		g.nblk = 0
	}
	var release func()
	g.Y, g.UB, release = e.rows(bl)
	defer release()
	// Forward: every batch member, every block; only the last block's
	// outflows of the last member stay in Y, so the backward pass below
	// recomputes the other blocks from their checkpoints.
	// Checkpoints are kept between runs (a convolution reach's holds W−1
	// inflows: fresh pages for every gradient would cost more than filling
	// them).
	for len(e.ckBuf) < g.B {
		e.ckBuf = append(e.ckBuf, nil)
	}
	allCk := e.ckBuf[:g.B]
	for b := 0; b < g.B; b++ {
		for len(allCk[b]) < max(g.nblk, 1) {
			allCk[b] = append(allCk[b], gradCheckpoint{})
		}
		g.pointHist(&allCk[b][0], nil)
		g.initState(b)
		for k := 0; k < g.nblk; k++ {
			n0 := k * bl
			nb := min(bl, g.TF-n0)
			g.save(&allCk[b][k])
			var next *gradCheckpoint
			if k+1 < g.nblk {
				next = &allCk[b][k+1]
			}
			g.pointHist(&allCk[b][k], next)
			if err := g.forwardBlock(ctx, b, n0, nb, true); err != nil {
				return err
			}
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
		clear(g.lam)
		for _, v := range g.ybn {
			clear(v)
		}
		for k := g.nblk - 1; k >= 0; k-- {
			n0 := k * bl
			nb := min(bl, g.TF-n0)
			g.pointHist(&allCk[b][k], nil)
			if b != g.B-1 || k != g.nblk-1 {
				g.restore(&allCk[b][k])
				if err := g.forwardBlock(ctx, b, n0, nb, false); err != nil {
					return err
				}
			}
			g.restore(&allCk[b][k])
			if err := g.backwardBlock(ctx, b, n0, nb); err != nil {
				return err
			}
		}
	}
	g.finishParams()
	return nil
}

// allocResults allocates the gradients and the adjoint's carried state.
func (g *gradRun) allocResults() {
	e, n := g.e, g.N
	if g.dxT == nil {
		g.dx = reuse(&e.dxBuf, g.B*n*g.T)
		if !e.tiles {
			clear(g.dx) // accumulated into; the tiled adjoint stores every value
		}
	}
	// The caller's slices where it keeps them (RouteGradTo), else new ones
	// (the results are the caller's).
	g.dq0 = make([]float64, n)
	if k := g.keep; k != nil && len(k.InitialQ) == n {
		g.dq0 = k.InitialQ
		clear(g.dq0)
	}
	g.dth = make([][]float64, len(e.gp))
	for j, name := range e.gradNames() {
		if k := g.keep; k != nil && len(k.Params[name]) == n {
			g.dth[j] = k.Params[name]
			clear(g.dth[j])
			continue
		}
		g.dth[j] = make([]float64, n)
	}
	g.dsec = make([][3]float64, len(e.secs))
	var dh []float64
	g.dh, dh = e.convRows(&e.dhBuf, e.w)
	clear(dh)
	g.din = make([][]float64, n)
	for i := range g.in {
		if g.in[i] != nil {
			g.din[i] = make([]float64, len(g.in[i]))
		}
	}
	if g.inPrev != nil {
		g.dinPrev = make([]float64, n)
	}
	g.lam = make([]float64, len(e.secs))
	if !g.series {
		g.ybn, _ = e.convRows(&e.ybnBuf, e.w-1) // cleared before each batch member
	}
}

// convRows returns h values (not cleared) for each convolution reach, nil
// rows for the others, and the slab holding them all, kept in *buf between
// runs: calibration
// runs the same router many times, and fresh pages for tens of megabytes
// of history cost more than the arithmetic on them.
func (e *gradEngine) convRows(buf *[]float64, h int) ([][]float64, []float64) {
	n := e.net.Len()
	nconv := 0
	for _, t := range e.taps {
		if t != nil {
			nconv++
		}
	}
	slab := reuse(buf, nconv*h)
	rows := make([][]float64, n)
	k := 0
	for i, t := range e.taps {
		if t != nil {
			rows[i] = slab[k*h : (k+1)*h : (k+1)*h]
			k++
		}
	}
	return rows, slab
}

// backwardBlock runs the adjoint of every reach over the block, outlets
// first; g's state holds the block-start state (the checkpoint).
func (g *gradRun) backwardBlock(ctx context.Context, b, n0, nb int) error {
	e := g.e
	return g.each(ctx, true, func(wk *gradWorker, i int32) {
		// ∂L/∂(fine outflow): own discharge, downstream inflow, transfer.
		// ∂L/∂y over the block, with room after it for a convolution
		// reach's next W−1 sub-steps (convBackward).
		wk.ybx = grow(wk.ybx, nb+max(e.w-1, 0))
		wk.ybar = wk.ybx[:nb]
		ybar := wk.ybar
		g.directBlock(ybar, b, int(i), n0)
		if d := e.net.down[i]; d >= 0 {
			for n, v := range g.UB[d][:nb] {
				ybar[n] += v
			}
		}
		if go_ := g.gout[i]; go_ != nil {
			for n, v := range go_[b*g.TF+n0 : b*g.TF+n0+nb] {
				ybar[n] += v
			}
		}
		wk.u = g.inflow(wk.u, b, i, n0, nb)
		ub := g.UB[i][:nb]
		if e.taps[i] != nil {
			g.convBackward(wk, b, int(i), n0, nb, ub)
		} else {
			g.secBackward(wk, b, int(i), n0, nb, ub)
		}
		if n0 == 0 {
			// The outflow before the first step is the initial discharge.
			g.dq0[i] += g.direct(b, int(i), -1)
		}
		if d := g.din[i]; d != nil {
			for n, v := range ub {
				d[b*g.TF+n0+n] += v
			}
		}
	})
}

// secBackward is the adjoint of reach i's sections over the block.
func (g *gradRun) secBackward(wk *gradWorker, b, i, n0, nb int, ub []float64) {
	e := g.e
	f := e.f
	lo, hi := e.secStart[i], e.secStart[i+1]
	if hi-lo == 1 {
		g.oneBackward(wk, b, i, n0, nb, ub)
		return
	}
	secs := e.secs[lo:hi]
	K := len(secs)
	for len(wk.sec) < K {
		wk.sec = append(wk.sec, nil)
	}
	for k := 0; k < K; k++ {
		wk.sec[k] = grow(wk.sec[k], nb)
	}
	// Recompute every section's output over the block from the checkpoint.
	wk.y0 = append(wk.y0[:0], g.ys[lo:hi]...) // section outputs before the block
	y0 := wk.y0
	up0, lp0 := g.uPrev[i], g.lPrev[i]
	wk.ext = grow(wk.ext, nb)
	g.secForward(b, i, n0, nb, wk.u, wk.ext, wk.sec[:K])
	rapid := e.o.Lateral == LateralRAPID
	lam := g.lam[lo:hi] // λ_k at the first sub-step of the next block
	ds := g.dsec[lo:hi]
	u := wk.u
	dx := g.dx[(b*g.N+i)*g.T:][:g.T]
	ybar := wk.ybar
	secAt := func(k, n int) float64 { // section k's output at block-local n
		if n < 0 {
			return y0[k]
		}
		return wk.sec[k][n]
	}
	for n := nb - 1; n >= 0; n-- {
		gn := n0 + n
		q := gn / f
		yb := ybar[n] // ∂L/∂(output of the last section at n)
		for k := K - 1; k >= 0; k-- {
			s := secs[k]
			lk := yb + s.A1*lam[k] // λ_k[n]
			// inputs of section k at n
			var x, xp float64
			if k == 0 {
				l := g.latAt(b, i, q)
				lprev := l
				if !rapid && gn%f == 0 {
					if gn == 0 {
						lprev = lp0
					} else {
						lprev = g.latAt(b, i, q-1)
					}
				}
				uPrev := up0
				if n > 0 {
					uPrev = u[n-1]
				}
				x, xp = u[n]+l, uPrev+lprev
				ub[n] = s.B0*lk + s.B1*lam[0]
				dx[q] += s.B0 * lk
				if rapid || gn%f != 0 {
					dx[q] += s.B1 * lk
				} else if gn > 0 {
					dx[q-1] += s.B1 * lk
				}
				if gn == 0 {
					// u[−1] is the upstream reaches' initial discharge.
					for _, up := range e.net.Upstream(i) {
						g.dq0[up] += s.B1 * lk
					}
					if g.dinPrev != nil {
						g.dinPrev[i] += s.B1 * lk
					}
				}
			} else {
				x, xp = secAt(k-1, n), secAt(k-1, n-1)
				// ∂L/∂(output of section k−1 at n)
				yb = s.B0*lk + s.B1*lam[k]
			}
			ds[k][0] += lk * x
			ds[k][1] += lk * xp
			ds[k][2] += lk * secAt(k, n-1)
			lam[k] = lk
		}
	}
	if n0 == 0 {
		// Every section starts at the initial discharge q0 of the reach.
		for k := 0; k < K; k++ {
			g.dq0[i] += secs[k].A1 * lam[k]
			if k > 0 {
				g.dq0[i] += secs[k].B1 * lam[k]
			}
		}
	}
}

// oneBackward is secBackward for a single section: the section's output is
// the reach's stored outflow, so nothing is recomputed.
func (g *gradRun) oneBackward(wk *gradWorker, b, i, n0, nb int, ub []float64) {
	e := g.e
	f := e.f
	k := e.secStart[i]
	s := e.secs[k]
	rapid := e.o.Lateral == LateralRAPID
	u := wk.u[:nb]
	y := g.Y[i][:nb]
	ybar := wk.ybar[:nb]
	ub = ub[:nb]
	lat := g.lat[(b*g.N+i)*g.T:][:g.T]
	dx := g.dx[(b*g.N+i)*g.T:][:g.T]
	lam := g.lam[k]
	var d0, d1, d2 float64
	y0, up0, lp0 := g.ys[k], g.uPrev[i], g.lPrev[i] // state before the block
	for q0 := nb - f; q0 >= 0; q0 -= f {
		q := (n0 + q0) / f
		l := lat[q]
		sumL, sumLU, sumY := 0.0, 0.0, 0.0 // Σλ, Σλ·u[n], Σλ·y[n−1] over sub-steps 1..f−1
		sumLUp := 0.0                      // Σλ·u[n−1] over sub-steps 1..f−1
		for j := f - 1; j >= 1; j-- {
			n := q0 + j
			lk := ybar[n] + s.A1*lam
			ub[n] = s.B0*lk + s.B1*lam
			sumL += lk
			sumLU += lk * u[n]
			sumLUp += lk * u[n-1]
			sumY += lk * y[n-1]
			lam = lk
		}
		// first sub-step of the step
		n := q0
		lk := ybar[n] + s.A1*lam
		ub[n] = s.B0*lk + s.B1*lam
		lam = lk
		uPrev, yPrev := up0, y0
		if n > 0 {
			uPrev, yPrev = u[n-1], y[n-1]
		}
		lprev := l
		if !rapid {
			if n0+n == 0 {
				lprev = lp0
			} else {
				lprev = lat[q-1]
			}
		}
		// B0 multiplies u[n] + l, B1 u[n−1] + lprev, A1 y[n−1].
		d0 += sumLU + sumL*l + lk*(u[n]+l)
		d1 += sumLUp + sumL*l + lk*(uPrev+lprev)
		d2 += sumY + lk*yPrev
		dx[q] += s.B0*(sumL+lk) + s.B1*sumL
		switch {
		case rapid:
			dx[q] += s.B1 * lk
		case n0+n > 0:
			dx[q-1] += s.B1 * lk
		}
		if n0+n == 0 {
			for _, up := range e.net.Upstream(i) {
				g.dq0[up] += s.B1 * lk
			}
			if g.dinPrev != nil {
				g.dinPrev[i] += s.B1 * lk
			}
			g.dq0[i] += s.A1 * lk
		}
	}
	g.lam[k] = lam
	ds := &g.dsec[k]
	ds[0] += d0
	ds[1] += d1
	ds[2] += d2
}

// convBackward is the adjoint of reach i's causal convolution over the block.
func (g *gradRun) convBackward(wk *gradWorker, b, i, n0, nb int, ub []float64) {
	e := g.e
	f := e.f
	taps := e.taps[i]
	h := g.hist[i] // checkpoint: the W−1 inflows before the block
	H := len(h)
	wk.ext = grow(wk.ext, H+nb)
	ext := wk.ext
	copy(ext, h)
	g.fillInflow(ext[H:H+nb], wk.u, b, i, n0, f)
	// ∂L/∂y over the block (backwardBlock wrote it there, as wk.ybar)
	// followed by the next W−1 sub-steps.
	ybx := wk.ybx[:nb+H]
	copy(ybx[nb:], g.ybn[i])
	lo, hi := int(e.tapLo[i]), int(e.tapHi[i])
	wk.tmp = grow(wk.tmp, hi-lo)
	convTapsAdjoint(g.dh[i], lo, hi, ybx[:nb], ext, H, wk.tmp)
	dx := g.dx[(b*g.N+i)*g.T:][:g.T]
	convInflowAdjoint(taps, lo, hi, ybx, ub[:nb])
	for m := 0; m < nb; m += f { // blocks are whole steps
		sum := 0.0
		for _, v := range ub[m : m+f] {
			sum += v
		}
		dx[(n0+m)/f] += sum
	}
	if n0 == 0 {
		// The history before the first step is q0.
		g.dq0[i] += convHistoryAdjoint(taps, lo, hi, ybx)
	}
	copy(g.ybn[i], ybx[:H])
}

// finishParams turns the sections' and taps' sums into parameter gradients,
// reaches split among the workers (a convolution reach evaluates its IRF's
// derivative over the whole window).
func (g *gradRun) finishParams() {
	e := g.e
	if len(e.gp) == 0 {
		return
	}
	nw := 1
	if e.histMean > 0 {
		nw = max(1, len(e.parts))
	}
	var wg sync.WaitGroup
	for w := range nw {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			g.finishParamsOf(lo, hi)
		}(w*g.N/nw, (w+1)*g.N/nw)
	}
	wg.Wait()
}

// finishParamsOf is finishParams for reaches [lo, hi).
func (g *gradRun) finishParamsOf(lo, hi int) {
	e := g.e
	var dhp [][]float64
	var vjp []float64
	for i := lo; i < hi; i++ {
		if e.taps[i] != nil && e.irf.impulseVJP != nil {
			// Σ_k ∂L/∂h[k]·∂h[k]/∂θ from the taps, no IRF evaluation.
			if vjp == nil {
				vjp = make([]float64, len(e.irf.Params))
			}
			e.irf.impulseVJP(vjp, g.dh[i], e.taps[i], e.params[i], e.r)
			for j, pj := range e.gp {
				g.dth[j][i] = vjp[pj]
			}
			continue
		}
		if e.taps[i] != nil {
			if dhp == nil {
				dhp = make([][]float64, len(e.irf.Params))
				for j := range dhp {
					dhp[j] = make([]float64, e.w)
				}
			}
			if err := e.irf.ImpulseGrad(dhp, e.params[i], e.r); err != nil {
				for j := range g.dth {
					g.dth[j][i] = math.NaN()
				}
				continue
			}
			for j, pj := range e.gp {
				s := 0.0
				for k, v := range g.dh[i] {
					s += v * dhp[pj][k]
				}
				g.dth[j][i] = s
			}
			continue
		}
		for k := e.secStart[i]; k < e.secStart[i+1]; k++ {
			d := g.dsec[k]
			for j := range e.gp {
				s := e.dsecs[j][k]
				g.dth[j][i] += d[0]*s.B0 + d[1]*s.B1 + d[2]*s.A1
			}
		}
	}
}
