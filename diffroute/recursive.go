package diffroute

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"weak"
)

// RecursiveRouter routes with the exact recursive method: reaches in
// topological order, each running its recursive filter (or causal
// convolution) over a block of sub-steps and adding its outflow series into
// its downstream reach's inflow buffer. Work is O(N·T·f) for IRFs with a
// recursive form. State carries across calls to Route, so routing a series in
// consecutive time chunks gives the same numbers as routing it whole.
//
// A RecursiveRouter is not safe for concurrent use; it uses Options.Workers
// goroutines inside each call.
type RecursiveRouter struct {
	net  *Network
	opts Options
	f    int

	secStart []int32 // sections of reach i: secs[secStart[i]:secStart[i+1]]; none => taps
	secs     []Section
	conv     []convTaps // convolution IRFs (taps nil for recursive reaches)
	hasFIR   bool

	tail      float64 // largest last-tap-to-peak ratio of a convolution reach
	tailReach int32   // the reach with it

	parts [][]int32 // per worker: reaches in post-order (whole subtrees)
	trunk []int32   // reaches routed after the parts, upstream first
	order []int32   // all reaches, upstream first (for batch-parallel runs; built on first use)

	grad *gradEngine // the adjoint, prepared on first use
	// irf holds, weakly, every convolution reach's taps over the whole
	// window as the constructor evaluated them: calibration builds a
	// router for every gradient, and the adjoint, built right after, takes
	// them instead of evaluating every reach's IRF again.
	irf weak.Pointer[irfTaps]

	st      *recState
	spare   *recState // the state Reset dropped, reused by the next initState
	stopped error     // a cancelled call left st part-way through a block
	workers []*recWorker
}

// recState is the routing state of every reach for each batch member.
type recState struct {
	b     int
	ys    []float64   // [b][len(secs)] last output of each section
	uPrev []float64   // [b][N] upstream inflow of the last sub-step
	lPrev []float32   // [b][N] lateral inflow of the last sub-step (a runoff value)
	yLast []float64   // [b][N] last outflow; nil without convolution reaches (a section reach's is its last section's output)
	hist  [][]float64 // [b*N+i] convolution reaches: the last conv[i].need inflows
	steps int64       // runoff steps routed (State)
}

// NewRecursiveRouter prepares the recursive method for a network (opts.Method
// is ignored). Preparing takes O(N) and does not block; ctx is checked once.
func NewRecursiveRouter(ctx context.Context, net *Network, opts Options) (*RecursiveRouter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.Method != Recursive {
		o.Method = Recursive
	}
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return nil, err
	}
	n := net.Len()
	if o.InitialQ != nil && len(o.InitialQ) != n {
		return nil, fmt.Errorf("diffroute: initial discharge has %d values for %d reaches", len(o.InitialQ), n)
	}
	for i, q := range o.InitialQ {
		// Discharge is float32: larger values would come out as Inf and NaN.
		if math.IsNaN(q) || math.Abs(q) > math.MaxFloat32 {
			return nil, fmt.Errorf("diffroute: initial discharge of reach %d is %v, not a finite float32", net.ID(i), q)
		}
	}
	full, err := fullParams(irf, o.Params, net)
	if err != nil {
		return nil, err
	}
	r := &RecursiveRouter{net: net, opts: o, f: o.SubSteps, secStart: make([]int32, n+1)}
	if secs, c := uniformSections(irf, full, n, 1/float64(o.SubSteps), o.Workers); secs != nil {
		// As many sections for every reach (Muskingum's one): built on
		// every core, straight into place.
		r.secs = secs
		for i := range r.secStart {
			r.secStart[i] = int32(i * c)
		}
		r.partitionFor(net)
		return r, nil
	}
	tab, err := newIRFTable(irf, full, net, o.SubSteps, o.MaxDelay*o.SubSteps)
	if err != nil {
		return nil, err
	}
	// No allocation per reach: sections are appended to one slice, and the
	// convolution table exists only when some reach needs it.
	r.secs = make([]Section, 0, n)
	w := o.MaxDelay * o.SubSteps
	var window *irfTaps // every convolution reach's whole window of taps
	for i := 0; i < n; i++ {
		if irf.Sections != nil {
			s, err := irf.Sections(r.secs, tab.params[i], tab.r)
			if err != nil {
				return nil, reachIRFError(net.ID(i), irf.Name, err)
			}
			if s != nil {
				r.secs = s
				r.secStart[i+1] = int32(len(r.secs))
				continue
			}
		}
		if window == nil {
			window = &irfTaps{h: make([]float64, n*w), w: w}
		}
		ri := reachIRF{taps: window.row(i)}
		if err := tab.impulse(ri.taps, i, net); err != nil {
			return nil, err
		}
		r.secStart[i+1] = int32(len(r.secs))
		{
			// Keep only the taps that matter: pure lag has two, and a smooth
			// kernel such as Hayami's is negligible (below 1e-12 of its peak,
			// far under float32 resolution even summed over the window) over
			// most of a long window.
			peak := 0.0
			for _, c := range ri.taps {
				peak = max(peak, math.Abs(c))
			}
			// A response that has not decayed by the window's end loses
			// what lies beyond (or, normalised over the window like
			// Hayami's, is distorted): WindowTail reports the worst.
			if l := len(ri.taps); l > 0 && peak > 0 {
				if tr := math.Abs(ri.taps[l-1]) / peak; tr > r.tail {
					r.tail, r.tailReach = tr, int32(i)
				}
			}
			kept := 0
			for _, c := range ri.taps {
				if c != 0 && math.Abs(c) >= 1e-12*peak {
					kept++
				}
			}
			var taps []float64
			var idx []int32
			if kept > 0 {
				taps, idx = make([]float64, 0, kept), make([]int32, 0, kept)
			}
			for k, c := range ri.taps {
				if c != 0 && math.Abs(c) >= 1e-12*peak {
					idx = append(idx, int32(k))
					taps = append(taps, c)
				}
			}
			if taps == nil {
				taps = []float64{} // an all-zero IRF still is a convolution reach
			}
			if r.conv == nil {
				r.conv = make([]convTaps, n)
			}
			r.conv[i] = newConvTaps(taps, idx)
			r.hasFIR = true
		}
	}
	r.partitionFor(net)
	if window != nil {
		r.irf = weak.Make(window)
	}
	return r, nil
}

// irfTaps is every reach's fine-grid impulse response over a window of w
// taps (rows of reaches without one are unused).
type irfTaps struct {
	h []float64
	w int
}

// row returns reach i's taps.
func (t *irfTaps) row(i int) []float64 { return t.h[i*t.w : (i+1)*t.w : (i+1)*t.w] }

// partitionFor splits net's reaches among the workers.
func (r *RecursiveRouter) partitionFor(net *Network) {
	n := net.Len()
	if p := net.plan; p != nil && p.workers == r.opts.Workers {
		// In routing order already (InRoutingOrder): the parts are ranges.
		seq := make([]int32, n)
		for i := range seq {
			seq[i] = int32(i)
		}
		lo := 0
		for _, end := range p.ends {
			r.parts = append(r.parts, seq[lo:end:end])
			lo = end
		}
		r.trunk = seq[lo:]
	} else {
		r.parts, r.trunk = partition(net, r.opts.Workers)
	}
}

// uniformSections returns the sections of every reach, c of them each,
// computed in parallel, when the IRF gives every reach as many sections
// (full: its checked parameters; rs: the sub-step in runoff steps);
// otherwise (some reach convolves, has another count or bad parameters,
// which the reach-by-reach path reports) nil.
func uniformSections(irf IRF, full Params, n int, rs float64, workers int) (secs []Section, c int) {
	if irf.Sections == nil || n == 0 {
		return nil, 0
	}
	cols := make([][]float64, len(irf.Params))
	for j, name := range irf.Params {
		cols[j] = full[name]
	}
	row := func(dst []float64, i int) []float64 {
		for j, col := range cols {
			dst[j] = col[i]
		}
		return dst
	}
	s0, err := irf.Sections(nil, row(make([]float64, len(cols)), 0), rs)
	if err != nil || len(s0) == 0 {
		return nil, 0
	}
	c = len(s0)
	secs = make([]Section, n*c)
	var irregular atomic.Bool
	const grain = 1 << 14
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < max(1, min(workers, (n+grain-1)/grain)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]float64, len(cols))
			for !irregular.Load() {
				lo := int(next.Add(grain)) - grain
				if lo >= n {
					return
				}
				for i := lo; i < min(n, lo+grain); i++ {
					dst := secs[i*c : i*c : (i+1)*c]
					s, err := irf.Sections(dst, row(p, i), rs)
					if err != nil || len(s) != c || &s[0] != &secs[i*c] {
						irregular.Store(true)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if irregular.Load() {
		return nil, 0
	}
	return secs, c
}

// Network returns the network the router was prepared for.
func (r *RecursiveRouter) Network() *Network { return r.net }

// WindowTail returns, over the reaches routed by convolution, the largest
// ratio of an IRF's last tap in the MaxDelay·f window to its peak, and that
// reach's id; (0, 0) when no reach's response is cut. A ratio well above zero
// means the response had not decayed when the window ended: for an IRF of
// unit mass, runoff beyond the window is lost (an exponential tail loses
// about that share), and an IRF normalised over its window (Hayami) comes
// out too early.
func (r *RecursiveRouter) WindowTail() (ratio float64, reach int64) {
	if r.tail == 0 {
		return 0, 0
	}
	return r.tail, r.net.ID(int(r.tailReach))
}

// Reset forgets the routing state: the next Route starts from the initial
// discharge again (in the same arrays, which Reset keeps).
func (r *RecursiveRouter) Reset() {
	if r.st != nil {
		r.spare = r.st
	}
	r.st, r.stopped = nil, nil
}

func (r *RecursiveRouter) initState(b int) {
	n := r.net.Len()
	// A state dropped by Reset lends its arrays: a benchmark or calibration
	// resetting before every run would otherwise allocate (and fault in)
	// every reach's history again each time.
	st := r.spare
	r.spare = nil
	if st == nil || st.b != b {
		st = &recState{b: b, ys: make([]float64, b*len(r.secs)), uPrev: make([]float64, b*n), lPrev: make([]float32, b*n)}
		if r.hasFIR {
			st.yLast = make([]float64, b*n)
			st.hist = r.historySlices(b)
		}
	} else {
		clear(st.uPrev)
		st.steps = 0
	}
	q0 := r.opts.InitialQ
	for bi := 0; bi < b; bi++ {
		for i := 0; i < n; i++ {
			q := 0.0
			if q0 != nil {
				q = q0[i] // steady state before the start: every section outputs q
			}
			for k := r.secStart[i]; k < r.secStart[i+1]; k++ {
				st.ys[bi*len(r.secs)+int(k)] = q
			}
			st.lPrev[bi*n+i] = 0
			if r.hasFIR {
				st.yLast[bi*n+i] = q
			}
			if r.hasFIR && r.conv[i].taps != nil {
				h := st.hist[bi*n+i]
				for k := range h {
					h[k] = q
				}
			}
		}
	}
	if q0 != nil {
		// Steady state before the start: each reach received its upstream
		// reaches' discharge (summed in index order, as Upstream lists them).
		for bi := 0; bi < b; bi++ {
			u := st.uPrev[bi*n : (bi+1)*n]
			for i, d := range r.net.down {
				if d >= 0 {
					u[d] += q0[i]
				}
			}
		}
	}
	r.st = st
}

// historySlices returns each convolution reach's inflow history for b batch
// members, carved from one allocation: only the inflows its taps reach (a
// pure lag's few of W−1), which is all a reach reads and all Route writes
// back per block.
func (r *RecursiveRouter) historySlices(b int) [][]float64 {
	n := r.net.Len()
	total := 0
	for i := 0; i < n; i++ {
		if r.conv[i].taps != nil {
			total += r.conv[i].need
		}
	}
	slab := make([]float64, b*total)
	hist := make([][]float64, b*n)
	off := 0
	for bi := 0; bi < b; bi++ {
		for i := 0; i < n; i++ {
			if c := r.conv[i]; c.taps != nil {
				hist[bi*n+i] = slab[off : off+c.need : off+c.need]
				off += c.need
			}
		}
	}
	return hist
}

// Route routes runoff (m³/s per reach and runoff step, aligned by reach id)
// and returns discharge for every reach of the network, in network order,
// continuing from the state left by the previous call.
func (r *RecursiveRouter) Route(ctx context.Context, runoff *DataTensor) (*DataTensor, error) {
	return r.route(ctx, nil, runoff, nil, nil)
}

// RouteTo is Route writing into dst, which must have runoff's batch and time
// dims and the network's reach ids in network order (as Route returns them):
// routing consecutive time chunks into one reused tensor allocates nothing
// per chunk but a few bytes of bookkeeping.
func (r *RecursiveRouter) RouteTo(ctx context.Context, dst, runoff *DataTensor) error {
	if err := checkDst(dst, runoff, r.net); err != nil {
		return err
	}
	_, err := r.route(ctx, dst, runoff, nil, nil)
	return err
}

// FineFlows carries upstream inflow into, or outflow out of, some reaches on
// the fine grid: Series[i] holds B×T·f values (batch-major) for reach index i.
// Staged routing uses them for transfers between clusters.
type FineFlows map[int32][]float32

// RouteFine is Route with transfers: in adds an upstream inflow series to
// reaches (as if another reach drained into them), and out, when not nil,
// receives the fine outflow series of the listed outlet reaches (each entry
// must be allocated with B×T·f values; it is overwritten).
func (r *RecursiveRouter) RouteFine(ctx context.Context, runoff *DataTensor, in, out FineFlows) (*DataTensor, error) {
	return r.route(ctx, nil, runoff, in, out)
}

// route routes into y (allocated when nil).
func (r *RecursiveRouter) route(ctx context.Context, y, runoff *DataTensor, in, fineOut FineFlows) (*DataTensor, error) {
	rows, err := alignRunoff(runoff, r.net)
	if err != nil {
		return nil, err
	}
	n := r.net.Len()
	fineLen := runoff.T * r.f
	for i, s := range in {
		if int(i) >= n || i < 0 {
			return nil, fmt.Errorf("diffroute: fine inflow for reach position %d, beyond %d reaches", i, n)
		}
		if len(s) != runoff.B*fineLen {
			return nil, fmt.Errorf("diffroute: fine inflow of reach %d has %d values, want %d", r.net.ID(int(i)), len(s), runoff.B*fineLen)
		}
	}
	for i, s := range fineOut {
		if int(i) >= n || i < 0 || r.net.Down(int(i)) >= 0 {
			return nil, fmt.Errorf("diffroute: fine outflow requested for reach position %d, which is not an outlet", i)
		}
		if len(s) != runoff.B*fineLen {
			return nil, fmt.Errorf("diffroute: fine outflow buffer of reach %d has %d values, want %d", r.net.ID(int(i)), len(s), runoff.B*fineLen)
		}
	}
	if r.stopped != nil {
		return nil, fmt.Errorf("diffroute: an earlier call stopped part-way (%w); Reset before routing again", r.stopped)
	}
	if r.st == nil {
		r.initState(runoff.B)
	} else if r.st.b != runoff.B {
		return nil, fmt.Errorf("diffroute: runoff has %d batch members but the router's state has %d (Reset first)", runoff.B, r.st.b)
	}
	if y == nil {
		y = newDischarge(runoff, r.net)
	}
	if runoff.T == 0 || n == 0 {
		return y, nil
	}
	job := &recJob{r: r, x: runoff, y: y, rows: rows, in: in, out: fineOut}
	// Blocks of about 4096 sub-steps keep inflow buffers in cache.
	job.block = max(1, 4096/r.f)
	workers := r.opts.Workers
	// Workers live as long as the router; their buffers only for the call.
	if len(r.workers) != workers {
		r.workers = make([]*recWorker, workers)
		for w := range r.workers {
			r.workers[w] = &recWorker{}
		}
	}
	ws := r.workers
	for _, wk := range ws {
		wk.job = job
		if len(wk.slot) != n {
			wk.slot = make([]int32, n)
			for k := range wk.slot {
				wk.slot[k] = -1
			}
		}
	}
	defer func() {
		// Inflow buffers go back to the collector: a staged run keeps one
		// router per cluster, and idle pools would add up across clusters.
		for _, wk := range ws {
			wk.job = nil
			if len(wk.free) != len(wk.bufs) {
				wk.slot = nil // a cancelled run left buffers pending
			}
			wk.bufs, wk.free = nil, nil
		}
	}()
	for q0 := 0; q0 < runoff.T; q0 += job.block {
		if err := ctx.Err(); err != nil {
			if q0 > 0 { // earlier blocks of this call are routed, later ones not
				r.stopped = err
			}
			return nil, err
		}
		nq := min(job.block, runoff.T-q0)
		if runoff.B >= workers || len(r.parts) <= 1 {
			if r.order == nil {
				r.order = make([]int32, n)
				for p, v := range r.net.PreOrder() {
					r.order[n-1-p] = v
				}
			}
			// Batch members are independent: give each worker whole members.
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(wk *recWorker, w int) {
					defer wg.Done()
					for b := w; b < runoff.B; b += workers {
						for k, i := range r.order {
							if cancelled(ctx, k) {
								return
							}
							if k+prefetchAhead < len(r.order) {
								wk.warm(b, r.order[k+prefetchAhead], q0, nq)
							}
							wk.reach(b, i, q0, nq, nil)
						}
					}
				}(ws[w], w)
			}
			wg.Wait()
			if err := ctx.Err(); err != nil {
				r.stopped = err
				return nil, err
			}
			continue
		}
		for b := 0; b < runoff.B; b++ {
			var wg sync.WaitGroup
			for w, part := range r.parts {
				wg.Add(1)
				go func(wk *recWorker, part []int32) {
					defer wg.Done()
					for k, i := range part {
						if cancelled(ctx, k) {
							return
						}
						if k+prefetchAhead < len(part) {
							wk.warm(b, part[k+prefetchAhead], q0, nq)
						}
						wk.reach(b, i, q0, nq, nil)
					}
				}(ws[w%workers], part)
			}
			wg.Wait()
			if err := ctx.Err(); err != nil {
				r.stopped = err
				return nil, err
			}
			main := ws[0]
			for k, i := range r.trunk {
				if cancelled(ctx, k) {
					r.stopped = ctx.Err()
					return nil, r.stopped
				}
				if k+prefetchAhead < len(r.trunk) {
					main.warm(b, r.trunk[k+prefetchAhead], q0, nq)
				}
				main.reach(b, i, q0, nq, ws)
			}
		}
	}
	r.st.steps += int64(runoff.T)
	return y, nil
}

// cancelled polls ctx every 1,024 reaches of a worker's list (a block of
// every reach can take seconds on large networks; one poll costs nanoseconds).
func cancelled(ctx context.Context, k int) bool {
	return k%1024 == 1023 && ctx.Err() != nil
}

// recJob is one Route call shared by its workers.
type recJob struct {
	r     *RecursiveRouter
	x, y  *DataTensor
	rows  []int
	in    FineFlows
	out   FineFlows
	block int
}

// recWorker owns the inflow buffers of the reaches it is routing.
type recWorker struct {
	job   *recJob
	slot  []int32     // per reach: index in bufs of its pending inflow, or −1
	bufs  [][]float32 // inflow buffers, pending or free
	free  []int32     // indices of free buffers
	conv  []float64   // scratch for convolution reaches
	ffts  map[int]*convFFTWork
	mid   []float64 // scratch for the vector cascade
	step  []float32
	zeros []float32 // inflow of headwater reaches
	sink  []float32 // outflow of outlets nobody reads
}

// fftWork returns the worker's overlap-save transform of length m.
func (wk *recWorker) fftWork(m int) *convFFTWork {
	w := wk.ffts[m]
	if w == nil {
		if wk.ffts == nil {
			wk.ffts = map[int]*convFFTWork{}
		}
		w = newConvFFTWork(m)
		wk.ffts[m] = w
	}
	return w
}

// zeroBuf returns n zeros (read-only) and sinkBuf n values to scribble on.
func (wk *recWorker) zeroBuf(n int) []float32 {
	if len(wk.zeros) < n {
		wk.zeros = make([]float32, n)
	}
	return wk.zeros[:n]
}

func (wk *recWorker) sinkBuf(n int) []float32 {
	if len(wk.sink) < n {
		wk.sink = make([]float32, n)
	}
	return wk.sink[:n]
}

// pend makes a buffer of n values (not cleared) the pending inflow of reach
// d and returns it.
func (wk *recWorker) pend(d int32, n int) []float32 {
	var s int32
	if k := len(wk.free); k > 0 {
		s = wk.free[k-1]
		wk.free = wk.free[:k-1]
		if cap(wk.bufs[s]) < n {
			wk.bufs[s] = make([]float32, n)
		}
		wk.bufs[s] = wk.bufs[s][:n]
	} else {
		s = int32(len(wk.bufs))
		wk.bufs = append(wk.bufs, make([]float32, n))
	}
	wk.slot[d] = s
	return wk.bufs[s]
}

// pending returns the pending inflow buffer of reach d, or nil.
func (wk *recWorker) pending(d int32) []float32 {
	if s := wk.slot[d]; s >= 0 {
		return wk.bufs[s]
	}
	return nil
}

// release frees the pending inflow buffer of reach d.
func (wk *recWorker) release(d int32) {
	if s := wk.slot[d]; s >= 0 {
		wk.free = append(wk.free, s)
		wk.slot[d] = -1
	}
}

// take returns the inflow buffer of reach i (nil if nothing has drained into
// it yet), merging in the buffers other workers hold for it; the caller
// releases it from wk once routed.
func (wk *recWorker) take(i int32, others []*recWorker) []float32 {
	buf := wk.pending(i)
	for _, o := range others {
		if o == wk {
			continue
		}
		ob := o.pending(i)
		if ob == nil {
			continue
		}
		if buf == nil {
			// Adopt the other worker's buffer.
			buf = wk.pend(i, len(ob))
			copy(buf, ob)
		} else {
			for k, v := range ob {
				buf[k] += v
			}
		}
		o.release(i)
	}
	return buf
}

// prefetchAhead is how many reaches ahead of the one being routed warm asks
// the cache for: reaches come in topological order, so their runoff and
// discharge rows and state lie scattered through memory.
const prefetchAhead = 3

// warm asks the cache for what routing reach i of batch member b over steps
// [q0, q0+nq) will read and write, while earlier reaches are routed.
func (wk *recWorker) warm(b int, i int32, q0, nq int) {
	job := wk.job
	r := job.r
	k := b*r.net.Len() + int(i)
	prefetch32(job.x.Series(b, job.rows[i])[q0 : q0+nq])
	prefetch32(job.y.Series(b, int(i))[q0 : q0+nq])
	prefetch64(&r.st.uPrev[k])
	prefetch32(r.st.lPrev[k : k+1])
	if r.hasFIR {
		prefetch64(&r.st.yLast[k])
	}
	if s, e := r.secStart[i], r.secStart[i+1]; s < e {
		prefetch64(&r.st.ys[b*len(r.secs)+int(s)])
		// The coefficients too: 24 bytes a section, in network order.
		prefetch64(&r.secs[s].B0)
		prefetch64(&r.secs[e-1].A1)
	} else if r.hasFIR {
		c := &r.conv[i]
		if len(c.taps) > 0 {
			prefetch64(&c.taps[0])
		}
		if h := r.st.hist[k]; len(h) > 0 {
			prefetch64(&h[0])
		}
	}
}

// reach routes reach i of batch member b over runoff steps [q0, q0+nq).
func (wk *recWorker) reach(b int, i int32, q0, nq int, others []*recWorker) {
	job := wk.job
	r := job.r
	f := r.f
	n := r.net.Len()
	fl := nq * f
	inflow := wk.take(i, others)
	if extra, ok := job.in[i]; ok {
		base := b*job.x.T*f + q0*f
		if inflow == nil {
			inflow = wk.pend(i, fl)
			copy(inflow, extra[base:base+fl])
		} else {
			for k, v := range extra[base : base+fl] {
				inflow[k] += v
			}
		}
	}
	var dst []float32
	fresh := false // dst holds garbage: the first writer stores
	if d := r.net.down[i]; d >= 0 {
		dst = wk.pending(d)
		if dst == nil {
			dst = wk.pend(d, fl)
			fresh = true
		}
	} else if o, ok := job.out[i]; ok {
		base := b*job.x.T*f + q0*f
		dst = o[base : base+fl]
		fresh = true
	}
	lat := job.x.Series(b, job.rows[i])[q0 : q0+nq]
	out := job.y.Series(b, int(i))[q0 : q0+nq]
	st := r.st
	k := b*n + int(i)
	p := reachParams{f: f, rapid: r.opts.Lateral == LateralRAPID, start: r.opts.Average == AverageStart, sample: r.opts.Sampling == SampleLast}
	if r.hasFIR && r.conv[i].taps != nil {
		wk.convolve(p, r.conv[i], st.hist[k], &st.yLast[k], inflow, lat, dst, out, !fresh)
	} else {
		secs := r.secs[r.secStart[i]:r.secStart[i+1]]
		ys := st.ys[b*len(r.secs)+int(r.secStart[i]) : b*len(r.secs)+int(r.secStart[i+1])]
		in, sink := inflow, dst
		if in == nil {
			in = wk.zeroBuf(fl)
		}
		if sink == nil {
			sink = wk.sinkBuf(fl)
			fresh = true
		}
		// The lateral inflow is kept as the float32 runoff value it is.
		lp := float64(st.lPrev[k])
		if len(secs) == 1 {
			if runSectionVector(p, secs[0], &ys[0], &st.uPrev[k], &lp, in, lat, sink, out, !fresh) {
				secs = nil
			}
		} else if wk.runCascadeVector(p, secs, ys, &st.uPrev[k], &lp, in, lat, sink, out, !fresh) {
			secs = nil
		}
		if fresh && secs != nil {
			clear(sink)
		}
		switch len(secs) {
		case 0: // done by the vector kernel
		case 1:
			runSection(p, secs[0], &ys[0], &st.uPrev[k], &lp, in, lat, sink, out)
		case 2:
			runCascade2(p, secs, ys, &st.uPrev[k], &lp, in, lat, sink, out)
		case 3:
			runCascade3(p, secs, ys, &st.uPrev[k], &lp, in, lat, sink, out)
		default:
			runCascade(p, secs, ys, &st.uPrev[k], &lp, in, lat, sink, out)
		}
		st.lPrev[k] = float32(lp)
		if st.yLast != nil {
			st.yLast[k] = ys[len(ys)-1]
		}
	}
	if inflow != nil {
		wk.release(i)
	}
}

type reachParams struct {
	f                    int
	rapid, start, sample bool
}

// stepValue is the discharge reported for one runoff step from the sums of
// its f fine values taken at the start (accS) and end (accE) of each
// sub-step, and the last of each (prev, last).
func (p reachParams) stepValue(accS, accE, prev, last float64) float32 {
	switch {
	case p.sample && p.start:
		return float32(prev)
	case p.sample:
		return float32(last)
	case p.start:
		return float32(accS / float64(p.f))
	default:
		return float32(accE / float64(p.f))
	}
}

// runSection is the hot loop for one-section IRFs (Muskingum, linear
// storage): y[n] = B0·I[n] + B1·I[n−1] + A1·y[n−1] with I = upstream inflow +
// lateral runoff. Under the rapid rule I[n−1] carries the current step's
// runoff; under lti only the first sub-step of a step sees the previous one.
// inflow and dst always have len(lat)·f values (zeros and a sink when the
// reach has no upstream or no downstream), so the loop has no branches; the
// only dependency chain is y through one fused multiply-add.
func runSection(p reachParams, s Section, y, uPrev, lPrev *float64, inflow, lat, dst, out []float32) {
	f := p.f
	yv, up, lp := *y, *uPrev, *lPrev
	b0, b1, a1 := s.B0, s.B1, s.A1
	inflow = inflow[:len(lat)*f]
	dst = dst[:len(lat)*f]
	n := 0
	for q, l32 := range lat {
		l := float64(l32)
		lprev := lp
		if p.rapid {
			lprev = l
		}
		u := float64(inflow[n])
		prev := yv
		yv = math.FMA(a1, yv, b0*(u+l)+b1*(up+lprev))
		dst[n] += float32(yv)
		accS, accE := prev, yv
		up = u
		kq := (b0 + b1) * l
		ds := dst[n+1 : n+f]
		for j, v := range inflow[n+1 : n+f] {
			u := float64(v)
			prev = yv
			yv = math.FMA(a1, yv, b0*u+b1*up+kq)
			ds[j] += float32(yv)
			accS += prev
			accE += yv
			up = u
		}
		n += f
		out[q] = p.stepValue(accS, accE, prev, yv)
		lp = l
	}
	*y, *uPrev, *lPrev = yv, up, lp
}

// runSectionVector is runSection on the vector kernel where there is one
// (and the rule is not sample-at-start, which needs the second-to-last
// sub-step): the same recurrence evaluated four sub-steps at a time, equal to
// runSection's to float64 rounding. With add false it stores into dst
// instead of adding. It reports false, doing nothing, where it cannot run.
func runSectionVector(p reachParams, s Section, y, uPrev, lPrev *float64, inflow, lat, dst, out []float32, add bool) bool {
	if p.sample && p.start {
		return false
	}
	return sectionVector(s, p.f, p.rapid, add, stepWeights(p), y, uPrev, lPrev, inflow, lat, dst, out)
}

// stepWeights says how the vector kernels make a step's value from the sum
// of its outflows, its last outflow and the previous step's last: the sum
// of the values before each sub-step is the step's sum shifted by one
// sub-step.
func stepWeights(p reachParams) [3]float64 {
	inv := 1 / float64(p.f)
	switch {
	case p.sample:
		return [3]float64{0, 1, 0}
	case p.start:
		return [3]float64{inv, -inv, inv}
	default:
		return [3]float64{inv, 0, 0}
	}
}

// runCascadeVector is runCascade on the vector kernels (see
// runSectionVector): a Nash cascade (no section weighs the previous inflow)
// in one pass with the sections pipelined, others section after section
// through float64 scratch.
func (wk *recWorker) runCascadeVector(p reachParams, secs []Section, ys []float64, uPrev, lPrev *float64, inflow, lat, dst, out []float32, add bool) bool {
	if p.sample && p.start {
		return false
	}
	nq, fl := len(lat), len(lat)*p.f
	if m := max(2*fl, cascadeScratch(len(secs), p.f)); cap(wk.mid) < m {
		wk.mid = make([]float64, m)
	}
	if cap(wk.step) < nq {
		wk.step = make([]float32, nq)
	}
	return cascadeVector(secs, p.f, p.rapid, add, stepWeights(p), ys, uPrev, lPrev, inflow, lat, dst, out, wk.mid[:cap(wk.mid)], wk.step[:nq], wk.zeroBuf(nq))
}

// runCascade routes through several sections in series (Nash cascade); the
// lateral runoff enters the first. Like runSection, inflow and dst always
// have len(lat)·f values, so the loop has no branches. runCascade2 and
// runCascade3 are the same recurrences with the sections' state in
// registers.
func runCascade(p reachParams, secs []Section, ys []float64, uPrev, lPrev *float64, inflow, lat, dst, out []float32) {
	f := p.f
	up, lp := *uPrev, *lPrev
	inflow = inflow[:len(lat)*f]
	dst = dst[:len(lat)*f]
	ys = ys[:len(secs)]
	last := len(ys) - 1
	n := 0
	for q, l32 := range lat {
		l := float64(l32)
		lprev := lp
		if p.rapid {
			lprev = l
		}
		accS, accE, prev, x := 0.0, 0.0, 0.0, 0.0
		for j, v := range inflow[n : n+f] {
			u := float64(v)
			prev = ys[last]
			xp := up + lprev
			x = u + l
			for k, s := range secs {
				yk := s.B0*x + s.B1*xp + s.A1*ys[k]
				xp = ys[k]
				ys[k] = yk
				x = yk
			}
			dst[n+j] += float32(x)
			accS += prev
			accE += x
			up, lprev = u, l
		}
		n += f
		out[q] = p.stepValue(accS, accE, prev, x)
		lp = l
	}
	*uPrev, *lPrev = up, lp
}

func runCascade2(p reachParams, secs []Section, ys []float64, uPrev, lPrev *float64, inflow, lat, dst, out []float32) {
	f := p.f
	s0, s1 := secs[0], secs[1]
	ys = ys[:2]
	y0, y1 := ys[0], ys[1]
	up, lp := *uPrev, *lPrev
	inflow = inflow[:len(lat)*f]
	dst = dst[:len(lat)*f]
	n := 0
	for q, l32 := range lat {
		l := float64(l32)
		lprev := lp
		if p.rapid {
			lprev = l
		}
		accS, accE, prev := 0.0, 0.0, 0.0
		ds := dst[n : n+f]
		for j, v := range inflow[n : n+f] {
			u := float64(v)
			prev = y1
			n0 := s0.B0*(u+l) + s0.B1*(up+lprev) + s0.A1*y0
			n1 := s1.B0*n0 + s1.B1*y0 + s1.A1*y1
			y0, y1 = n0, n1
			ds[j] += float32(y1)
			accS += prev
			accE += y1
			up, lprev = u, l
		}
		n += f
		out[q] = p.stepValue(accS, accE, prev, y1)
		lp = l
	}
	ys[0], ys[1] = y0, y1
	*uPrev, *lPrev = up, lp
}

func runCascade3(p reachParams, secs []Section, ys []float64, uPrev, lPrev *float64, inflow, lat, dst, out []float32) {
	f := p.f
	s0, s1, s2 := secs[0], secs[1], secs[2]
	ys = ys[:3]
	y0, y1, y2 := ys[0], ys[1], ys[2]
	up, lp := *uPrev, *lPrev
	inflow = inflow[:len(lat)*f]
	dst = dst[:len(lat)*f]
	n := 0
	for q, l32 := range lat {
		l := float64(l32)
		lprev := lp
		if p.rapid {
			lprev = l
		}
		accS, accE, prev := 0.0, 0.0, 0.0
		ds := dst[n : n+f]
		for j, v := range inflow[n : n+f] {
			u := float64(v)
			prev = y2
			n0 := s0.B0*(u+l) + s0.B1*(up+lprev) + s0.A1*y0
			n1 := s1.B0*n0 + s1.B1*y0 + s1.A1*y1
			n2 := s2.B0*n1 + s2.B1*y1 + s2.A1*y2
			y0, y1, y2 = n0, n1, n2
			ds[j] += float32(y2)
			accS += prev
			accE += y2
			up, lprev = u, l
		}
		n += f
		out[q] = p.stepValue(accS, accE, prev, y2)
		lp = l
	}
	ys[0], ys[1], ys[2] = y0, y1, y2
	*uPrev, *lPrev = up, lp
}

// convolve routes a reach whose IRF has no recursive form by direct causal
// convolution with its fine-grid taps, keeping the last W−1 inflows as state:
// the chunk's fine outflows are computed at once (convFine: a gather-free
// multi-accumulator kernel for contiguous taps such as Hayami's, a gather
// over the few non-zero taps otherwise, such as pure lag's), then aggregated
// to runoff steps.
//
// With add false it stores the fine outflows into dst instead of adding.
func (wk *recWorker) convolve(p reachParams, c convTaps, hist []float64, yLast *float64, inflow, lat, dst, out []float32, add bool) {
	f := p.f
	h := len(hist)
	fl := len(lat) * f
	if cap(wk.conv) < h+2*fl {
		wk.conv = make([]float64, h+2*fl)
	}
	ext := wk.conv[:h+fl]
	yf := wk.conv[h+fl : h+2*fl]
	// Only the history the taps reach is read (a pure lag's few values out
	// of W−1: the state of a large network lies far out of cache).
	need := h
	switch {
	case c.dense:
		need = c.hi
	case len(c.idx) > 0:
		need = int(c.idx[len(c.idx)-1])
	}
	copy(ext[h-need:h], hist[h-need:])
	in := ext[h:]
	if inflow == nil {
		inflow = wk.zeroBuf(fl) // u + l with u = 0: −0 runoff gives +0
	}
	if !convLoadVector(in, inflow, lat, f) {
		inflow = inflow[:fl]
		for q, l32 := range lat {
			l := float64(l32)
			for j, u := range inflow[q*f : q*f+f] {
				in[q*f+j] = float64(u) + l
			}
		}
	}
	convFine(c, ext, h, yf, wk.fftWork)
	var d []float32
	if dst != nil {
		d = dst[:fl]
	}
	if convStepVector(p, yf, d, out[:len(lat)], add, yLast) {
		keepHistory(hist, ext[h:])
		return
	}
	switch {
	case dst == nil:
	case convStoreVector(dst[:fl], yf, add):
	case add:
		addFine(dst[:fl], yf)
	default:
		for n, v := range yf {
			dst[n] = float32(v)
		}
	}
	yv := *yLast
	for q := range lat {
		seg := yf[q*f : q*f+f]
		last := seg[f-1]
		prev := yv
		if f > 1 {
			prev = seg[f-2]
		}
		if p.sample {
			out[q] = p.stepValue(0, 0, prev, last)
		} else {
			// The sums over the sub-steps' start and end values share all
			// but one term.
			s := sumFine(seg[:f-1])
			out[q] = p.stepValue(yv+s, s+last, prev, last)
		}
		yv = last
	}
	*yLast = yv
	keepHistory(hist, ext[h:])
}

// keepHistory shifts the chunk's inflows in into hist, the last len(hist)
// inflows.
func keepHistory(hist, in []float64) {
	h, fl := len(hist), len(in)
	if fl >= h {
		copy(hist, in[fl-h:])
		return
	}
	copy(hist, hist[fl:])
	copy(hist[h-fl:], in)
}

// addFine adds the fine outflows y into the downstream inflow dst.
func addFine(dst []float32, y []float64) {
	y = y[:len(dst)]
	n := 0
	for ; n+4 <= len(dst); n += 4 {
		d, v := dst[n:n+4:n+4], y[n:n+4:n+4]
		d[0] += float32(v[0])
		d[1] += float32(v[1])
		d[2] += float32(v[2])
		d[3] += float32(v[3])
	}
	for ; n < len(dst); n++ {
		dst[n] += float32(y[n])
	}
}

// sumFine is Σ v in four interleaved partial sums (the order differs from a
// plain loop only by float64 rounding).
func sumFine(v []float64) float64 {
	var s0, s1, s2, s3 float64
	n := 0
	for ; n+4 <= len(v); n += 4 {
		w := v[n : n+4 : n+4]
		s0 += w[0]
		s1 += w[1]
		s2 += w[2]
		s3 += w[3]
	}
	for ; n < len(v); n++ {
		s0 += v[n]
	}
	return (s0 + s1) + (s2 + s3)
}

// RoutingOrder lists the reaches of net in the order the recursive router
// visits them with the given number of workers (0: GOMAXPROCS): each
// worker's whole subtrees, upstream first, then the trunk. A network
// renumbered in this order (net.Reorder), with runoff rows in the same
// order, is routed reading runoff, discharge and state in memory order,
// which is much faster on large networks and short series; results are
// the same to float32 rounding (tributaries may be summed in another
// order).
func RoutingOrder(net *Network, workers int) []int32 {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	parts, trunk := partition(net, workers)
	order := make([]int32, 0, net.Len())
	for _, p := range parts {
		order = append(order, p...)
	}
	return append(order, trunk...)
}

// partition splits a network into whole subtrees for parallel workers and a
// trunk routed afterwards: the largest subtree is split (its root joins the
// trunk, its upstream subtrees become candidates) until every candidate holds
// at most N/(2·workers) reaches; candidates are then packed largest first
// into the least loaded worker. Each part lists its reaches in post-order, so
// only a few inflow buffers are live at once.
func partition(net *Network, workers int) (parts [][]int32, trunk []int32) {
	n := net.Len()
	// post lists root's subtree in post-order with upstream reaches in
	// increasing position: a network renumbered in this order (Reorder)
	// lists it as 0, 1, 2, …, so its reaches are visited in memory order.
	// The whole network's post-order comes from the pre-order without
	// another traversal: v's subtree starts in post-order where it starts
	// in pre-order less v's downstream reaches (which pre-order lists before
	// it, post-order after it), so v itself is at
	// Pre(v) + Size(v) - Depth(v). Each subtree is a range of it.
	t := net.t()
	postAll := make([]int32, n)
	for v := range n {
		postAll[t.pre[v]+t.size[v]-t.depth[v]] = int32(v)
	}
	post := func(root int32) []int32 {
		end := int(t.pre[root] + t.size[root] - t.depth[root] + 1)
		return postAll[end-int(t.size[root]) : end] // read only
	}
	if workers <= 1 || n < 1024 {
		all := make([]int32, 0, n)
		for _, o := range net.Outlets() {
			all = append(all, post(int32(o))...)
		}
		return [][]int32{all}, nil
	}
	limit := max(1, n/(2*workers))
	var cands []int32
	for _, o := range net.Outlets() {
		cands = append(cands, int32(o))
	}
	for {
		// Linear scan for the largest candidate is fine: splits are few.
		best := -1
		for k, c := range cands {
			if net.Size(int(c)) > limit && (best < 0 || net.Size(int(c)) > net.Size(int(cands[best]))) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		c := cands[best]
		cands[best] = cands[len(cands)-1]
		cands = cands[:len(cands)-1]
		trunk = append(trunk, c)
		cands = append(cands, net.Upstream(int(c))...)
	}
	slices.SortFunc(cands, func(a, b int32) int { return cmp.Compare(net.Size(int(b)), net.Size(int(a))) })
	load := make([]int, workers)
	parts = make([][]int32, workers)
	for _, c := range cands {
		w := 0
		for k := range load {
			if load[k] < load[w] {
				w = k
			}
		}
		load[w] += net.Size(int(c))
		parts[w] = append(parts[w], post(c)...)
	}
	// Upstream first: descending pre-order position.
	slices.SortFunc(trunk, func(a, b int32) int { return cmp.Compare(net.Pre(int(b)), net.Pre(int(a))) })
	return parts, trunk
}
