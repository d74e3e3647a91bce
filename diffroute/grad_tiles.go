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
}

// gradTile lists a tile's reaches upstream first; the last is its root.
type gradTile struct{ reaches []int32 }

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
// of f: Options.CheckpointSteps when set, else about √(3·gradTileBytes)
// sub-steps, which balances the checkpoints (more blocks) against the
// boundary series (smaller tiles).
func tileBlock(ckpt, TF, f int) int {
	bl := ckpt * f
	if ckpt <= 0 {
		bl = 1
		for bl*bl < 3*gradTileBytes {
			bl++
		}
		bl = (bl + f - 1) / f * f
	}
	return min(max(f, bl/f*f), max(TF, f))
}

// buildTiling cuts the parts and trunk of a network into tiles of at most
// gradTileBytes of outflow per block of bl sub-steps.
func buildTiling(net *Network, parts [][]int32, trunk []int32, bl int) *tiling {
	n := net.Len()
	m := int32(max(1, gradTileBytes/(8*bl)))
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
			open[v] = 1
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
	for v := 0; v < n; v++ {
		t.bslot[v] = -1
		if d := net.down[v]; d >= 0 && t.tileOf[d] != t.tileOf[v] {
			t.bslot[v] = int32(t.nslot)
			t.nslot++
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
	buf          []float64 // the tile's outflows (then adjoints) over a block
	u, ubd, zero []float64
	out          []float64
	sumL, firstL []float64
	args         adjArgs
}

// eachTile runs fn over the tiles, upstream first (forward) or outlets first
// (backward), the parts' tiles in parallel and the trunk's alone.
func (g *gradRun) eachTile(ctx context.Context, tl *tiling, backward bool, fn func(wk *tileWorker, t *gradTile)) error {
	for len(g.twks) < len(tl.groups) {
		g.twks = append(g.twks, &tileWorker{})
	}
	bl := tl.bl
	for _, wk := range g.twks {
		if len(wk.buf) < tl.maxTile*bl {
			wk.buf = make([]float64, tl.maxTile*bl)
			wk.u, wk.ubd, wk.zero = make([]float64, bl), make([]float64, bl), make([]float64, bl)
			wk.out = make([]float64, bl)
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
	return wk.buf[int(tl.local[c])*tl.bl:][:nb]
}

// tileInflow is reach i's upstream inflow over the block.
func (g *gradRun) tileInflow(wk *tileWorker, tl *tiling, b int, i int32, n0, nb int) []float64 {
	ups := g.e.net.Upstream(int(i))
	ext := g.in[i]
	if ext == nil {
		switch len(ups) {
		case 0:
			return wk.zero[:nb]
		case 1:
			return g.tileSrc(wk, tl, ups[0], n0, nb)
		}
	}
	u := wk.u[:nb]
	if ext != nil {
		copy(u, ext[b*g.TF+n0:b*g.TF+n0+nb])
	} else {
		clear(u)
	}
	for _, c := range ups {
		for k, v := range g.tileSrc(wk, tl, c, n0, nb) {
			u[k] += v
		}
	}
	return u
}

// tileAdjIn is ∂L/∂(reach i's outflow) over the block through its
// downstream reach and any transfer (the loss's share is added by the kernel).
func (g *gradRun) tileAdjIn(wk *tileWorker, tl *tiling, b int, i int32, n0, nb int) []float64 {
	var src []float64
	if d := g.e.net.down[i]; d >= 0 {
		if sl := tl.bslot[i]; sl >= 0 {
			src = g.bound[sl][n0 : n0+nb] // the downstream tile left it there
		} else {
			src = wk.buf[int(tl.local[d])*tl.bl:][:nb]
		}
	}
	if gout := g.gout[i]; gout != nil {
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
			for _, i := range t.reaches {
				off := k*n + int(i)
				s := e.secStart[i]
				g.ckY[off], g.ckU[off], g.ckL[off] = g.ys[s], g.uPrev[i], g.lPrev[i]
				u := g.tileInflow(wk, tl, b, i, n0, nb)
				y := wk.buf[int(tl.local[i])*bl:][:nb]
				out := wk.out[:nq]
				if coarse {
					out = g.y[(b*n+int(i))*g.T+q0:][:nq]
				}
				sectionVector64(e.secs[s], f, rapid, w, &g.ys[s], &g.uPrev[i], &g.lPrev[i], u, g.lat[(b*n+int(i))*g.T+q0:][:nq], y, out)
				if sl := tl.bslot[i]; sl >= 0 {
					copy(g.bound[sl][n0:n0+nb], y)
				}
				if o := g.out[i]; o != nil {
					copy(o[b*g.TF+n0:], y)
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
			for _, i := range t.reaches {
				off := k*n + int(i)
				ys, up, lp := g.ckY[off], g.ckU[off], g.ckL[off]
				u := g.tileInflow(wk, tl, b, i, n0, nb)
				y := wk.buf[int(tl.local[i])*bl:][:nb]
				sectionVector64(e.secs[e.secStart[i]], f, rapid, w, &ys, &up, &lp, u, g.lat[(b*n+int(i))*g.T+q0:][:nq], y, wk.out[:nq])
			}
			for j := len(t.reaches) - 1; j >= 0; j-- {
				i := t.reaches[j]
				g.tileReachAdjoint(wk, tl, w, b, i, k, n0, nb)
			}
		}
	})
}

// tileReachAdjoint runs reach i's adjoint over block k and accumulates its
// gradients; its buffer row then holds ∂L/∂(its inflow).
func (g *gradRun) tileReachAdjoint(wk *tileWorker, tl *tiling, w [3]float64, b int, i int32, k, n0, nb int) {
	e := g.e
	n, f := g.N, e.f
	q0, nq := n0/f, nb/f
	off := k*n + int(i)
	sk := e.secStart[i]
	s := e.secs[sk]
	gy := g.gy[(b*n+int(i))*g.T:][:g.T]
	a := &wk.args
	*a = adjArgs{s: s, f: f, ubd: g.tileAdjIn(wk, tl, b, i, n0, nb), y: wk.buf[int(tl.local[i])*tl.bl:][:nb],
		u: g.tileInflow(wk, tl, b, i, n0, nb), gy: gy[q0 : q0+nq], w: w,
		y0: g.ckY[off], up0: g.ckU[off], lam: g.lam[sk], sumL: wk.sumL[:nq], firstL: wk.firstL[:nq]}
	if q0+nq < g.T {
		a.gyn = gy[q0+nq]
	}
	if !adjointVector(a) {
		adjointSection(a)
	}
	g.lam[sk] = a.lam
	// The lateral runoff's share: B0 multiplies u[n] + l, B1 u[n−1] + l',
	// l' being l except on a step's first sub-step under the lti rule.
	rapid := e.o.Lateral == LateralRAPID
	lat := g.lat[(b*n+int(i))*g.T:][:g.T]
	dx := g.dx[(b*n+int(i))*g.T:][:g.T]
	lp0 := g.ckL[off]
	var dl0, dl1 float64
	for j := 0; j < nq; j++ {
		q := q0 + j
		S, F := a.sumL[j], a.firstL[j]
		l := lat[q]
		dl0 += l * S
		if rapid {
			dl1 += l * S
			dx[q] += (s.B0 + s.B1) * S
			continue
		}
		lprev := lp0
		if j > 0 {
			lprev = lat[q-1]
		}
		dl1 += l*(S-F) + lprev*F
		dx[q] += (s.B0+s.B1)*S - s.B1*F
		if q > 0 {
			dx[q-1] += s.B1 * F
		}
	}
	ds := &g.dsec[sk]
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
		g.dq0[i] += s.A1*F + g.direct(b, int(i), -1)
	}
	ub := a.y
	for _, c := range e.net.Upstream(int(i)) {
		if sl := tl.bslot[c]; sl >= 0 {
			copy(g.bound[sl][n0:n0+nb], ub)
		}
	}
	if d := g.din[i]; d != nil {
		d = d[b*g.TF+n0:][:nb]
		for m, v := range ub {
			d[m] += v
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
	for b := 0; b < g.B; b++ {
		g.initState(b)
		if err := g.tileForward(ctx, tl, b, true); err != nil {
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
		if b != g.B-1 {
			g.initState(b)
			if err := g.tileForward(ctx, tl, b, false); err != nil {
				return err
			}
		}
		clear(g.lam)
		if err := g.tileBackward(ctx, tl, b); err != nil {
			return err
		}
	}
	g.finishParams()
	return nil
}
