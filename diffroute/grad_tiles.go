package diffroute

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// The tiled adjoint: the fast reverse mode for networks whose reaches are
// all recursive sections in series (Muskingum, linear storage, Nash
// cascades of whole n). The network is cut into tiles, pieces of subtrees
// small enough that a time block of every reach's fine outflows fits in a
// core's cache. The forward pass runs tile by tile, upstream first, keeping
// only the outflow series leaving each tile (its boundaries) and every
// section's state at block starts. The backward pass runs tile by tile,
// outlets first, and block by block, last first: it recomputes the tile's
// outflows over the block from the checkpoint and the stored boundary
// inflows, runs the adjoint reach by reach and section by section (vector
// kernels both ways where the sub-steps fill whole vectors, scalar loops
// otherwise), and leaves ∂L/∂(inflow) at the tile's upstream boundaries, in
// place of the outflows it no longer needs. Everything but the boundary
// series stays in cache: about two forward passes and one adjoint pass of
// work. The passes read the runoff and ∂L/∂y, and write the discharge and
// ∂L/∂runoff, in copies laid out in tile order (stageRows).

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
	tileOf  []int32
	bslot   []int32 // boundary slot of a reach whose outflow leaves its tile, or −1
	nslot   int
	maxRows int // rows of bl values in the largest tile's buffer
	// A reach with K sections has K+1 rows in its tile's buffer from
	// row[v]: its sections' outflows (the last is the reach's) and its
	// summed inflow. The adjoint leaves ∂L/∂(inflow) in the first.
	row  []int32
	nsec []int32 // sections per reach
	// secT[p] is the first section of the reach at p (tile order) in the
	// per-section arrays of the tiled passes, in tile order; secT[n] their
	// number.
	secT []int32
	// [p] in tile order, where ∂L/∂(outflow) comes from: the downstream
	// reach's first row in the tile (≥ 0), boundary slot s (−2 − s),
	// nowhere (−1)
	adjSrc []int32
	// By p, so that the passes read them in order: the reach, its first
	// row, its boundary slot (or −1), and its upstream reaches' outflows
	// (upSrc[upStart[p]:upStart[p+1]]: a row ≥ 0, or boundary slot s as
	// −1 − s).
	order, rowP, bslotP []int32
	upStart, upSrc      []int32
	pos                 []int32   // [reach] its p
	secs                []Section // the sections in tile order (secT), set by tilingFor
}

// gradTile lists a tile's reaches upstream first; the last is its root.
// The tiles' reaches, numbered in tile order (base + index in the tile),
// index the per-reach arrays of the tiled passes: one tile's are contiguous.
type gradTile struct {
	reaches []int32
	base    int
}

// tilesUsable reports whether the tiled adjoint runs e's reaches: every
// reach is one or more recursive sections.
func (e *gradEngine) tilesUsable() bool {
	if gradTilesOff || !tileOptionsUsable(e.o) {
		return false
	}
	for i := 0; i < e.net.Len(); i++ {
		if e.taps[i] != nil || e.secStart[i+1] == e.secStart[i] {
			return false
		}
	}
	return true
}

// tileOptionsUsable reports whether the options allow the tiled adjoint
// (every lateral, averaging and sampling rule, any sub-step count).
func tileOptionsUsable(o Options) bool { return o.SubSteps >= 1 }

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
		if c := chunkSteps * f; useChunks && TF >= c {
			// Whole multiples of chunkSteps steps, which the backward pass
			// runs in the chunked layout: of those near the balanced length,
			// the one that leaves the shortest last block (run unchunked).
			m0 := max(1, (bl+c/2)/c)
			best := 0
			for m := max(1, m0/2); m <= 2*m0; m++ {
				if b := m * c; best == 0 || TF%b < TF%best || TF%b == TF%best && abs(b-bl) < abs(best-bl) {
					best = b
				}
			}
			return min(best, TF/c*c)
		}
		// Blocks of equal length: no short last block with its own
		// per-reach overheads.
		nblk := max(1, (TF+bl-1)/bl)
		bl = ((TF+nblk-1)/nblk + f - 1) / f * f
	}
	return min(max(f, bl/f*f), max(TF, f))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// buildTiling cuts the parts and trunk of a network into tiles of at most
// gradTileBytes of outflows per block of bl sub-steps; nsec gives each
// reach's number of sections (nil: one each).
func buildTiling(net *Network, parts [][]int32, trunk []int32, bl int, nsec []int32) *tiling {
	n := net.Len()
	if nsec == nil {
		nsec = make([]int32, n)
		for v := range nsec {
			nsec[v] = 1
		}
	}
	m := int32(max(2, gradTileBytes/(8*bl))) // rows of bl values
	t := &tiling{bl: bl, tileOf: make([]int32, n), bslot: make([]int32, n), row: make([]int32, n), nsec: nsec}
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
	open := make([]int32, n) // rows of v's tile so far at and above v
	cut := make([]bool, n)   // v roots a tile
	var ups []int32
	ntiles := int32(0)
	for g, l := range lists {
		// Children first: merge upstream pieces smallest first while they fit.
		for _, v := range l {
			open[v] = nsec[v] // its outflows, and its inflow where that is a sum
			if len(net.Upstream(int(v))) > 1 {
				open[v]++
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
		rows := make([]int32, ntiles-base)
		for _, v := range l {
			k := t.tileOf[v] - base
			tl := &tiles[k]
			t.row[v] = rows[k]
			rows[k] += nsec[v] + 1
			tl.reaches = append(tl.reaches, v)
		}
		for _, r := range rows {
			t.maxRows = max(t.maxRows, int(r))
		}
		// Tiles were numbered roots downstream first: reverse for upstream first.
		slices.Reverse(tiles)
		t.groups = append(t.groups, tiles)
	}
	pos := 0
	t.secT = make([]int32, n+1)
	for _, tiles := range t.groups {
		for k := range tiles {
			tiles[k].base = pos
			for _, v := range tiles[k].reaches {
				t.secT[pos+1] = t.secT[pos] + nsec[v]
				pos++
			}
		}
	}
	// Boundary slots numbered in tile order: a tile's series lie together.
	t.order = make([]int32, n)
	for _, tiles := range t.groups {
		for _, tl := range tiles {
			for j, v := range tl.reaches {
				t.order[tl.base+j] = v
			}
		}
	}
	for _, v := range t.order {
		t.bslot[v] = -1
		if d := net.down[v]; d >= 0 && t.tileOf[d] != t.tileOf[v] {
			t.bslot[v] = int32(t.nslot)
			t.nslot++
		}
	}
	t.pos = make([]int32, n)
	for p, v := range t.order {
		t.pos[v] = int32(p)
	}
	t.adjSrc = make([]int32, n)
	t.rowP, t.bslotP = make([]int32, n), make([]int32, n)
	t.upStart = make([]int32, n+1)
	for p, v := range t.order {
		a := int32(-1)
		if d := net.down[v]; d >= 0 {
			a = t.row[d]
			if t.bslot[v] >= 0 {
				a = -2 - t.bslot[v]
			}
		}
		t.adjSrc[p] = a
		t.rowP[p], t.bslotP[p] = t.row[v], t.bslot[v]
		t.upStart[p+1] = t.upStart[p] + int32(len(net.Upstream(int(v))))
	}
	t.upSrc = make([]int32, t.upStart[n])
	for p, v := range t.order {
		for k, c := range net.Upstream(int(v)) {
			src := t.row[c] + nsec[c] - 1
			if t.bslot[c] >= 0 {
				src = -1 - t.bslot[c]
			}
			t.upSrc[int(t.upStart[p])+k] = src
		}
	}
	return t
}

// tilingFor returns e's tiling for blocks of bl sub-steps.
func (e *gradEngine) tilingFor(bl int) *tiling {
	if e.tl == nil || e.tl.bl != bl {
		n := e.net.Len()
		nsec := make([]int32, n)
		for i := range nsec {
			nsec[i] = e.secStart[i+1] - e.secStart[i]
		}
		e.tl = buildTiling(e.net, e.parts, e.trunk, bl, nsec)
		e.tl.secs = make([]Section, e.tl.secT[n])
		for p, i := range e.tl.order {
			copy(e.tl.secs[e.tl.secT[p]:e.tl.secT[p+1]], e.secs[e.secStart[i]:e.secStart[i+1]])
		}
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
	// The chunked layout's: λ of the adjoint's first pass, and per step of
	// each lane the runoff term, the loss's shares of ȳ (in the forward
	// pass: the reported values) and the sums and first values of λ.
	clam                   []float64
	dl                     float64 // Σ runoff·Σλ of the last fused lateral
	cLat, cs, es, csl, cfl []float64
}

// eachTile runs fn over the tiles, upstream first (forward) or outlets first
// (backward), the parts' tiles in parallel and the trunk's alone.
func (g *gradRun) eachTile(ctx context.Context, tl *tiling, backward bool, fn func(wk *tileWorker, t *gradTile)) error {
	for len(g.twks) < len(tl.groups) {
		g.twks = append(g.twks, &tileWorker{})
	}
	bl := tl.bl
	for _, wk := range g.twks {
		if len(wk.buf) < tl.maxRows*bl || len(wk.zero) < bl {
			wk.buf = make([]float64, tl.maxRows*bl)
			wk.ubd, wk.zero = make([]float64, bl), make([]float64, bl)
			wk.out, wk.gys, wk.lat, wk.dxs = make([]float64, bl), make([]float64, bl), make([]float64, bl), make([]float64, bl)
			wk.sumL, wk.firstL = make([]float64, bl), make([]float64, bl)
			wk.clam = make([]float64, bl)
			wk.cLat, wk.cs, wk.es, wk.csl, wk.cfl = make([]float64, bl), make([]float64, bl), make([]float64, bl), make([]float64, bl), make([]float64, bl)
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

// tileSrc is an upstream reach's outflow over the block as its downstream
// reach sees it (src from tiling.upSrc): the stored boundary series, or its
// outflow row of the tile buffer.
func (g *gradRun) tileSrc(wk *tileWorker, tl *tiling, src int32, n0, nb int) []float64 {
	if src < 0 {
		return g.bound[-1-src][n0 : n0+nb]
	}
	return wk.buf[int(src)*tl.bl:][:nb]
}

// secRow is the row of section k of the reach at p in the tile buffer, yRow
// that of its last section (its outflow), uRow its summed inflow.
func (wk *tileWorker) secRow(tl *tiling, p, k, nb int) []float64 {
	return wk.buf[(int(tl.rowP[p])+k)*tl.bl:][:nb]
}

func (wk *tileWorker) yRow(tl *tiling, p, nb int) []float64 {
	return wk.secRow(tl, p, int(tl.secT[p+1]-tl.secT[p])-1, nb)
}

func (wk *tileWorker) uRow(tl *tiling, p, nb int) []float64 {
	return wk.secRow(tl, p, int(tl.secT[p+1]-tl.secT[p]), nb)
}

// tileInflow2 is tileInflow for the section kernels, which add the
// outflows of two upstream reaches themselves where they can: then it
// returns both, else the inflow and nil.
func (g *gradRun) tileInflow2(wk *tileWorker, tl *tiling, b int, i int32, p, n0, nb int) (u, u2 []float64) {
	if ups := tl.upSrc[tl.upStart[p]:tl.upStart[p+1]]; len(ups) == 2 && sumVector64(g.e.f) && (!g.anyIn || g.in[i] == nil) {
		return g.tileSrc(wk, tl, ups[0], n0, nb), g.tileSrc(wk, tl, ups[1], n0, nb)
	}
	return g.tileInflow(wk, tl, b, i, p, n0, nb, true), nil
}

// tileInflow is the upstream inflow over the block of reach i at p; a sum
// of several is kept in its inflow row, and summed again only when fresh.
func (g *gradRun) tileInflow(wk *tileWorker, tl *tiling, b int, i int32, p, n0, nb int, fresh bool) []float64 {
	ups := tl.upSrc[tl.upStart[p]:tl.upStart[p+1]]
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
	u := wk.uRow(tl, p, nb)
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
func (g *gradRun) tileAdjIn(wk *tileWorker, tl *tiling, b int, i int32, p, n0, nb int, chunked bool) []float64 {
	var src []float64
	switch a := tl.adjSrc[p]; {
	case a >= 0:
		src = wk.buf[int(a)*tl.bl:][:nb]
	case a <= -2:
		src = g.bound[-2-a][n0 : n0+nb] // the downstream tile left it there
	}
	var gout []float64
	if g.anyGout {
		gout = g.gout[i]
	}
	if gout != nil {
		gs := gout[b*g.TF+n0 : b*g.TF+n0+nb]
		if chunked {
			// In time order: chunked into the scratch, plus the source.
			d := wk.ubd[:nb]
			toChunked(d, gs, nb/16)
			if src != nil {
				addSeries(d, d, src)
			}
			return d
		}
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

// prefetchRows asks the cache for the staged runoff (and, when gy, ∂L/∂y)
// of the reach at p over steps [q0, q0+nq) of member b while the reach
// before it runs: the passes visit each staged row once per block, too far
// apart for the hardware to see a stream.
func (g *gradRun) prefetchRows(b, p, q0, nq int, gy bool) {
	row := (b*g.N+p)*g.T + q0
	if g.lat == nil {
		prefetch32(g.xT[row:][:nq])
	}
	if gy && g.gy32 != nil {
		prefetch32(g.yT[row:][:nq])
	}
}

// latSeg is the runoff of reach i (at p in tile order) over steps
// [q0, q0+nq) of member b.
func (g *gradRun) latSeg(b int, i int32, p, q0, nq int) mixedSeries {
	if g.lat == nil {
		return mixedSeries{s32: g.xT[(b*g.N+p)*g.T+q0:][:nq]}
	}
	return mixedSeries{s64: g.lat[(b*g.N+int(i))*g.T+q0:][:nq]}
}

// Staging in tile order. The tiled passes visit reaches in tile order, and
// a tensor's rows (runoff, discharge, ∂L/∂y, ∂L/∂runoff: one short row per
// reach) lie scattered through it in the file's order: reading or writing
// them in the passes costs a TLB miss and a cache miss for each half row,
// four times over. Instead each tensor is copied once, row by row on every
// worker, into or out of a dense copy in tile order ([b][p][t]), which the
// passes then read and write in order.

// stages are the staging copies, kept between runs as the slab is, on huge
// pages: a single gradient (the CLI's) touches them fresh, two tensors' worth
// (80 MB for 100,000 reaches × 100 steps), and 4 KiB faults cost it 0.2 s.
var stages = bufPool[float32]{huge: true}

// stageRows copies the rows of T values of every member between tile
// order (tile: N rows a member) and a tensor's data (M rows a member, p's
// row at rowOf[p]): into tile order when gather is true, zeroing each row
// read from data when clearData is, else out of it.
func (g *gradRun) stageRows(tile, data []float32, M int, rowOf []int, gather, clearData bool) {
	N, T := g.N, g.T
	if T == 0 || N == 0 {
		return
	}
	nw := min(max(1, len(g.e.parts)), N)
	var wg sync.WaitGroup
	for w := range nw {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for b := 0; b < g.B; b++ {
				for p := lo; p < hi; p++ {
					if p+stageAhead < hi {
						prefetch32(data[(b*M+rowOf[p+stageAhead])*T:][:T])
					}
					d := data[(b*M+rowOf[p])*T:][:T]
					t := tile[(b*N+p)*T:][:T]
					if !gather {
						copy(d, t)
						continue
					}
					copy(t, d)
					if clearData {
						clear(d)
					}
				}
			}
		}(w*N/nw, (w+1)*N/nw)
	}
	wg.Wait()
}

// stageAhead is how many rows ahead stageRows asks for a scattered row.
const stageAhead = 8

// tileWeights are the weights of a step's reported value over its fine
// outflows (stepWeights) for the kernels; sampling a step's start value
// has none (tileSampleStart fills it after the kernel).
func (e *gradEngine) tileWeights() (w [3]float64, sampleStart bool) {
	start, sample := e.o.Average == AverageStart, e.o.Sampling == SampleLast
	if start && sample {
		return w, true
	}
	return stepWeights(reachParams{f: e.f, rapid: e.o.Lateral == LateralRAPID, start: start, sample: sample}), false
}

// runSection64Sum is runSection64 on the inflow u + u2 where u2 is not nil
// (then sumVector64(f) holds), storing that sum into usum unless nil.
func runSection64Sum(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, u, u2, usum, dst []float64, lat, out mixedSeries) {
	if u2 == nil {
		runSection64(s, f, rapid, w, y, uPrev, lPrev, u, dst, lat, out)
		return
	}
	if !sectionSum64(s, f, rapid, w, y, uPrev, lPrev, u, u2, usum, dst, lat, out) {
		panic("diffroute: runSection64Sum without its kernel")
	}
}

// runSection64 runs one section over the block: on the vector kernel where f
// fills whole vectors, else step by step.
func runSection64(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, inflow, dst []float64, lat, out mixedSeries) {
	if !sectionVector64(s, f, rapid, w, y, uPrev, lPrev, inflow, dst, lat, out) {
		sectionScalar64(s, f, rapid, w, y, uPrev, lPrev, inflow, dst, lat, out)
	}
}

// sectionScalar64 is sectionVector64 as a plain loop (any f). After a
// step's first sub-step it takes two at a time, y[n+1] = g[n+1] + a·g[n] +
// a²·y[n−1], so that the loop-carried chain is one FMA per two sub-steps.
func sectionScalar64(s Section, f int, rapid bool, w [3]float64, y, uPrev, lPrev *float64, inflow, dst []float64, lat, out mixedSeries) {
	yv, up, lp := *y, *uPrev, *lPrev
	nq := lat.len()
	inflow, dst = inflow[:nq*f], dst[:nq*f]
	b0, b1, a := s.B0, s.B1, s.A1
	a2 := a * a
	for q := 0; q < nq; q++ {
		l := lat.at(q)
		lprev := l
		if !rapid {
			lprev = lp
		}
		before := yv
		n := q * f
		u := inflow[n]
		yv = b0*(u+l) + b1*(up+lprev) + a*yv
		dst[n] = yv
		sum0, sum1 := yv, 0.0
		kl := (b0 + b1) * l
		j := 1
		for ; j+1 < f; j += 2 {
			n := q*f + j
			u0, u1, u2 := inflow[n-1], inflow[n], inflow[n+1]
			g1 := b0*u1 + b1*u0 + kl
			g2 := b0*u2 + b1*u1 + kl
			y1 := g1 + a*yv
			yv = g2 + a*g1 + a2*yv
			dst[n], dst[n+1] = y1, yv
			sum0 += y1
			sum1 += yv
		}
		if j < f {
			n := q*f + j
			yv = b0*inflow[n] + b1*inflow[n-1] + kl + a*yv
			dst[n] = yv
			sum0 += yv
		}
		up = inflow[q*f+f-1]
		out.set(q, w[0]*(sum0+sum1)+w[1]*yv+w[2]*before)
		lp = l
	}
	*y, *uPrev, *lPrev = yv, up, lp
}

// adjointScalar is adjointSection two sub-steps at a time where it can:
// λ[n−1] = ȳ[n−1] + a·ȳ[n] + a²·λ[n+1], so that the loop-carried chain is
// one FMA per two sub-steps, with the sums in two accumulators each.
func adjointScalar(a *adjArgs) {
	f := a.f
	nq := len(a.gy)
	s := a.s
	b0, b1, c := s.B0, s.B1, s.A1
	c2 := c * c
	fl := nq * f
	ubd, y, u := a.ubd[:fl], a.y[:fl], a.u[:fl]
	lam := a.lam
	var du0, du1, dup0, dup1, dy0, dy1 float64
	gyn := a.gyn
	for q := nq - 1; q >= 0; q-- {
		cg := a.w[0] * a.gy[q]
		extra := a.w[1]*a.gy[q] + a.w[2]*gyn
		gyn = a.gy[q]
		base := q * f
		var sum0, sum1 float64
		j := f - 1
		ex := extra // on the step's last sub-step
		for ; j >= 2; j -= 2 {
			n := base + j // n and n−1, both ≥ 1
			g1 := ubd[n] + cg + ex
			g0 := ubd[n-1] + cg
			ex = 0
			l1 := g1 + c*lam
			l0 := g0 + c*g1 + c2*lam
			ym1, ym2 := y[n-1], y[n-2]
			um1, um2 := u[n-1], u[n-2]
			dy0 += l1 * ym1
			dy1 += l0 * ym2
			du0 += l1 * u[n]
			du1 += l0 * um1
			dup0 += l1 * um1
			dup1 += l0 * um2
			y[n] = b0*l1 + b1*lam
			y[n-1] = b0*l0 + b1*l1
			sum0 += l1
			sum1 += l0
			lam = l0
		}
		for ; j >= 0; j-- {
			n := base + j
			l := ubd[n] + cg + ex
			ex = 0
			l += c * lam
			yp, upv := a.y0, a.up0
			if n > 0 {
				yp, upv = y[n-1], u[n-1]
			}
			dy0 += l * yp
			du0 += l * u[n]
			dup0 += l * upv
			y[n] = b0*l + b1*lam
			sum0 += l
			lam = l
		}
		a.sumL[q], a.firstL[q] = sum0+sum1, lam
	}
	a.lam, a.du, a.dup, a.dy = lam, du0+du1, dup0+dup1, dy0+dy1
}

// reachForward runs the sections of the reach at p over the block from
// the state in ys (its sections' last outflows), up and lp, writing section
// k's outflows into its row of the tile buffer, the last one's into y, and
// the reported values into out. The inflow is u, or u + u2 where u2 is not
// nil, then also stored into usum unless that is nil.
func (g *gradRun) reachForward(wk *tileWorker, tl *tiling, p int, ys []float64, up, lp *float64, u, u2, usum, y []float64, lat mixedSeries, out mixedSeries, nb int) {
	e := g.e
	f, rapid := e.f, e.o.Lateral == LateralRAPID
	w, sampleStart := e.tileWeights()
	secs := tl.secs[tl.secT[p]:tl.secT[p+1]]
	nq := lat.len()
	K := len(secs)
	yBefore := ys[K-1]
	noOut := out.len() == 0 // the recompute: fine outflows only
	if noOut && !noOutVector64(f) {
		out = mixedSeries{s64: wk.out[:nq]}
	}
	if K == 1 {
		runSection64Sum(secs[0], f, rapid, w, &ys[0], up, lp, u, u2, usum, y, lat, out)
	} else {
		scratch := mixedSeries{s64: wk.out[:nq]}
		if noOutVector64(f) {
			scratch = mixedSeries{}
		}
		zero := mixedSeries{s64: wk.zero[:nq]}
		upk := 0.0
		for k, s := range secs {
			dst, o := y, out
			if k < K-1 {
				dst, o = wk.secRow(tl, p, k, nb), scratch
			}
			next := ys[k] // section k+1's inflow before the block
			if k == 0 {
				runSection64Sum(s, f, rapid, w, &ys[0], up, lp, u, u2, usum, dst, lat, o)
			} else {
				lpk := 0.0 // no runoff enters after the first section
				runSection64(s, f, true, w, &ys[k], &upk, &lpk, u, dst, zero, o)
			}
			upk = next
			u = dst
		}
	}
	if sampleStart && !noOut {
		tileSampleStart(f, yBefore, y[:nq*f], out)
	}
}

// tileSampleStart reports each step's value at its start, the outflow one
// sub-step before its end (before the block: yBefore).
func tileSampleStart(f int, yBefore float64, y []float64, out mixedSeries) {
	nq := out.len()
	for q := 0; q < nq; q++ {
		v := yBefore
		if n := q*f + f - 2; n >= 0 {
			v = y[n]
		}
		out.set(q, v)
	}
}

// tileForward routes member b through the network tile by tile, keeping the
// boundary series and the checkpoints, and the discharge when coarse.
func (g *gradRun) tileForward(ctx context.Context, tl *tiling, b int, coarse bool) error {
	e := g.e
	n, f, bl := g.N, e.f, tl.bl
	nsec := int(tl.secT[n])
	return g.eachTile(ctx, tl, false, func(wk *tileWorker, t *gradTile) {
		for k := 0; k < g.nblk; k++ {
			n0 := k * bl
			nb := min(bl, g.TF-n0)
			q0, nq := n0/f, nb/f
			chunked := g.chunked(nb)
			for j, i := range t.reaches {
				p := t.base + j
				if j+1 < len(t.reaches) {
					g.prefetchRows(b, p+1, q0, nq, false)
				}
				s0, s1 := tl.secT[p], tl.secT[p+1]
				if c := k*nsec + int(s0); s1-s0 == 1 {
					g.ckY[c] = g.ysT[s0]
				} else {
					copy(g.ckY[c:], g.ysT[s0:s1])
				}
				off := k*n + p
				g.ckU[off], g.ckL[off] = g.uPrevT[p], g.lPrevT[p]
				y := wk.yRow(tl, p, nb)
				if sl := tl.bslotP[p]; sl >= 0 {
					// Only the next tile reads it: straight into its boundary series.
					y = g.bound[sl][n0 : n0+nb]
				}
				if chunked {
					g.forwardChunked(wk, tl, b, i, p, n0, nb, y, coarse)
					if g.anyOut {
						if o := g.out[i]; o != nil {
							fromChunked(o[b*g.TF+n0:][:nb], y, nb/16)
						}
					}
					continue
				}
				u, u2 := g.tileInflow2(wk, tl, b, i, p, n0, nb)
				out := mixedSeries{s64: wk.out[:nq]}
				switch {
				case !coarse:
				case g.yT != nil:
					out = mixedSeries{s32: g.yT[(b*n+p)*g.T+q0:][:nq]}
				default:
					out = mixedSeries{s64: g.y[(b*n+int(i))*g.T+q0:][:nq]}
				}
				g.reachForward(wk, tl, p, g.ysT[s0:s1], &g.uPrevT[p], &g.lPrevT[p], u, u2, nil, y, g.latSeg(b, i, p, q0, nq), out, nb)
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
	nsec := int(tl.secT[n])
	return g.eachTile(ctx, tl, true, func(wk *tileWorker, t *gradTile) {
		var ys [8]float64
		for k := g.nblk - 1; k >= 0; k-- {
			n0 := k * bl
			nb := min(bl, g.TF-n0)
			q0, nq := n0/f, nb/f
			chunked := g.chunked(nb)
			for j, i := range t.reaches {
				p := t.base + j
				if j+1 < len(t.reaches) {
					g.prefetchRows(b, p+1, q0, nq, false)
				}
				off := k*n + p
				up, lp := g.ckU[off], g.ckL[off]
				K := int(tl.secT[p+1] - tl.secT[p])
				st := g.ckY[k*nsec+int(tl.secT[p]):][:K]
				if chunked {
					g.reachChunked(wk, tl, b, i, p, n0, nb, st, up, wk.yRow(tl, p, nb), nil, nil, true)
					continue
				}
				yk := ys[:0]
				switch {
				case K == 1:
					ys[0] = st[0]
					yk = ys[:1]
				case K <= len(ys):
					yk = ys[:K]
					copy(yk, st)
				default:
					yk = slices.Clone(st)
				}
				// The adjoint reads a junction's summed inflow: the kernel keeps it.
				u, u2 := g.tileInflow2(wk, tl, b, i, p, n0, nb)
				g.reachForward(wk, tl, p, yk, &up, &lp, u, u2, wk.uRow(tl, p, nb), wk.yRow(tl, p, nb), g.latSeg(b, i, p, q0, nq), mixedSeries{}, nb)
			}
			for j := len(t.reaches) - 1; j >= 0; j-- {
				if j > 0 {
					g.prefetchRows(b, t.base+j-1, q0, nq, true)
				}
				g.tileReachAdjoint(wk, tl, b, t.reaches[j], t.base+j, k, n0, nb)
			}
		}
	})
}

// tileReachAdjoint runs reach i's adjoint over block k, section by section,
// last first, and accumulates its gradients; its first buffer row then
// holds ∂L/∂(its inflow).
func (g *gradRun) tileReachAdjoint(wk *tileWorker, tl *tiling, b int, i int32, p, k, n0, nb int) {
	e := g.e
	n, f := g.N, e.f
	q0, nq := n0/f, nb/f
	off := k*n + p
	st := int(tl.secT[p])
	K := int(tl.secT[p+1]) - st
	ck := k*int(tl.secT[n]) + st // section checkpoints of the block
	w, sampleStart := e.tileWeights()
	chunked := g.chunked(nb)
	// ∂L/∂(discharge) of the block's steps in float64 (tileLateral reads
	// the runoff as staged); the value of the step after the block was
	// kept when that block ran.
	gy := wk.gys[:nq]
	gyn := g.gyNext[p]
	row := (b*n + int(i)) * g.T
	// Chunked: the loss's share of ȳ per step of each lane, or the staged
	// ∂L/∂y that the kernel gathers itself (where each step's value weighs
	// all its sub-steps alike).
	var cs, es []float64
	var gy32 []float32
	switch {
	case chunked:
		S := nq / 16
		cs, es = wk.cs[:16*S], wk.es[:16*S]
		switch {
		case g.gy32 != nil && w[1] == 0 && w[2] == 0:
			gy32 = g.yT[(b*n+p)*g.T+q0:][:nq]
			g.gyNext[p] = float64(gy32[0])
		case g.gy32 != nil:
			g.gyNext[p] = chunkLoss(cs, es, g.yT[(b*n+p)*g.T+q0:][:nq], w, gyn)
		default:
			g.gyNext[p] = chunkLoss(cs, es, g.gy[row+q0:row+q0+nq], w, gyn)
		}
	case g.gy32 != nil:
		for j, v := range g.yT[(b*n+p)*g.T+q0:][:nq] {
			gy[j] = float64(v)
		}
	default:
		gy = g.gy[row+q0 : row+q0+nq]
	}
	gy0 := g.gyNext[p] // ∂L/∂y of the block's first step
	if !chunked {
		gy0 = gy[0]
		g.gyNext[p] = gy0
	}
	ubd := g.tileAdjIn(wk, tl, b, i, p, n0, nb, chunked)
	if sampleStart {
		// Step q reports the outflow at sub-step q·f + f − 2: with f = 1
		// that is the step before's (the block's last sub-step reports the
		// next block's first step).
		d := wk.ubd[:nb]
		if &ubd[0] != &d[0] {
			copy(d, ubd)
		}
		if f >= 2 {
			for j, v := range gy {
				d[j*f+f-2] += v
			}
		} else {
			for j := 0; j+1 < nq; j++ {
				d[j] += gy[j+1]
			}
			d[nq-1] += gyn
		}
		ubd = d
	}
	a := &wk.args
	for kk := K - 1; kk >= 0; kk-- {
		s := tl.secs[st+kk]
		*a = adjArgs{s: s, f: f, ubd: ubd, y: wk.secRow(tl, p, kk, nb), gy: gy, w: w, gyn: gyn,
			y0: g.ckY[ck+kk], lam: g.lamT[st+kk], sumL: wk.sumL[:nq], firstL: wk.firstL[:nq]}
		if kk < K-1 {
			a.w, a.gyn = [3]float64{}, 0 // only the last section's outflow is reported
		}
		if kk == 0 {
			a.up0 = g.ckU[off]
			if chunked {
				a.u = g.chunkInflow(wk, tl, i, p, n0, nb)
			} else {
				a.u = g.tileInflow(wk, tl, b, i, p, n0, nb, false)
			}
		} else {
			a.u, a.up0 = wk.secRow(tl, p, kk-1, nb), g.ckY[ck+kk-1]
		}
		fused := false // the chunked kernel did the first section's lateral
		switch {
		case chunked:
			// The first section's sums feed the lateral: ∂L/∂runoff
			// straight into the staged tensor by the kernel, or the sums in
			// time order to tileLateral.
			lc := chunkLoad{cs: cs, es: es, gy32: gy32, w0: w[0]}
			if kk < K-1 {
				zero := wk.zero[:len(cs)] // only the last section's outflow is reported
				lc = chunkLoad{cs: zero, es: zero}
			}
			sums := false
			if kk == 0 {
				// RAPID's lateral rule with the runoff and ∂L/∂runoff staged
				// (RouteGrad, Backward): the kernel does it; else the sums
				// go to tileLateral in time order.
				ls := g.latSeg(b, i, p, q0, nq)
				fused = g.e.o.Lateral == LateralRAPID && g.dxT != nil && ls.s32 != nil
				sums = !fused
				if fused {
					lc.dx32, lc.lat32 = g.yT[(b*n+p)*g.T+q0:][:nq], ls.s32
				}
			}
			wk.adjointChunked(a, nb, g.chunkPow(st+kk, nb/16), lc, sums)
		case !adjointVector(a):
			adjointScalar(a)
		}
		g.lamT[st+kk] = a.lam
		ds := &g.dsecT[st+kk]
		if kk > 0 {
			ds[0] += a.du
			ds[1] += a.dup
			ds[2] += a.dy
			if n0 == 0 {
				// Section kk starts at q0, and so does its inflow.
				g.dq0T[p] += (s.A1 + s.B1) * a.lam
			}
			ubd = a.y // now ∂L/∂(section kk−1's outflow)
			continue
		}
		switch {
		case fused:
			ds[0] += a.du + wk.dl
			ds[1] += a.dup + wk.dl
			ds[2] += a.dy
		default:
			g.tileLateral(wk, a, b, i, p, k, q0, nq, row, g.latSeg(b, i, p, q0, nq))
		}
		if n0 == 0 {
			// Before the first step: the reach's own outflow is q0, its inflow
			// the upstream reaches' q0 (and any transfer's).
			F := a.firstL[0]
			g.dq0UpT[p] += s.B1 * F
			if g.dinPrev != nil {
				g.dinPrev[i] += s.B1 * F
			}
			g.dq0T[p] += s.A1*F + w[2]*gy0 // q0 is also the value before the first step
			if sampleStart && f == 1 {
				g.dq0T[p] += gy0
			}
		}
	}
	ub := a.y
	for _, c := range tl.upSrc[tl.upStart[p]:tl.upStart[p+1]] {
		if c < 0 {
			copy(g.bound[-1-c][n0:n0+nb], ub)
		}
	}
	if g.anyIn {
		if d := g.din[i]; d != nil {
			d = d[b*g.TF+n0:][:nb]
			if chunked {
				t := wk.clam[:nb] // free after the kernel
				fromChunked(t, ub, nb/16)
				ub = t
			}
			addSeries(d, d, ub)
		}
	}
}

// tileLateral turns the first section's adjoint over the block into
// ∂L/∂runoff and the runoff's share of the section gradients: B0
// multiplies u[n] + l, B1 u[n−1] + l', l' being l except on a step's first
// sub-step under the lti rule, where it is the previous step's runoff (in
// the block before: carried).
func (g *gradRun) tileLateral(wk *tileWorker, a *adjArgs, b int, i int32, p, k, q0, nq, row int, ls mixedSeries) {
	e := g.e
	s := a.s
	rapid := e.o.Lateral == LateralRAPID
	if rapid && g.dxT != nil {
		// One pass: B0 and B1 both multiply the step's runoff.
		dst := g.yT[(b*g.N+p)*g.T+q0:][:nq] // ∂L/∂y there was read
		var dl0 float64
		if ls.s32 != nil {
			dl0 = rapidLateral(dst, ls.s32[:nq], a.sumL[:nq], s.B0+s.B1)
		} else {
			dl0 = rapidLateral(dst, ls.s64[:nq], a.sumL[:nq], s.B0+s.B1)
		}
		ds := &g.dsecT[int(g.e.tl.secT[p])]
		ds[0] += a.du + dl0
		ds[1] += a.dup + dl0
		ds[2] += a.dy
		return
	}
	lat := ls.s64
	if lat == nil {
		lat = wk.lat[:nq]
		for j, v := range ls.s32[:nq] {
			lat[j] = float64(v)
		}
	}
	dx := wk.dxs[:nq]
	lp0 := g.ckL[k*g.N+p]
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
		dst := g.yT[(b*g.N+p)*g.T+q0:][:nq]
		for j, v := range dx {
			dst[j] = float32(v)
		}
	} else {
		copy(g.dx[row+q0:row+q0+nq], dx)
	}
	ds := &g.dsecT[int(g.e.tl.secT[p])]
	ds[0] += a.du + dl0
	ds[1] += a.dup + dl1
	ds[2] += a.dy
}

// The chunked layout. A section's recursion runs sub-step after sub-step,
// and the eight-wide kernels above scan eight sub-steps at once with lane
// shifts: about twelve 512-bit operations for eight sub-steps forwards and
// eighteen for the adjoint, which bounds them on cores that issue two such
// operations a cycle of any kind. Instead a block of whole multiples of
// chunkSteps steps is cut into 16 chunks of L sub-steps, chunk j in lane j
// of a row (sub-step j·L + t at [16t + j]): each lane runs its chunk's
// recursion from zero with one FMA a sub-step and no shuffles, and a second
// pass adds each chunk's true start (chunkForward, chunkAdjoint). Both
// passes run such blocks chunked, so every row of the tile buffer and every
// boundary series of the block is chunked; the per-step values (runoff,
// discharge, ∂L/∂y, ∂L/∂runoff) stay in time order, and the kernels gather
// and scatter them (the float64 runoff and loss terms of the general
// engine's tests are gathered by the callers).

// chunkSteps is the step count of which a block must be a whole multiple
// to run chunked: one or more steps in each of 16 lanes.
const chunkSteps = 16

// chunked reports whether the backward pass runs a block of nb sub-steps in
// the chunked layout.
func (g *gradRun) chunked(nb int) bool {
	return g.chunk && nb%(chunkSteps*g.e.f) == 0
}

// chunkPow is a^L of the section at sec (tile order) for chunks of L
// sub-steps: kept for the blocks' usual L (setChunkPows), else computed.
func (g *gradRun) chunkPow(sec, L int) float64 {
	if L == g.chunkL {
		return g.chunkAL[sec]
	}
	return powInt(g.e.tl.secs[sec].A1, L)
}

// setChunkPows keeps a^L of every section for chunks of L sub-steps.
func (g *gradRun) setChunkPows(tl *tiling, L int) {
	g.chunkL = L
	g.chunkAL = reuse(&g.e.chunkALBuf, len(tl.secs))
	for k, s := range tl.secs {
		g.chunkAL[k] = powInt(s.A1, L)
	}
}

// powInt is a^n by squaring.
func powInt(a float64, n int) float64 {
	r := 1.0
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			r *= a
		}
		a *= a
	}
	return r
}

// toChunked copies src (16·L values in time order) into dst in the chunked
// layout.
func toChunked(dst, src []float64, L int) {
	dst, src = dst[:16*L], src[:16*L]
	for j := range 16 {
		for t, v := range src[j*L : (j+1)*L] {
			dst[16*t+j] = v
		}
	}
}

// fromChunked copies src (a chunked row of 16·L values) into dst in time
// order.
func fromChunked(dst, src []float64, L int) {
	dst, src = dst[:16*L], src[:16*L]
	for j := range 16 {
		d := dst[j*L : (j+1)*L]
		for t := range d {
			d[t] = src[16*t+j]
		}
	}
}

// chunkInflow is the chunked inflow of the reach at p that reachChunked
// read in the backward pass: none, the upstream reach's row in the tile or
// boundary series, or the reach's inflow row (a sum).
func (g *gradRun) chunkInflow(wk *tileWorker, tl *tiling, i int32, p, n0, nb int) []float64 {
	ups := tl.upSrc[tl.upStart[p]:tl.upStart[p+1]]
	switch {
	case g.anyIn && g.in[i] != nil:
	case len(ups) == 0:
		return wk.zero[:nb]
	case len(ups) == 1:
		return g.tileSrc(wk, tl, ups[0], n0, nb)
	}
	return wk.uRow(tl, p, nb)
}

// reachChunked routes the reach at p over a chunked block from the state
// before it (its sections' outflows ys, its inflow up): section k's
// outflows into its row of the tile buffer, the last one's into y. Where
// out is not nil it receives the last section's reported value per step of
// each lane ([s][16]). A junction's summed inflow is kept in the reach's
// inflow row where keepSum is true (the adjoint reads it). It returns the
// inflow at the block's last sub-step.
func (g *gradRun) reachChunked(wk *tileWorker, tl *tiling, b int, i int32, p, n0, nb int, ys []float64, up float64, y, out []float64, out32 []float32, keepSum bool) float64 {
	f := g.e.f
	L := nb / 16
	S, nq := L/f, nb/f
	secs := tl.secs[tl.secT[p]:tl.secT[p+1]]
	ups := tl.upSrc[tl.upStart[p]:tl.upStart[p+1]]
	var u, u2, usum []float64
	var ext []float64
	if g.anyIn {
		ext = g.in[i]
	}
	switch {
	case ext != nil:
		// Fine inflow from outside the network (staged transfers), in time
		// order: chunked into the inflow row, the upstream reaches added.
		u = wk.uRow(tl, p, nb)
		toChunked(u, ext[b*g.TF+n0:][:nb], L)
		for _, c := range ups {
			addSeries(u, u, g.tileSrc(wk, tl, c, n0, nb))
		}
	case len(ups) == 0:
		u = wk.zero[:nb]
	case len(ups) == 1:
		u = g.tileSrc(wk, tl, ups[0], n0, nb)
	case len(ups) == 2:
		u, u2 = g.tileSrc(wk, tl, ups[0], n0, nb), g.tileSrc(wk, tl, ups[1], n0, nb)
		if keepSum {
			usum = wk.uRow(tl, p, nb)
		}
	default:
		u = wk.uRow(tl, p, nb)
		addSeries(u, g.tileSrc(wk, tl, ups[0], n0, nb), g.tileSrc(wk, tl, ups[1], n0, nb))
		for _, c := range ups[2:] {
			addSeries(u, u, g.tileSrc(wk, tl, c, n0, nb))
		}
	}
	last := 16*L - 1
	upEnd := u[last]
	if u2 != nil {
		upEnd += u2[last]
	}
	// The first section's runoff: staged float32 (the kernel gathers it per
	// step of each lane), else (b0+b1)·runoff per step of each lane.
	var c []float64
	ls := g.latSeg(b, i, p, n0/f, nq)
	if ls.s32 == nil {
		c = wk.cLat[:16*S]
		kc := secs[0].B0 + secs[0].B1
		for j := range 16 {
			for s, v := range ls.s64[j*S : (j+1)*S] {
				c[16*s+j] = kc * v
			}
		}
	}
	w, _ := g.e.tileWeights()
	s0 := int(tl.secT[p])
	K := len(secs)
	for k, s := range secs {
		dst, o, o32 := wk.secRow(tl, p, k, nb), []float64(nil), []float32(nil)
		if k == K-1 {
			dst, o, o32 = y, out, out32
		}
		aL := g.chunkPow(s0+k, L)
		if k == 0 {
			chunkForward(s, f, L, aL, ys[0], up, u, u2, usum, dst, c, ls.s32, o, o32, w)
		} else {
			chunkForward(s, f, L, aL, ys[k], ys[k-1], u, nil, nil, dst, wk.zero[:16*S], nil, o, o32, w)
		}
		u, u2 = dst, nil
	}
	return upEnd
}

// forwardChunked is tileForward's reach at p over a chunked block: routed
// from the state in ysT, uPrevT and lPrevT, which it leaves at the block's
// end, the reported values into the staged discharge (or g.y) when coarse.
func (g *gradRun) forwardChunked(wk *tileWorker, tl *tiling, b int, i int32, p, n0, nb int, y []float64, coarse bool) {
	f := g.e.f
	S, nq, q0 := nb/(16*f), nb/f, n0/f
	s0, s1 := int(tl.secT[p]), int(tl.secT[p+1])
	var out []float64
	var out32 []float32
	switch {
	case !coarse:
	case g.yT != nil:
		out32 = g.yT[(b*g.N+p)*g.T+q0:][:nq] // the kernel scatters the steps
	default:
		out = wk.cs[:16*S] // the adjoint's scratch, free in the forward pass
	}
	g.uPrevT[p] = g.reachChunked(wk, tl, b, i, p, n0, nb, g.ysT[s0:s1], g.uPrevT[p], y, out, out32, false)
	// The state at the block's end: each section's outflow at its last
	// sub-step (lane 15's last), and the last step's runoff.
	for k := s0; k < s1; k++ {
		row := y
		if k < s1-1 {
			row = wk.secRow(tl, p, k-s0, nb)
		}
		g.ysT[k] = row[nb-1]
	}
	g.lPrevT[p] = g.latSeg(b, i, p, q0, nq).at(nq - 1)
	if out == nil {
		return
	}
	dst := g.y[(b*g.N+int(i))*g.T+q0:][:nq]
	for j := range 16 {
		for s := range S {
			dst[j*S+s] = out[16*s+j]
		}
	}
}

// chunkLoss stores the loss's share of ȳ per step of each lane of a
// chunked block: w[0]·∂L/∂y of the step on every sub-step into cs, what
// its last sub-step adds (w[1]·∂L/∂y, w[2]·∂L/∂y of the step after, gyn
// past the block) into es. It returns ∂L/∂y of the block's first step.
func chunkLoss[E float32 | float64](cs, es []float64, gy []E, w [3]float64, gyn float64) float64 {
	nq := len(gy)
	S := nq / 16
	if w[1] == 0 && w[2] == 0 {
		clear(es)
		for j := range 16 {
			for s, v := range gy[j*S : (j+1)*S] {
				cs[16*s+j] = w[0] * float64(v)
			}
		}
		return float64(gy[0])
	}
	for j := range 16 {
		for s := range S {
			q := j*S + s
			gn := gyn
			if q+1 < nq {
				gn = float64(gy[q+1])
			}
			v := float64(gy[q])
			cs[16*s+j] = w[0] * v
			es[16*s+j] = w[1]*v + w[2]*gn
		}
	}
	return float64(gy[0])
}

// chunkLoad is what a chunked section's adjoint adds to ∂L/∂(its outflow)
// (the loss's share: cs and es per step of each lane, or w0 times the
// staged ∂L/∂y gy32) and, for a reach's first section, where the kernel
// stores ∂L/∂runoff (dx32, from the staged runoff lat32).
type chunkLoad struct {
	cs, es      []float64
	gy32        []float32
	w0          float64
	dx32, lat32 []float32
}

// adjointChunked is adjointVector for a chunked block: a.ubd, a.y and a.u
// are chunked rows, cs and es the loss's share of ȳ (chunkLoss). The sums
// per step of each lane stay in wk.csl and wk.cfl ([s][16]), and go to
// a.sumL and a.firstL in time order only where sums is true.
func (wk *tileWorker) adjointChunked(a *adjArgs, nb int, aL float64, lc chunkLoad, sums bool) {
	f := a.f
	L := nb / 16
	S := L / f
	sl, fl := wk.csl[:16*S], wk.cfl[:16*S]
	a.du, a.dup, a.dy, a.lam, wk.dl = chunkAdjoint(a.s, f, L, aL, a.lam, a.y0, a.up0, a.ubd, a.y, a.u, wk.clam[:nb], lc.cs, lc.es, sl, fl, lc.gy32, lc.w0, lc.dx32, lc.lat32)
	a.firstL[0] = fl[0] // the block's first step: lane 0's
	if !sums {
		return
	}
	sumL, firstL := a.sumL[:16*S], a.firstL[:16*S]
	for j := range 16 {
		for s := range S {
			sumL[j*S+s], firstL[j*S+s] = sl[16*s+j], fl[16*s+j]
		}
	}
}

// rapidLateral stores ∂L/∂runoff = kc·S into dst for each step's sum S
// of the first section's adjoint and returns Σ runoff·S (two partial sums:
// one would wait on each addition).
func rapidLateral[E float32 | float64](dst []float32, lat []E, sumL []float64, kc float64) float64 {
	dst, sumL = dst[:len(lat)], sumL[:len(lat)]
	var s0, s1 float64
	j := 0
	for ; j+2 <= len(lat); j += 2 {
		S0, S1 := sumL[j], sumL[j+1]
		s0 += float64(lat[j]) * S0
		s1 += float64(lat[j+1]) * S1
		dst[j], dst[j+1] = float32(kc*S0), float32(kc*S1)
	}
	if j < len(lat) {
		s0 += float64(lat[j]) * sumL[j]
		dst[j] = float32(kc * sumL[j])
	}
	return s0 + s1
}

// initTileState sets the state before member b's first step, in tile
// order: the passes then read and write it in order.
func (g *gradRun) initTileState(tl *tiling, b int) {
	e, n := g.e, g.N
	g.initState(b)
	st := reuse(&e.tileStateBuf, int(tl.secT[n])+2*n)
	g.ysT, g.uPrevT, g.lPrevT = st[:tl.secT[n]], st[tl.secT[n]:int(tl.secT[n])+n], st[int(tl.secT[n])+n:]
	for p, i := range tl.order {
		copy(g.ysT[tl.secT[p]:tl.secT[p+1]], g.ys[e.secStart[i]:e.secStart[i+1]])
		g.uPrevT[p], g.lPrevT[p] = g.uPrev[i], g.lPrev[i]
	}
}

// runTiles is run on the tiled adjoint.
func (g *gradRun) runTiles(ctx context.Context, loss func() error) error {
	e := g.e
	n := g.N
	bl := tileBlock(e.block/e.f, g.TF, e.f)
	tl := e.tilingFor(bl)
	nsec := int(tl.secT[n])
	g.nblk = (g.TF + bl - 1) / bl
	if g.TF == 0 {
		g.nblk = 0
	}
	slab := slabs.take(tl.nslot*g.TF + g.nblk*(nsec+2*n))
	defer slabs.put(slab)
	g.bound = make([][]float64, tl.nslot)
	for s := range g.bound {
		g.bound[s] = slab[s*g.TF : (s+1)*g.TF : (s+1)*g.TF]
	}
	ck := slab[tl.nslot*g.TF:]
	g.ckY, g.ckU, g.ckL = ck[:g.nblk*nsec], ck[g.nblk*nsec:g.nblk*(nsec+n)], ck[g.nblk*(nsec+n):g.nblk*(nsec+2*n)]
	if g.y32 == nil && !g.noY {
		g.y = reuse(&e.yBuf, g.B*n*g.T)
	}
	notNil := func(s []float64) bool { return s != nil }
	// The runoff's rows and the reaches in tile order.
	if cap(e.rowTBuf) < 2*n {
		e.rowTBuf = make([]int, 2*n)
	}
	g.rowT, g.reachT = e.rowTBuf[:n], e.rowTBuf[n:2*n]
	for _, tiles := range tl.groups {
		for _, t := range tiles {
			for j, i := range t.reaches {
				if g.rows != nil {
					g.rowT[t.base+j] = g.rows[i]
				}
				g.reachT[t.base+j] = int(i)
			}
		}
	}
	// The runoff (unless given in float64 in network order), and the
	// float32 discharge, ∂L/∂y and ∂L/∂runoff where wanted, staged in tile
	// order (one copy serves these three in turn).
	tot := g.B * n * g.T
	var nx, ny int
	if g.lat == nil {
		nx = tot
	}
	if g.y32 != nil || g.dxT != nil {
		ny = tot
	}
	st := stages.take(nx + ny)
	defer stages.put(st)
	if nx > 0 {
		g.xT = st[:nx]
		g.stageRows(g.xT, g.x.Data, g.x.N, g.rowT, true, false)
	}
	if ny > 0 {
		g.yT = st[nx : nx+ny]
	}
	g.anyIn, g.anyOut, g.anyGout = slices.ContainsFunc(g.in, notNil), slices.ContainsFunc(g.out, notNil), slices.ContainsFunc(g.gout, notNil)
	_, sampleStart := e.tileWeights()
	g.chunk = useChunks && e.o.Lateral == LateralRAPID && !sampleStart
	if g.chunk {
		g.setChunkPows(tl, tl.bl/16)
	}
	for b := 0; b < g.B; b++ {
		g.initTileState(tl, b)
		if err := g.tileForward(ctx, tl, b, !g.noY); err != nil {
			return err
		}
	}
	if g.y32 != nil {
		g.stageRows(g.yT, g.y32, n, g.reachT, false, false)
	}
	if loss == nil {
		return nil
	}
	if err := loss(); err != nil {
		return err
	}
	if g.gy32 != nil {
		// Zeroed as read when it is the router's own tensor: the next
		// gradient's loss finds it zeroed.
		g.stageRows(g.yT, g.gy32, n, g.reachT, true, g.zeroGy)
	}
	g.allocResults()
	// Per-reach and per-section scratch of the backward pass, kept between
	// runs (calibration repeats them).
	tb := reuse(&e.tileBuf, 4*n+nsec)
	clear(tb)
	g.dxCarry, g.gyNext, g.dq0T, g.dq0UpT = tb[:n], tb[n:2*n], tb[2*n:3*n], tb[3*n:4*n]
	g.lamT = tb[4*n:]
	if cap(e.dsecTBuf) < nsec {
		e.dsecTBuf = make([][3]float64, nsec)
	}
	g.dsecT = e.dsecTBuf[:nsec]
	clear(g.dsecT)
	for b := g.B - 1; b >= 0; b-- {
		if b != g.B-1 {
			g.initTileState(tl, b)
			if err := g.tileForward(ctx, tl, b, false); err != nil {
				return err
			}
		}
		clear(g.lamT)
		clear(g.dxCarry)
		clear(g.gyNext)
		if err := g.tileBackward(ctx, tl, b); err != nil {
			return err
		}
	}
	if g.dxT != nil {
		g.stageRows(g.yT, g.dxT.Data, g.dxT.N, g.rowT, false, false)
	}
	// Back from tile order to sections and reaches, and on to the
	// parameters: reach by reach, on every worker.
	nw := min(max(1, len(e.parts)), n)
	var wg sync.WaitGroup
	for w := range nw {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				p := tl.pos[i]
				for kk := range int(tl.secT[p+1] - tl.secT[p]) {
					ds, dt := &g.dsec[int(e.secStart[i])+kk], g.dsecT[int(tl.secT[p])+kk]
					ds[0] += dt[0]
					ds[1] += dt[1]
					ds[2] += dt[2]
				}
				// Its own q0, and q0 as an inflow of its downstream reach.
				d := g.dq0T[p]
				if dn := e.net.down[i]; dn >= 0 {
					d += g.dq0UpT[tl.pos[dn]]
				}
				g.dq0[i] += d
			}
			g.finishParamsOf(lo, hi)
		}(w*n/nw, (w+1)*n/nw)
	}
	wg.Wait()
	return nil
}
