package pipeline

import (
	"cmp"
	"context"
	"fmt"

	"math"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/progress"
)

var sprintf = fmt.Sprintf

// run carries one Run's resolved inputs.
type run struct {
	cfg  Config
	log  func(format string, a ...any)
	prog progress.Reporter
}

// Inputs are a run's opened inputs: the network, the routing options
// completed for it (sub-steps, IRF parameters, initial discharge) and the
// runoff, ready to be read in time ranges in m³/s.
type Inputs struct {
	RAPID         *data.RAPID
	Options       diffroute.Options
	Step, SubStep time.Duration
	Path          string   // where runoff is read from
	RunoffUnits   string   // the runoff file's units: "m3" (volume per step) or "m3/s" (Read returns m³/s)
	IDs           []int64  // reaches of the runoff file
	Times         []string // runoff time labels
	src           *runoffSource
}

// Open checks cfg, reads the RAPID folder, opens the runoff and completes
// the routing options; nothing is routed. Close releases the runoff.
func Open(cfg Config) (*Inputs, error) {
	r := &run{cfg: cfg, prog: progress.Quiet, log: func(string, ...any) {}}
	return open(&cfg, r)
}

// Steps is the number of runoff steps.
func (in *Inputs) Steps() int { return len(in.src.times) }

// Read returns runoff steps [t0, t0+count) of every reach of the file, in
// m³/s, checked finite.
func (in *Inputs) Read(t0, count int) (*diffroute.DataTensor, error) { return in.src.read(t0, count) }

// Close releases the runoff file.
func (in *Inputs) Close() { in.src.close() }

func open(cfg *Config, r *run) (*Inputs, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	rapid, err := data.ReadRAPID(cfg.RAPID)
	if err != nil {
		return nil, err
	}
	for _, w := range rapid.Warnings {
		r.warn("%s", w)
	}
	src, err := openRunoff(cfg, rapid)
	if err != nil {
		return nil, err
	}
	in := &Inputs{RAPID: rapid, Path: src.path, IDs: src.ids, Times: src.times, RunoffUnits: src.units, src: src}
	if err := in.complete(cfg, r); err != nil {
		src.close()
		return nil, err
	}
	return in, nil
}

func (in *Inputs) complete(cfg *Config, r *run) error {
	rapid, src := in.RAPID, in.src
	// Selected outputs need only the reaches they route: checked then. A
	// file in rapid_connect.csv order holds every reach of the basin.
	if cfg.Outputs == "" && !slices.Equal(src.ids, rapid.ConnectIDs) {
		if err := checkCoverage(src.path, src.ids, rapid.Network); err != nil {
			return err
		}
	}
	step := cfg.Step
	if step == 0 {
		step = src.step
	} else if err := stepMatchesTimes(src, step); err != nil {
		return err
	}
	if step <= 0 {
		return fmt.Errorf("%s: cannot tell the runoff step from the file's times; give --step SECONDS", src.path)
	}
	src.rateStep = step
	sub := cfg.SubStep
	if sub == 0 {
		sub = step
	}
	ratio := float64(step) / float64(sub)
	f := int(math.Round(ratio))
	if f < 1 || math.Abs(ratio-float64(f)) > 1e-9*ratio {
		return subStepError(step, sub, cfg.Step != 0)
	}
	opts, err := r.options(rapid, step, f)
	if err != nil {
		return err
	}
	if cfg.Qinit != "" {
		if opts.InitialQ, err = data.ReadQinit(cfg.Qinit, rapid); err != nil {
			return err
		}
	}
	if len(src.times) == 0 {
		return fmt.Errorf("%s: no time steps to route", src.path)
	}
	in.Options, in.Step, in.SubStep = opts, step, sub
	return nil
}

// Run reads the inputs of cfg, routes them and writes the discharge to
// cfg.Out. Errors name the file, line, reach or flag at fault; a run that
// fails or is cancelled (ctx) leaves no output file.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	r := &run{cfg: cfg, prog: progress.OrQuiet(cfg.Progress)}
	r.log = func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format, a...)
		}
	}
	if cfg.Out != "" {
		// A format or compression level the output cannot take is
		// refused now, not after routing.
		if err := data.CheckSeriesOptions(cfg.Out, &data.SeriesOptions{Format: cfg.OutFormat, Compress: cfg.Compress}); err != nil {
			return nil, configErrorf("route: --out %s", err)
		}
	}
	in, err := open(&cfg, r)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	rapid, src, opts, step, T := in.RAPID, in.src, in.Options, in.Step, in.Steps()
	f, sub := opts.SubSteps, in.SubStep
	net := rapid.Network
	rs := newRestart(&cfg)
	members := max(1, src.members)
	if rs.qfinal != "" && members > 1 {
		return nil, configErrorf("route: --qfinal holds one member (RAPID's Qfinal), the runoff has %d: drop --qfinal or route the members one by one", members)
	}
	if rs.qfinal != "" && opts.Method == diffroute.Kernel {
		// Refused before routing, not after a whole run.
		return nil, configErrorf("route: --qfinal needs the recursive method: the kernel method's state is its runoff history, not a discharge (continue a kernel run with --state-out and --state-in, or route with --method recursive)")
	}
	state, skip, err := rs.load(net, opts, src.times, step)
	if err != nil {
		return nil, err
	}
	if state != nil && state.B != members {
		return nil, fmt.Errorf("--state-in %s: the state holds %d members, the runoff %s has %d", rs.in, state.B, src.path, members)
	}
	if skip > 0 {
		r.log("continuing from %s (state at %s): skipping the first %d runoff steps\n", rs.in, state.Time, skip)
		src = src.from(skip)
		T = len(src.times)
	}
	res := &Result{RAPID: rapid, Step: step}
	// Selected outputs under memory management: route their upstream
	// closure as the network, with every strategy, and keep their rows.
	outputs, keep := cfg.Outputs, []int64(nil)
	if outputs != "" && (cfg.TimeChunk > 0 || cfg.MaxNodes > 0 || cfg.MaxPaths > 0 || cfg.Budget > 0) {
		ids, err := data.ReadIDList(outputs, net)
		if err != nil {
			return nil, err
		}
		sel, err := diffroute.Select(net, opts, ids)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", outputs, err)
		}
		if err := checkCoverage(src.path, src.ids, sel.Net); err != nil {
			return nil, err
		}
		r.log("--outputs: routing the %d reaches that drain into the %d listed\n", sel.Net.Len(), len(ids))
		net, opts, outputs, keep = sel.Net, sel.Opts, "", ids
	}
	budget := cfg.Budget
	if budget == 0 && cfg.TimeChunk == 0 && cfg.MaxNodes == 0 && cfg.MaxPaths == 0 && outputs == "" {
		// Runoff and discharge alone would take more than half the free
		// memory: plan for that half rather than run out of memory.
		whole := 2 * int64(members) * int64(net.Len()) * int64(T) * 4
		if avail := MemAvailable(); avail > 0 && whole > avail/2 {
			budget = avail / 2
			r.log("runoff and discharge need %s, more than half the available memory: planning for %s (set --mem-budget to choose)\n",
				humanize.IBytes(uint64(whole)), humanize.IBytes(uint64(budget)))
		}
	}
	cl, chunk := (*diffroute.Clusters)(nil), cfg.TimeChunk
	switch {
	case budget > 0:
		if os.Getenv("GOMEMLIMIT") == "" {
			// Make the collector work harder near the budget rather than let
			// garbage push the process over it.
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(budget * 8 / 10))
		}
		var plan *diffroute.MemoryPlan
		if cfg.WholeProcess && cfg.Budget > 0 {
			// The network is read, the runoff not yet.
			plan, err = diffroute.PlanIn(net, T, members, budget, opts, ProcessMemory())
		} else {
			plan, err = diffroute.Plan(net, T, members, budget, opts)
		}
		if err != nil {
			return nil, budgetError(cfg.Budget, budget, err)
		}
		r.log("%s\n", plan)
		res.Plan, opts.Method = plan, plan.Method
		if plan.Staged {
			cl = plan.Clusters
		}
		if plan.Streaming && chunk == 0 {
			chunk = streamChunk(plan, net, members, budget)
			bufs := int64(members) * int64(net.Len()) * 4 * 4 * int64(chunk)
			r.log("streaming runoff and discharge in time chunks of %d steps (%s for chunk buffers); predicted peak %s\n",
				chunk, humanize.IBytes(uint64(bufs)), humanize.IBytes(uint64(plan.Predicted+bufs*7/4)))
		}
	case cfg.MaxNodes > 0 || cfg.MaxPaths > 0:
		if cl, err = diffroute.Schedule(net, cfg.MaxPaths, cfg.MaxNodes); err != nil {
			return nil, err
		}
	}
	if cl != nil {
		r.log("%s\n", cl)
	}
	dev := device{warn: r.warn}
	if err := dev.open(cfg.Device, cfg.GPU, &opts); err != nil {
		return nil, err
	}
	defer dev.close()
	if dev.dev != nil && outputs != "" {
		return nil, configErrorf("route: --outputs routes on the CPU; drop --device cuda")
	}
	if opts.Method == "" {
		opts.Method = diffroute.Recursive
		if opts.Compat != diffroute.CompatNone || opts.ExcludeSelf {
			opts.Method = diffroute.Kernel
		}
	}
	r.log("%s\nrunoff: %d steps of %v, routed on %d sub-steps of %v (%s, %s method)\n", net, T, step, f, sub, irfName(opts), opts.Method)
	t0 := time.Now()
	var runoff, q *diffroute.DataTensor
	var order []int32 // q's rows are network reaches order[k] (nil: network order)
	switch {
	case outputs != "":
		if runoff, q, net, err = routeSelected(ctx, outputs, src, net, opts, cfg.InPlace, &dev); err != nil {
			return nil, err
		}
	case members > 1 && chunk == 0 && cl == nil && keep == nil && !rs.active():
		so, err := cfg.seriesOptions()
		if err != nil {
			return nil, err
		}
		if cfg.Out != "" {
			if err := os.MkdirAll(dirOf(cfg.Out), 0o755); err != nil {
				return nil, err
			}
		}
		if q, err = routeMembers(ctx, src, net, opts, &dev, cfg.Out, so, r.prog); err != nil {
			return nil, err
		}
		if cfg.Out != "" {
			q = nil // written member by member
		}
	case chunk > 0:
		if cfg.Out == "" {
			return nil, configErrorf("route: time-chunked routing streams discharge to a file; give --out")
		}
		if cl == nil {
			if cl, err = diffroute.Schedule(net, 0, 0); err != nil {
				return nil, err
			}
		}
		if err := os.MkdirAll(dirOf(cfg.Out), 0o755); err != nil {
			return nil, err
		}
		so, err := cfg.seriesOptions()
		if err != nil {
			return nil, err
		}
		checkWindowOf(r.warn, net, opts)
		if err := streamRoute(ctx, src, net, cl, opts, &dev, chunk, cfg.Out, so, r.prog, &streamState{rs: rs, in: state, cfg: rapid, step: step, keep: keep}); err != nil {
			return nil, err
		}
		res.TimeChunk = chunk
	case net == rapid.Network && inOrder(cfg, src, net, cl, opts, &dev, rs, keep):
		// Written to a file and nothing else wanted: route in the router's
		// own order, in place (see routeInOrder).
		if c := overlapChunk(net.Len(), T, f); c > 0 && data.StreamsQout(cfg.Out, &data.SeriesOptions{Format: cfg.OutFormat}) {
			// Read, route and write overlapped, a time chunk at a time.
			r.log("routing in the router's own order, in place, reading, routing and writing chunks of %d steps at once\n", c)
			so, err := cfg.seriesOptions()
			if err != nil {
				return nil, err
			}
			if err := routeOverlapped(ctx, src, rapid, opts, c, cfg.Out, so, r.warn); err != nil {
				return nil, err
			}
			res.TimeChunk = c
			break
		}
		r.log("routing in the router's own order, in place\n")
		if q, order, err = routeInOrder(ctx, src, rapid, opts, T, r.warn); err != nil {
			return nil, err
		}
	default:
		if runoff, err = src.read(0, T); err != nil {
			return nil, err
		}
		if cl != nil { // unstaged routers are checked as they are built
			checkWindowOf(r.warn, net, opts)
		}
		if q, err = routeWhole(ctx, runoff, net, cl, opts, &dev, r.prog, rs, state, rapid, step); err != nil {
			return nil, err
		}
	}
	if q != nil && keep != nil {
		if q, err = q.SelectIDs(keep); err != nil {
			return nil, err
		}
	}
	res.Routing = time.Since(t0)
	dev.warnStaged(opts)
	if q != nil && cfg.Out != "" {
		so, err := cfg.seriesOptions()
		if err != nil {
			return nil, err
		}
		if order != nil {
			// The file lists reaches in network order: reach j is the
			// routed row where order puts it.
			so.Order = make([]int32, len(order))
			for k, j := range order {
				so.Order[j] = int32(k)
			}
		}
		if err := writeDischarge(cfg.Out, q, so); err != nil {
			return nil, err
		}
	}
	work := float64(net.Len()) * float64(T) * float64(f)
	wrote := ""
	if cfg.Out != "" {
		wrote = "; wrote " + cfg.Out
	}
	r.log("routed %d reaches x %d steps in %v (%.1f M reach-sub-steps/s)%s\n",
		net.Len(), T, res.Routing.Round(time.Microsecond), work/res.Routing.Seconds()/1e6, wrote)
	if res.DeviceReport = dev.timing(); res.DeviceReport != "" {
		r.log("%s\n", res.DeviceReport)
	}
	res.Options, res.Clusters, res.Runoff, res.Discharge = opts, cl, runoff, q
	res.Elapsed = time.Since(start)
	return res, nil
}

// streamChunk is the time chunk of a streamed run. The planner counts
// per-cluster runoff; the pipeline reads time chunks of every reach (the
// current one and the next, prefetched) and gathers discharge rows per chunk
// (the one being routed and the one being written), for every ensemble
// member: keep those four within a third of the budget, and within what
// the plan's predicted peak leaves of the nine tenths of the budget a plan
// may fill. Each chunk's buffers are fresh allocations, so up to 3/4 of
// them again is garbage awaiting collection.
func streamChunk(plan *diffroute.MemoryPlan, net *diffroute.Network, members int, budget int64) int {
	perStep := int64(members) * int64(net.Len()) * 4 * 4
	left := (budget*9/10 - plan.Predicted) * 4 / 7
	return int(max(1, min(int64(plan.TimeChunk), budget/3/perStep, left/perStep)))
}

// routeWhole routes runoff in memory, staged by clusters when cl is set.
// With restart settings (rs active) it continues from state and writes the
// states and Qfinal asked for.
func routeWhole(ctx context.Context, runoff *diffroute.DataTensor, net *diffroute.Network, cl *diffroute.Clusters, opts diffroute.Options, dev *device, prog progress.Reporter,
	rs *restart, state *diffroute.State, rapid *data.RAPID, rstep time.Duration) (*diffroute.DataTensor, error) {
	if cl == nil {
		router, err := dev.router(ctx, net, opts)
		if err != nil {
			return nil, err
		}
		if !rs.active() {
			return router.Route(ctx, runoff)
		}
		sr, err := asStepRouter(router)
		if err != nil {
			return nil, err
		}
		return rs.routeSegments(ctx, sr, state, runoff, rapid, rstep)
	}
	sr, err := diffroute.NewStagedRouter(opts)
	if err != nil {
		return nil, err
	}
	if err := dev.stage(sr); err != nil {
		return nil, err
	}
	sr.Progress = stopped{prog}
	if rs.active() {
		return rs.routeSegments(ctx, stagedStep{sr, cl}, state, runoff, rapid, rstep)
	}
	return sr.Route(ctx, runoff, cl)
}

// inOrder says whether a run can be routed by routeInOrder: allowed
// (InPlace), one runoff
// series from a netCDF file in network order, routed whole on the CPU by
// the recursive method, unstaged, with no restart files, written to a
// file.
func inOrder(cfg Config, src *runoffSource, net *diffroute.Network, cl *diffroute.Clusters, opts diffroute.Options, dev *device, rs *restart, keep []int64) bool {
	return cfg.InPlace && cfg.Out != "" && src.readOrdered != nil && src.members <= 1 && cl == nil && opts.Method == diffroute.Recursive &&
		dev.dev == nil && !rs.active() && keep == nil && len(src.ids) == net.Len()
}

// filePositions returns the position in the runoff file (ids) of each reach
// of net, or nil when the file does not hold exactly the network's reaches.
// It sorts rather than maps: millions of ids.
func filePositions(ids []int64, rapid *data.RAPID) []int32 {
	net := rapid.Network
	n := net.Len()
	if len(ids) != n {
		return nil
	}
	pos := make([]int32, n)
	if slices.Equal(ids, net.IDs()) || (rapid.ConnectPos == nil && slices.Equal(ids, rapid.ConnectIDs)) {
		for i := range pos {
			pos[i] = int32(i)
		}
		return pos
	}
	if rapid.ConnectPos != nil && slices.Equal(ids, rapid.ConnectIDs) {
		// rapid_connect.csv order, as RAPID's m3_riv files are.
		copy(pos, rapid.ConnectPos)
		return pos
	}
	byID := func(ids []int64) []int32 {
		s := make([]int32, len(ids))
		for i := range s {
			s[i] = int32(i)
		}
		slices.SortFunc(s, func(a, b int32) int { return cmp.Compare(ids[a], ids[b]) })
		return s
	}
	file, reach := byID(ids), byID(net.IDs())
	for k := range file {
		if ids[file[k]] != net.ID(int(reach[k])) {
			return nil
		}
		pos[reach[k]] = file[k]
	}
	return pos
}

// routeInOrder routes the whole runoff in the recursive router's own order
// (Network.InRoutingOrder): the runoff is read with its rows in that order
// (the reader transposes anyway), the network and parameters renumbered
// alike, and discharge is routed into the runoff tensor itself. The router
// then reads runoff, discharge and state in memory order, and the run holds
// one tensor instead of two. q's row k is network reach order[k]; the
// writer puts rows back in network order as it transposes.
func routeInOrder(ctx context.Context, src *runoffSource, rapid *data.RAPID, opts diffroute.Options, T int, warn func(string, ...any)) (q *diffroute.DataTensor, order []int32, err error) {
	net := rapid.Network
	onet, order, err := net.InRoutingOrder(opts.Workers)
	if err != nil {
		return nil, nil, err
	}
	// The run's parameters move into the router's order for the routing
	// and come back after it: one copy fewer while routing (millions of
	// reaches: 100 MB).
	ropts := opts
	var restore func()
	ropts.Params, restore = moveParams(opts.Params, order)
	defer restore()
	if opts.InitialQ != nil {
		ropts.InitialQ = make([]float64, len(order))
		for k, i := range order {
			ropts.InitialQ[k] = opts.InitialQ[i]
		}
	}
	rr, err := diffroute.NewRecursiveRouter(ctx, onet, ropts)
	if err != nil {
		return nil, nil, err
	}
	checkWindow(warn, rr)
	// The set-up's garbage goes back to the system before the runoff
	// takes its place: the largest tensor of the run is allocated on a
	// heap that holds only what routing needs.
	debug.FreeOSMemory()
	x, err := src.readInOrder(rapid, 0, T, order)
	if err != nil {
		return nil, nil, err
	}
	// The tensor's reach ids are the renumbered network's: one list, not
	// two; and the reader's garbage (ids as read, in file order, in this
	// order) is collected for the routing state to reuse.
	if slices.Equal(x.IDs, onet.IDs()) {
		x.IDs = onet.IDs()
	}
	runtime.GC()
	if err := rr.RouteTo(ctx, x, x); err != nil {
		return nil, nil, err
	}
	// The router (coefficients, state: hundreds of MB for millions of
	// reaches) is garbage now: collected before the parameters come back
	// and the writer allocates, they reuse its memory instead of growing
	// the process.
	rr = nil
	runtime.GC()
	x.Units = "m3/s"
	return x, order, nil
}

// moveParams returns p's parameters in the given order of reaches, dropping
// p's own, and restore, which puts them back. A parameter without a value
// per reach is left as it is, for the router to refuse.
func moveParams(p diffroute.Params, order []int32) (q diffroute.Params, restore func()) {
	if p == nil {
		return nil, func() {}
	}
	q = make(diffroute.Params, len(p))
	var moved []string
	for name, v := range p {
		if len(v) != len(order) {
			q[name] = v
			continue
		}
		w := make([]float64, len(order))
		for k, i := range order {
			w[k] = v[i]
		}
		q[name] = w
		p[name] = nil
		moved = append(moved, name)
	}
	return q, func() {
		for _, name := range moved {
			w := q[name]
			v := make([]float64, len(order))
			for k, i := range order {
				v[i] = w[k]
			}
			p[name] = v
		}
	}
}

// ReorderOptions returns opts with its per-reach fields (parameters,
// initial discharge) in the given order of the network's reaches, for the
// network net.Reorder(order).
func ReorderOptions(opts diffroute.Options, order []int32) diffroute.Options {
	opts.Params = opts.Params.Subset(order)
	if opts.InitialQ != nil {
		q0 := make([]float64, len(order))
		for k, i := range order {
			q0[k] = opts.InitialQ[i]
		}
		opts.InitialQ = q0
	}
	return opts
}

// ReadInOrder is Read with the tensor's rows in the given order of the
// network's reaches (row k: reach order[k] of in.RAPID.Network), as
// routing a reordered network wants them (diffroute.RoutingOrder). The
// runoff must be a netCDF file holding exactly the network's reaches.
func (in *Inputs) ReadInOrder(t0, count int, order []int32) (*diffroute.DataTensor, error) {
	return in.src.readInOrder(in.RAPID, t0, count, order)
}

func (src *runoffSource) readInOrder(rapid *data.RAPID, t0, count int, order []int32) (*diffroute.DataTensor, error) {
	rows, err := src.orderedRows(rapid, order)
	if err != nil {
		return nil, err
	}
	return src.readOrdered(t0, count, rows, nil)
}

// orderedRows returns the file position of each row of a tensor whose rows
// are the network's reaches in the given order, for readOrdered.
func (src *runoffSource) orderedRows(rapid *data.RAPID, order []int32) ([]int32, error) {
	if src.readOrdered == nil {
		return nil, fmt.Errorf("%s: runoff in another order is read from netCDF files only", src.path)
	}
	pos := filePositions(src.ids, rapid)
	if pos == nil || len(order) != len(pos) {
		return nil, fmt.Errorf("%s: the runoff's reaches are not the network's", src.path)
	}
	rows := make([]int32, len(order)) // file position of each row
	for k, i := range order {
		rows[k] = pos[i]
	}
	return rows, nil
}

// routeSelected routes only the reaches listed in the file outputs and
// what drains into them. In place (Config.InPlace), a netCDF file's runoff
// is read for those reaches alone, and runoff is returned nil.
func routeSelected(ctx context.Context, outputs string, src *runoffSource, net *diffroute.Network, opts diffroute.Options, inPlace bool, dev *device) (runoff, q *diffroute.DataTensor, sub *diffroute.Network, err error) {
	ids, err := data.ReadIDList(outputs, net)
	if err != nil {
		return nil, nil, nil, err
	}
	sel, err := diffroute.Select(net, opts, ids)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", outputs, err)
	}
	if err := checkCoverage(src.path, src.ids, sel.Net); err != nil {
		return nil, nil, nil, err
	}
	if inPlace && src.readColumns != nil && src.members <= 1 && opts.Method == diffroute.Recursive {
		// Only the runoff of the reaches routed is read, straight into the
		// router's order, and routed in place (as routeInOrder does).
		if q, err = routeColumnsInOrder(ctx, src, sel, dev.warn); err != nil {
			return nil, nil, nil, err
		}
		if q, err = q.SelectIDs(ids); err != nil {
			return nil, nil, nil, err
		}
		return nil, q, sel.Net, nil
	}
	if runoff, err = src.read(0, len(src.times)); err != nil {
		return nil, nil, nil, err
	}
	// The device's router checks the recursive method's IRF windows or the
	// kernel's mass, as every other run does.
	router, err := dev.router(ctx, sel.Net, sel.Opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if q, err = router.Route(ctx, runoff); err != nil {
		return nil, nil, nil, err
	}
	if q, err = q.SelectIDs(ids); err != nil {
		return nil, nil, nil, err
	}
	return runoff, q, sel.Net, nil
}

// routeColumnsInOrder reads the runoff of the selection's reaches alone, in
// the recursive router's order, and routes it there in place. The rows of
// the result are the selection's reaches in that order.
func routeColumnsInOrder(ctx context.Context, src *runoffSource, sel *diffroute.Selection, warn func(string, ...any)) (*diffroute.DataTensor, error) {
	onet, order, err := sel.Net.InRoutingOrder(sel.Opts.Workers)
	if err != nil {
		return nil, err
	}
	rr, err := diffroute.NewRecursiveRouter(ctx, onet, ReorderOptions(sel.Opts, order))
	if err != nil {
		return nil, err
	}
	checkWindow(warn, rr)
	pos := make(map[int64]int32, len(src.ids))
	for c, id := range src.ids {
		pos[id] = int32(c)
	}
	cols := make([]int32, len(order))
	for k, i := range order {
		c, ok := pos[sel.Net.ID(int(i))]
		if !ok {
			return nil, fmt.Errorf("%s: no runoff for reach %d", src.path, sel.Net.ID(int(i)))
		}
		cols[k] = c
	}
	x, err := src.readColumns(0, len(src.times), cols)
	if err != nil {
		return nil, err
	}
	if err := rr.RouteTo(ctx, x, x); err != nil {
		return nil, err
	}
	x.Units = "m3/s"
	return x, nil
}

// errStopped ends a progress bar of a run that failed: the error itself is
// reported once, by the caller.
var errStopped = fmt.Errorf("stopped by the error below")

// stopped ends a failed task with errStopped: the run's error is reported
// once, by the caller, not also in the progress display.
type stopped struct{ progress.Reporter }

func (s stopped) Done(err error) {
	if err != nil {
		err = errStopped
	}
	s.Reporter.Done(err)
}

func (r *run) warn(format string, a ...any) {
	if r.cfg.Warn != nil {
		fmt.Fprintf(r.cfg.Warn, "diffroute: warning: "+format+"\n", a...)
	}
}

func irfName(o diffroute.Options) string {
	if o.IRF == "" {
		return "muskingum"
	}
	return o.IRF
}

// stepMatchesTimes refuses a step (--step) that contradicts the dated time
// coordinate of the runoff: uneven dates cannot be relabelled as even steps,
// and evenly spaced dates have their own step.
func stepMatchesTimes(src *runoffSource, step time.Duration) error {
	if len(src.times) < 2 {
		return nil
	}
	ts := make([]time.Time, len(src.times))
	for k, l := range src.times {
		t, err := data.ParseTime(l)
		if err != nil {
			return nil // step indices: --step gives their meaning
		}
		ts[k] = t
	}
	for k := 1; k < len(ts); k++ {
		if d := ts[k].Sub(ts[k-1]); d != ts[1].Sub(ts[0]) {
			return fmt.Errorf("%s: the time coordinate is uneven (%s to %s is %v, the first step %v): --step %v cannot relabel it; fix the file's times",
				src.path, data.FormatTime(ts[k-1]), data.FormatTime(ts[k]), d, ts[1].Sub(ts[0]), step.Seconds())
		}
	}
	if d := ts[1].Sub(ts[0]); d != step {
		return fmt.Errorf("%s: the time coordinate has steps of %v, but --step says %v; drop --step or fix the file", src.path, d, step.Seconds())
	}
	return nil
}
