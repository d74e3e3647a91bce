package diffroute

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// The tiled adjoint: the fast reverse mode for networks whose reaches are
// all one recursive section (Muskingum, linear storage). The network is cut
// into tiles, pieces of subtrees small enough that a time block of every
// reach's fine outflow fits in a core's cache. The forward pass runs tile by
// tile, upstream first, keeping only the outflow series leaving each tile
// (its boundaries) and every reach's state at block starts. The backward
// pass runs tile by tile, outlets first, and block by block, last first:
// it recomputes the tile's outflows over the block from the checkpoint and
// the stored boundary inflows, runs the adjoint reach by reach (vector
// kernels both ways), and leaves ∂L/∂(inflow) at the tile's upstream
// boundaries, in place of the outflows it no longer needs. Everything but
// the boundary series stays in cache: about two forward passes and one
// adjoint pass of work.

// gradTileBytes bounds one tile's block of outflows (per worker).
var gradTileBytes = 512 << 10

// gradTilesOff turns the tiled adjoint off (tests compare it with the
// general engine).
var gradTilesOff = false

// tiling is a network cut into tiles for one block length.
type tiling struct {
	bl      int          // fine sub-steps per block
	groups  [][]gradTile // per part, then the trunk: tiles upstream first
	trunk   bool         // the last group is the trunk, run after the parts
	local   []int32      // reach's index in its tile
	tileOf  []int32
	bslot   []int32 // boundary slot of a reach whose outflow leaves its tile, or −1
	nslot   int
	maxTile int
	// [p] in tile order, where ∂L/∂(outflow) comes from: the downstream
	// reach's row in the tile (≥ 0), boundary slot s (−2 − s), nowhere (−1)
	adjSrc []int32
}

// gradTile lists a tile's reaches upstream first; the last is its root.
// The tiles' reaches, numbered in tile order (base + index in the tile),
// index the per-reach arrays of the tiled passes: one tile's are contiguous.
type gradTile struct {
	reaches []int32
	base    int
}

// tilesUsable reports whether the tiled adjoint runs e's reaches.
func (e *gradEngine) tilesUsable() bool {
	return !gradTilesOff && tileOptionsUsable(e.o) && len(e.secs) == e.net.Len() && !slices.ContainsFunc(e.taps, func(t []float64) bool { return t != nil })
}

// tileOptionsUsable reports whether the options allow the tiled adjoint
// (the vector kernels, whole vectors per step, a rule they implement).
func tileOptionsUsable(o Options) bool {
	return haveSectionVector() && o.SubSteps%4 == 0 && !(o.Sampling == SampleLast && o.Average == AverageStart)
}

// tileBlock is the fine block length of the tiled adjoint for TF sub-steps
// of f: Options.CheckpointSteps when set, else equal blocks of at most about
// √(3·gradTileBytes) sub-steps, which balances the checkpoints (more
// blocks) against the boundary series (smaller tiles).
func tileBlock(ckpt, TF, f int) int {
	bl := ckpt * f
	if ckpt <= 0 {
		bl = 1
		for bl*bl < 3*gradTileBytes {
			bl++
		}
		// Blocks of equal length: no short last block with its own
		// per-reach overheads.
		nblk := max(1, (TF+bl-1)/bl)
		bl = ((TF+nblk-1)/nblk + f - 1) / f * f
	}
	return min(max(f, bl/f*f), max(TF, f))
}

// buildTiling cuts the parts and trunk of a network into tiles of at most
// gradTileBytes of outflow per block of bl sub-steps.
func buildTiling(net *Network, parts [][]int32, trunk []int32, bl int) *tiling {
	n := net.Len()
	m := int32(max(2, gradTileBytes/(8*bl))) // rows of bl values
	t := &tiling{bl: bl, local: make([]int32, n), tileOf: make([]int32, n), bslot: make([]int32, n)}
	lists := slices.Clone(parts)
	if len(trunk) > 0 {
		lists = append(lists, trunk)
		t.trunk = true
	}
	group := make([]int32, n)
	for g, l := range lists {
		for _, v := range l {
			group[v] = int32(g)
		}
	}
	open := make([]int32, n) // reaches of v's tile so far at and above v
	cut := make([]bool, n)   // v roots a tile
	var ups []int32
	ntiles := int32(0)
	for g, l := range lists {
		// Children first: merge upstream pieces smallest first while they fit.
		for _, v := range l {
			open[v] = 1 // its outflow, and its inflow where that is a sum
			if len(net.Upstream(int(v))) > 1 {
				open[v] = 2
			}
			ups = ups[:0]
			for _, u := range net.Upstream(int(v)) {
				if group[u] == int32(g) {
					ups = append(ups, u)
				}
			}
			slices.SortFunc(ups, func(a, b int32) int { return cmp.Or(cmp.Compare(open[a], open[b]), cmp.Compare(a, b)) })
			for _, u := range ups {
				if open[v]+open[u] > m {
					cut[u] = true
					continue
				}
				open[v] += open[u]
			}
		}
		// Parents first: a reach joins its downstream reach's tile unless cut.
		base := ntiles
		for k := len(l) - 1; k >= 0; k-- {
			v := l[k]
			d := net.down[v]
			if d < 0 || group[d] != int32(g) || cut[v] {
				t.tileOf[v] = ntiles
				ntiles++
			} else {
				t.tileOf[v] = t.tileOf[d]
			}
		}
		tiles := make([]gradTile, ntiles-base)
		for _, v := range l {
			tl := &tiles[t.tileOf[v]-base]
			t.local[v] = int32(len(tl.reaches))
			tl.reaches = append(tl.reaches, v)
		}
		// Tiles were numbered roots downstream first: reverse for upstream first.
		slices.Reverse(tiles)
		for _, tl := range tiles {
			t.maxTile = max(t.maxTile, len(tl.reaches))
		}
		t.groups = append(t.groups, tiles)
	}
	pos := 0
	for _, tiles := range t.groups {
		for k := range tiles {
			tiles[k].base = pos
			pos += len(tiles[k].reaches)
		}
	}
	for v := 0; v < n; v++ {
		t.bslot[v] = -1
		if d := net.down[v]; d >= 0 && t.tileOf[d] != t.tileOf[v] {
			t.bslot[v] = int32(t.nslot)
			t.nslot++
		}
	}
	t.adjSrc = make([]int32, n)
	for _, tiles := range t.groups {
		for _, tl := range tiles {
			for j, v := range tl.reaches {
				a := int32(-1)
				if d := net.down[v]; d >= 0 {
					a = t.local[d]
					if t.bslot[v] >= 0 {
						a = -2 - t.bslot[v]
					}
				}
				t.adjSrc[tl.base+j] = a
			}
		}
	}
	return t
}

// tilingFor returns e's tiling for blocks of bl sub-steps.
func (e *gradEngine) tilingFor(bl int) *tiling {
	if e.tl == nil || e.tl.bl != bl {
		e.tl = buildTiling(e.net, e.parts, e.trunk, bl)
	}
	return e.tl
}

// tileWorker is one goroutine's scratch for the tiled adjoint.
type tileWorker struct {
	buf                []float64 // the tile's outflows (then adjoints) over a block
	ubd, zero          []float64
	out, gys, lat, dxs []float64 // per step of a block
	sumL, firstL       []float64
	args               adjArgs
}

// eachTile runs fn over the tiles, upstream first (forward) or outlets first
// (backward), the parts' tiles in parallel and the trunk's alone.
func (g *gradRun) eachTile(ctx context.Context, tl *tiling, backward bool, fn func(wk *tileWorker, t *gradTile)) error {
	for len(g.twks) < len(tl.groups) {
		g.twks = append(g.twks, &tileWorker{})
	}
	bl := tl.bl
	for _, wk := range g.twks {
		if len(wk.buf) < 2*tl.maxTile*bl {
			wk.buf = make([]float64, 2*tl.maxTile*bl)
			wk.ubd, wk.zero = make([]float64, bl), make([]float64, bl)
			wk.out, wk.gys, wk.lat, wk.dxs = make([]float64, bl), make([]float64, bl), make([]float64, bl), make([]float64, bl)
			wk.sumL, wk.firstL = make([]float64, bl), make([]float64, bl)
		}
	}
	run := func(wk *tileWorker, tiles []gradTile) {
		for k := range tiles {
			if ctx.Err() != nil {
				return
			}
			if backward {
				fn(wk, &tiles[len(tiles)-1-k])
			} else {
				fn(wk, &tiles[k])
			}
		}
	}
	parts := tl.groups
	var trunk []gradTile
	if tl.trunk {
		parts, trunk = tl.groups[:len(tl.groups)-1], tl.groups[len(tl.groups)-1]
	}
	runParts := func() {
		var wg sync.WaitGroup
		for p := range parts {
			wg.Add(1)
			go func(p int) {
				defer wg.Done()
				run(g.twks[p], parts[p])
			}(p)
		}
		wg.Wait()
	}
	if backward {
		run(g.twks[0], trunk)
		runParts()
	} else {
		runParts()
		run(g.twks[0], trunk)
	}
	return ctx.Err()
}

// tileSrc is reach c's outflow over the block as its downstream reach sees
// it: the stored boundary series, or c's row of the tile buffer.
func (g *gradRun) tileSrc(wk *tileWorker, tl *tiling, c int32, n0, nb int) []float64 {
	if s := tl.bslot[c]; s >= 0 {
		return g.bound[s][n0 : n0+nb]
	}
	return wk.yRow(tl, c, nb)
}

// yRow is reach i's outflow row of the tile buffer, uRow its inflow row.
func (wk *tileWorker) yRow(tl *tiling, i int32, nb int) []float64 {
	return wk.buf[2*int(tl.local[i])*tl.bl:][:nb]
}

func (wk *tileWorker) uRow(tl *tiling, i int32, nb int) []float64 {
	return wk.buf[(2*int(tl.local[i])+1)*tl.bl:][:nb]
}

// tileInflow is reach i's upstream inflow over the block; a sum of several
// is kept in its inflow row, and summed again only when fresh.
func (g *gradRun) tileInflow(wk *tileWorker, tl *tiling, b int, i int32, n0, nb int, fresh bool) []float64 {
	ups := g.e.net.Upstream(int(i))
	var ext []float64
	if g.anyIn {
		ext = g.in[i]
	}
	if ext == nil {
		switch len(ups) {
		case 0:
			return wk.zero[:nb]
		case 1:
			return g.tileSrc(wk, tl, ups[0], n0, nb)
		}
	}
	u := wk.uRow(tl, i, nb)
	if !fresh {
		return u
	}
	// Two sources at once, then one at a time: vector adds in cache.
	var first []float64
	if ext != nil {
		first = ext[b*g.TF+n0 : b*g.TF+n0+nb]
	}
	for _, c := range ups {
		src := g.tileSrc(wk, tl, c, n0, nb)
		if first == nil {
			first = src
			continue
		}
		addSeries(u, first, src)
		first = u
	}
	if &first[0] != &u[0] {
		copy(u, first) // a single source: the fine inflow alone
	}
	return u
}

// tileAdjIn is ∂L/∂(reach i's outflow) over the block through its
// downstream reach and any transfer (the loss's share is added by the kernel).
func (g *gradRun) tileAdjIn(wk *tileWorker, tl *tiling, b int, i int32, p, n0, nb int) []float64 {
	var src []float64
	switch a := tl.adjSrc[p]; {
	case a >= 0:
		src = wk.buf[2*int(a)*tl.bl:][:nb]
	case a <= -2:
		src = g.bound[-2-a][n0 : n0+nb] // the downstream tile left it there
	}
	var gout []float64
	if g.anyGout {
		gout = g.gout[i]
	}
	if gout != nil {
		gs := gout[b*g.TF+n0 : b*g.TF+n0+nb]
		if src == nil {
			return gs
		}
		d := wk.ubd[:nb]
		for k, v := range gs {
			d[k] = v + src[k]
		}
		return d
	}
	if src == nil {
		return wk.zero[:nb]
	}
	return src
}

// latSeg is the runoff of reach i (at p in tile order) over steps
// [q0, q0+nq) of member b.
func (g *gradRun) latSeg(b int, i int32, p, q0, nq int) mixedSeries {
	if g.lat == nil {
		return mixedSeries{s32: g.x.Series(b, g.rowT[p])[q0 : q0+nq]}
	}
	return mixedSeries{s64: g.lat[(b*g.N+int(i))*g.T+q0:][:nq]}
}

// warmRows asks the cache for reach i's rows of runoff and, for the
// forward pass, discharge or, for the backward pass, ∂L/∂y and ∂L/∂runoff
// over steps [q0, q0+nq): they lie scattered through memory, one row per reach.
func (g *gradRun) warmRows(i int32, p, b, q0, nq int, coarse, backward bool) {
	row := (b*g.N + int(i)) * g.T
	if g.lat == nil {
		prefetch32(g.x.Series(b, g.rowT[p])[q0 : q0+nq])
	}
	if coarse && g.y32 != nil {
		prefetch32(g.y32[row+q0 : row+q0+nq])
	}
	if backward {
		if g.gy32 != nil {
			prefetch32(g.gy32[row+q0 : row+q0+nq])
		}
		if g.dxT != nil {
			prefetch32(g.dxT.Series(b, g.rowT[p])[q0 : q0+nq])
		}
	}
}

// tileForward routes member b through the network tile by tile, keeping the
// boundary series and the checkpoints, and the discharge when coarse.
func (g *gradRun) tileForward(ctx context.Context, tl *tiling, b int, coarse bool) error {
	e := g.e
	n, f, bl := g.N, e.f, tl.bl
	rapid := e.o.Lateral == LateralRAPID
	w := stepWeights(reachParams{f: f, rapid: rapid, start: e.o.Average == AverageStart, sample: e.o.Sampling == SampleLast})
	return g.eachTile(ctx, tl, false, func(wk *tileWorker, t *gradTile) {
		for k := 0; k < g.nblk; k++ {
			n0 := k * bl
			nb := min(bl, g.TF-n0)
			q0, nq := n0/f, nb/f
			for j, i := range t.reaches {
				if j+prefetchAhead < len(t.reaches) {
					g.warmRows(t.reaches[j+prefetchAhead], t.base+j+prefetchAhead, b, q0, nq, coarse, false)
				}
				off := k*n + t.base + j
				s := e.secStart[i]
				g.ckY[off], g.ckU[off], g.ckL[off] = g.ys[s], g.uPrev[i], g.lPrev[i]
				u := g.tileInflow(wk, tl, b, i, n0, nb, true)
				y := wk.yRow(tl, i, nb)
				if sl := tl.bslot[i]; sl >= 0 {
					// Only the next tile reads it: straight into its boundary series.
					y = g.bound[sl][n0 : n0+nb]
				}
				out := mixedSeries{s64: wk.out[:nq]}
				switch {
				case !coarse:
				case g.y32 != nil:
					out = mixedSeries{s32: g.y32[(b*n+int(i))*g.T+q0:][:nq]}
				default:
					out = mixedSeries{s64: g.y[(b*n+int(i))*g.T+q0:][:nq]}
				}
				sectionVector64(e.secs[s], f, rapid, w, &g.ys[s], &g.uPrev[i], &g.lPrev[i], u, y, g.latSeg(b, i, t.base+j, q0, nq), out)
				if g.anyOut {
					if o := g.out[i]; o != nil {
						copy(o[b*g.TF+n0:], y)
					}
				}
			}
		}
	})
}

// tileBackward runs the adjoint of member b, tiles outlets first, blocks
// last first, recomputing each tile's block from its checkpoint.
func (g *gradRun) tileBackward(ctx context.Context, tl *tiling, b int) error {
	e := g.e
	n, f, bl := g.N, e.f, tl.bl
	rapid := e.o.Lateral == LateralRAPID
	w := stepWeights(reachParams{f: f, rapid: rapid, start: e.o.Average == AverageStart, sample: e.o.Sampling == SampleLast})
	return g.eachTile(ctx, tl, true, func(wk *tileWorker, t *gradTile) {
		for k := g.nblk - 1; k >= 0; k-- {
			n0 := k * bl
			nb := min(bl, g.TF-n0)
			q0, nq := n0/f, nb/f
			for j, i := range t.reaches {
				if j+prefetchAhead < len(t.reaches) {
					g.warmRows(t.reaches[j+prefetchAhead], t.base+j+prefetchAhead, b, q0, nq, false, false)
				}
				off := k*n + t.base + j
				ys, up, lp := g.ckY[off], g.ckU[off], g.ckL[off]
				u := g.tileInflow(wk, tl, b, i, n0, nb, true)
				y := wk.yRow(tl, i, nb)
				sectionVector64(e.secs[e.secStart[i]], f, rapid, w, &ys, &up, &lp, u, y, g.latSeg(b, i, t.base+j, q0, nq), mixedSeries{s64: wk.out[:nq]})
			}
			for j := len(t.reaches) - 1; j >= 0; j-- {
				if j >= prefetchAhead {
					g.warmRows(t.reaches[j-prefetchAhead], t.base+j-prefetchAhead, b, q0, nq, false, true)
				}
				g.tileReachAdjoint(wk, tl, w, b, t.reaches[j], t.base+j, k, n0, nb)
			}
		}
	})
}

// tileReachAdjoint runs reach i's adjoint over block k and accumulates its
// gradients; its buffer row then holds ∂L/∂(its inflow).
func (g *gradRun) tileReachAdjoint(wk *tileWorker, tl *tiling, w [3]float64, b int, i int32, p, k, n0, nb int) {
	e := g.e
	n, f := g.N, e.f
	q0, nq := n0/f, nb/f
	off := k*n + p
	sk := e.secStart[i]
	s := e.secs[sk]
	// ∂L/∂(discharge) and runoff of the block's steps, in float64.
	gy, lat := wk.gys[:nq], wk.lat[:nq]
	gyn := 0.0
	row := (b*n + int(i)) * g.T
	if g.gy32 != nil {
		for j, v := range g.gy32[row+q0 : row+q0+nq] {
			gy[j] = float64(v)
		}
		if q0+nq < g.T {
			gyn = float64(g.gy32[row+q0+nq])
		}
	} else {
		gy = g.gy[row+q0 : row+q0+nq]
		if q0+nq < g.T {
			gyn = g.gy[row+q0+nq]
		}
	}
	if ls := g.latSeg(b, i, p, q0, nq); ls.s64 != nil {
		lat = ls.s64
	} else {
		for j, v := range ls.s32 {
			lat[j] = float64(v)
		}
	}
	a := &wk.args
	*a = adjArgs{s: s, f: f, ubd: g.tileAdjIn(wk, tl, b, i, p, n0, nb), y: wk.yRow(tl, i, nb),
		u: g.tileInflow(wk, tl, b, i, n0, nb, false), gy: gy, w: w, gyn: gyn,
		y0: g.ckY[off], up0: g.ckU[off], lam: g.lamT[p], sumL: wk.sumL[:nq], firstL: wk.firstL[:nq]}
	if !adjointVector(a) {
		adjointSection(a)
	}
	g.lamT[p] = a.lam
	// The runoff's share: B0 multiplies u[n] + l, B1 u[n−1] + l', l' being
	// l except on a step's first sub-step under the lti rule, where it is
	// the previous step's runoff (in the block before: carried).
	rapid := e.o.Lateral == LateralRAPID
	dx := wk.dxs[:nq]
	lp0 := g.ckL[off]
	var dl0, dl1 float64
	carry := 0.0
	for j := 0; j < nq; j++ {
		S, F := a.sumL[j], a.firstL[j]
		l := lat[j]
		dl0 += l * S
		if rapid {
			dl1 += l * S
			dx[j] = (s.B0 + s.B1) * S
			continue
		}
		lprev := lp0
		if j > 0 {
			lprev = lat[j-1]
			dx[j-1] += s.B1 * F
		} else {
			carry = s.B1 * F
		}
		dl1 += l*(S-F) + lprev*F
		dx[j] = (s.B0+s.B1)*S - s.B1*F
	}
	if !rapid {
		dx[nq-1] += g.dxCarry[p]
		g.dxCarry[p] = carry // the last step of the block before; dropped before the first
	}
	if g.dxT != nil {
		dst := g.dxT.Series(b, g.rowT[p])[q0 : q0+nq]
		for j, v := range dx {
			dst[j] = float32(v)
		}
	} else {
		copy(g.dx[row+q0:row+q0+nq], dx)
	}
	ds := &g.dsecT[p]
	ds[0] += a.du + dl0
	ds[1] += a.dup + dl1
	ds[2] += a.dy
	if n0 == 0 {
		// Before the first step: the reach's own outflow is q0, its inflow
		// the upstream reaches' q0 (and any transfer's).
		F := a.firstL[0]
		for _, up := range e.net.Upstream(int(i)) {
			g.dq0[up] += s.B1 * F
		}
		if g.dinPrev != nil {
			g.dinPrev[i] += s.B1 * F
		}
		g.dq0[i] += s.A1*F + w[2]*gy[0] // q0 is also the value before the first step
	}
	ub := a.y
	for _, c := range e.net.Upstream(int(i)) {
		if sl := tl.bslot[c]; sl >= 0 {
			copy(g.bound[sl][n0:n0+nb], ub)
		}
	}
	if g.anyIn {
		if d := g.din[i]; d != nil {
			d = d[b*g.TF+n0:][:nb]
			addSeries(d, d, ub)
		}
	}
}

// runTiles is run on the tiled adjoint.
func (g *gradRun) runTiles(ctx context.Context, loss func() error) error {
	e := g.e
	n := g.N
	bl := tileBlock(e.block/e.f, g.TF, e.f)
	tl := e.tilingFor(bl)
	g.nblk = (g.TF + bl - 1) / bl
	if g.TF == 0 {
		g.nblk = 0
	}
	slab := takeSlab(tl.nslot*g.TF + 3*g.nblk*n)
	defer putSlab(slab)
	g.bound = make([][]float64, tl.nslot)
	for s := range g.bound {
		g.bound[s] = slab[s*g.TF : (s+1)*g.TF : (s+1)*g.TF]
	}
	ck := slab[tl.nslot*g.TF:]
	g.ckY, g.ckU, g.ckL = ck[:g.nblk*n], ck[g.nblk*n:2*g.nblk*n], ck[2*g.nblk*n:3*g.nblk*n]
	if g.y32 == nil && !g.noY {
		g.y = reuse(&e.yBuf, g.B*n*g.T)
	}
	notNil := func(s []float64) bool { return s != nil }
	if g.rows != nil {
		// The runoff's rows in tile order: read in order, block after block.
		g.rowT = make([]int, n)
		for _, tiles := range tl.groups {
			for _, t := range tiles {
				for j, i := range t.reaches {
					g.rowT[t.base+j] = g.rows[i]
				}
			}
		}
	}
	g.anyIn, g.anyOut, g.anyGout = slices.ContainsFunc(g.in, notNil), slices.ContainsFunc(g.out, notNil), true
	for b := 0; b < g.B; b++ {
		g.initState(b)
		if err := g.tileForward(ctx, tl, b, !g.noY); err != nil {
			return err
		}
	}
	if loss == nil {
		return nil
	}
	if err := loss(); err != nil {
		return err
	}
	g.anyGout = slices.ContainsFunc(g.gout, notNil)
	g.allocResults()
	g.dxCarry, g.lamT, g.dsecT = make([]float64, n), make([]float64, n), make([][3]float64, n)
	for b := g.B - 1; b >= 0; b-- {
		if b != g.B-1 {
			g.initState(b)
			if err := g.tileForward(ctx, tl, b, false); err != nil {
				return err
			}
		}
		clear(g.lamT)
		clear(g.dxCarry)
		if err := g.tileBackward(ctx, tl, b); err != nil {
			return err
		}
	}
	// Back from tile order to sections.
	for _, tiles := range tl.groups {
		for _, t := range tiles {
			for j, i := range t.reaches {
				ds, dt := &g.dsec[e.secStart[i]], g.dsecT[t.base+j]
				ds[0] += dt[0]
				ds[1] += dt[1]
				ds[2] += dt[2]
			}
		}
	}
	g.finishParams()
	return nil
}
