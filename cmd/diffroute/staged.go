package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/diffroute/data"
	"github.com/diffroute-go/diffroute/diffroute"
	"github.com/diffroute-go/diffroute/viz"
)

// memFlags are route's memory-management options (staging, chunks, outputs,
// pixel runoff, budget).
type memFlags struct {
	maxNodes            int
	maxPaths            int64
	timeChunk           int
	outputs             string
	pixelRunoff, weight string
	budget              string
}

func (m *memFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&m.maxNodes, "max-nodes", 0, "stage the network into clusters of at most N reaches (DiffRoute's node_thr)")
	fs.Int64Var(&m.maxPaths, "max-paths", 0, "stage the network so each cluster has at most N closure pairs")
	fs.IntVar(&m.timeChunk, "time-chunk", 0, "route in time chunks of N steps, streaming runoff in and discharge out (.nc output)")
	fs.StringVar(&m.outputs, "outputs", "", "route only these reaches (one id per line) and what drains into them")
	fs.StringVar(&m.pixelRunoff, "pixel-runoff", "", "pixel runoff Feather file (instead of --runoff): interpolated onto catchments with --weights")
	fs.StringVar(&m.weight, "weights", "", "interpolation weights Feather file (river_id, pixel_idx, area_sqm_total)")
	fs.StringVar(&m.budget, "mem-budget", "", "memory budget, e.g. 1GiB: the planner picks method, staging and time chunk")
}

// readIDList reads one reach id per line; each must be a reach of net,
// listed once.
func readIDList(path string, net *diffroute.Network) ([]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []int64
	lines := map[int64]int{}
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not a reach id", path, ln, s)
		}
		if _, ok := net.Index(id); !ok {
			return nil, fmt.Errorf("%s:%d: reach %d is not in the network", path, ln, id)
		}
		if first, dup := lines[id]; dup {
			return nil, fmt.Errorf("%s:%d: reach %d is listed twice (first on line %d)", path, ln, id, first)
		}
		lines[id] = ln
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no reach ids", path)
	}
	return ids, nil
}

// runoffSource reads runoff for a time range, from a runoff file or by
// interpolating pixel runoff, already in m³/s and checked.
type runoffSource struct {
	path   string
	read   func(t0, count int) (*diffroute.DataTensor, error)
	ids    []int64
	times  []string
	step   time.Duration
	closer func()
}

func openRunoff(j *routeJob, cfg *data.RAPID) (*runoffSource, error) {
	if j.mem.pixelRunoff != "" {
		if j.mem.weight == "" || j.runoffPath != "" {
			return nil, usageError{"route: --pixel-runoff needs --weights and replaces --runoff"}
		}
		in, pr, err := data.OpenInterpolator(j.mem.pixelRunoff, j.mem.weight, nil)
		if err != nil {
			return nil, err
		}
		ids := cfg.Network.IDs()
		if err := in.Check(ids); err != nil {
			pr.Close()
			return nil, fmt.Errorf("%s: %w", j.mem.weight, err)
		}
		src := &runoffSource{path: j.mem.pixelRunoff, ids: ids, times: pr.Times(), step: pr.Step(), closer: func() { pr.Close() }}
		src.read = func(t0, count int) (*diffroute.DataTensor, error) {
			x, err := in.Interpolate(context.Background(), ids, t0, t0+count)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", j.mem.pixelRunoff, err)
			}
			return x, checkFinite(x, j.mem.pixelRunoff)
		}
		return src, nil
	}
	if j.runoffPath == "" {
		return nil, usageError{"route: --runoff or --pixel-runoff is required"}
	}
	head, err := readRunoffRange(j.runoffPath, j.runoffVar, cfg, 0, -1)
	if err != nil {
		return nil, err
	}
	if head.T == 0 && len(head.Times) == 0 { // no time coordinate: read it whole
		if head, err = readRunoff(j.runoffPath, j.runoffVar, cfg); err != nil {
			return nil, err
		}
		head.Times = make([]string, head.T)
		for t := range head.Times {
			head.Times[t] = strconv.Itoa(t)
		}
	}
	src := &runoffSource{path: j.runoffPath, ids: head.IDs, times: head.Times, step: head.Step, closer: func() {}}
	units := j.units
	if units == "" {
		units = head.Units
	}
	src.read = func(t0, count int) (*diffroute.DataTensor, error) {
		var x *diffroute.DataTensor
		if head.T > 0 {
			x = head.SliceTime(t0, t0+count)
		} else if x, err = readRunoffRange(j.runoffPath, j.runoffVar, cfg, t0, count); err != nil {
			return nil, err
		}
		if err := toRate(x, units, j.step, j.runoffPath); err != nil {
			return nil, err
		}
		return x, checkFinite(x, j.runoffPath)
	}
	return src, nil
}

// readRunoffRange reads steps [t0, t0+count) of a netCDF file (count < 0:
// labels only); CSV tables are read whole.
func readRunoffRange(path, varName string, cfg *data.RAPID, t0, count int) (*diffroute.DataTensor, error) {
	if strings.HasSuffix(strings.ToLower(path), ".csv") {
		return readRunoff(path, varName, cfg)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return data.ReadRunoffNC(path, &data.NCOptions{Var: varName, IDs: cfg.ConnectIDs, TimeStart: t0, TimeCount: count})
}

// progressOut is where progress bars are drawn (a variable for tests).
var progressOut io.Writer = os.Stderr

// errStopped ends a progress bar of a run that failed: the error itself is
// printed once, by main.
var errStopped = errors.New("stopped by the error below")

// progressFor adapts a viz progress bar to the core's per-cluster callback.
// The returned done takes the run's error, so that a failed run does not end
// with a check mark.
func progressFor(quiet bool, name string) (func(done, total int), func(error)) {
	p := viz.NewProgress(quiet, viz.ProgressWriter(progressOut))
	started := false
	return func(done, total int) {
			if !started {
				p.Start(name, int64(total))
				started = true
			}
			p.Update(int64(done))
		}, func(err error) {
			if started {
				if err != nil {
					err = errStopped
				}
				p.Done(err)
			}
		}
}

// streamRoute routes in time chunks: the next chunk is read while the
// current one is routed cluster by cluster, and each cluster's discharge is
// written to the Qout file as soon as it is ready, so neither the whole
// runoff nor the whole discharge is ever in memory.
func streamRoute(ctx context.Context, src *runoffSource, net *diffroute.Network, cl *diffroute.Clusters, opts diffroute.Options, dev *device, chunk int, out string, quiet bool, ss *streamState) error {
	T := len(src.times)
	if ss != nil && ss.rs.every > 0 {
		chunk = min(chunk, ss.rs.every) // states are taken between chunks
	}
	w, err := data.NewQoutWriter(out, net.IDs(), src.times, src.step, nil)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			w.Abort()
		}
	}()
	sr, err := diffroute.NewStagedRouter(opts)
	if err != nil {
		return err
	}
	if err := dev.stage(sr); err != nil {
		return err
	}
	if ss != nil && ss.in != nil {
		if err := sr.SetState(ss.in, cl); err != nil {
			return fmt.Errorf("--state-in %s: %w", ss.rs.in, err)
		}
	}
	type loaded struct {
		c   diffroute.TimeChunk
		x   *diffroute.DataTensor
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan loaded)
	go func() { // reader: one chunk ahead of the router
		defer close(chunks)
		for c := range diffroute.TimeChunks(T, chunk, 0) {
			x, err := src.read(c.Start, c.Len())
			select {
			case chunks <- loaded{c, x, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	// Each chunk's discharge is gathered for all reaches and written as
	// whole rows: the Qout file is time-major, so per-cluster columns would
	// be strided writes. The writer runs one chunk behind the router.
	pieces := make(chan struct {
		q  *diffroute.DataTensor
		t0 int
	}, 1)
	wrote := make(chan error, 1)
	go func() {
		var werr error
		for p := range pieces {
			if werr == nil {
				werr = w.Write(p.q, p.t0)
			}
		}
		wrote <- werr
	}()
	step, done := progressFor(quiet, "routing chunks")
	nChunks := (T + chunk - 1) / chunk
	var rerr error
	k := 0
	for l := range chunks {
		if rerr = l.err; rerr != nil {
			break
		}
		out := diffroute.NewDataTensor(1, net.IDs(), l.x.T)
		out.Times, out.Step, out.Units = l.x.Times, l.x.Step, "m3/s"
		for cd, err := range sr.RouteClusters(ctx, diffroute.ClusterRunoffs(l.x, cl, 0, l.x.T), cl) {
			if err != nil {
				rerr = err
				break
			}
			for j, g := range cd.Reaches {
				copy(out.Series(0, int(g)), cd.Discharge.Series(0, j))
			}
		}
		if rerr == nil {
			rerr = checkDischarge(out, l.c.Start)
		}
		if rerr != nil {
			break
		}
		pieces <- struct {
			q  *diffroute.DataTensor
			t0 int
		}{out, l.c.Start}
		if ss != nil {
			if rerr = ss.after(sr, cl, src.times, l.c.End); rerr != nil {
				break
			}
		}
		k++
		step(k, nChunks)
	}
	if rerr == nil && k < nChunks {
		// The reader stops early only when the run is cancelled: say so,
		// rather than let the writer complain of missing steps.
		if rerr = ctx.Err(); rerr == nil {
			rerr = fmt.Errorf("%s: runoff reading stopped after %d of %d chunks", src.path, k, nChunks)
		}
	}
	close(pieces)
	cancel()
	for range chunks { // let the reader finish
	}
	if werr := <-wrote; rerr == nil {
		rerr = werr
	}
	done(rerr)
	if rerr != nil {
		return rerr
	}
	if err := w.Close(); err != nil {
		return err
	}
	ok = true
	if ss != nil {
		return ss.rs.finish(stagedStep{sr, cl}, ss.cfg, src.times, ss.step)
	}
	return nil
}

func parseBudget(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := humanize.ParseBytes(s)
	if err != nil || b == 0 {
		return 0, usageError{fmt.Sprintf("--mem-budget %q: want a size such as 1GiB or 512MB", s)}
	}
	return int64(b), nil
}

func runPlan(_ context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute plan (--rapid DIR | --reaches N) --steps T --mem-budget SIZE [--substeps f] [--method M] [--batch B]"
	fs := newFlags("plan", synopsis)
	rapid := fs.String("rapid", "", "RAPID config folder")
	reaches := fs.Int("reaches", 0, "plan for a generated network of N reaches instead")
	steps := fs.Int("steps", 0, "runoff steps to route")
	f := fs.Int("substeps", 24, "routing sub-steps per runoff step")
	batch := fs.Int("batch", 1, "ensemble members")
	method := fs.String("method", "", "force a method (recursive or kernel); default: the planner's choice")
	maxDelay := fs.Int("max-delay", 64, "kernel length in runoff steps")
	budget := fs.String("mem-budget", "", "memory budget, e.g. 1GiB")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	b, err := parseBudget(*budget)
	if err != nil {
		return err
	}
	if b == 0 || *steps < 1 || (*rapid == "") == (*reaches == 0) {
		return usageError{"plan: give --mem-budget, --steps and one of --rapid or --reaches"}
	}
	if *reaches < 0 || *f < 1 || *maxDelay < 1 || *batch < 1 {
		return usageError{"plan: --reaches, --substeps, --max-delay and --batch must be ≥ 1"}
	}
	if *method != "" {
		if err := choice("plan", "method", *method, string(diffroute.Recursive), string(diffroute.Kernel)); err != nil {
			return err
		}
	}
	var net *diffroute.Network
	if *rapid != "" {
		if err := checkRAPIDDir("plan", *rapid); err != nil {
			return err
		}
		cfg, err := data.ReadRAPID(*rapid)
		if err != nil {
			return err
		}
		net = cfg.Network
	} else {
		net = diffroute.SyntheticNetwork(*reaches, 1)
	}
	// Memory does not depend on parameter values: plan with typical ones.
	params := diffroute.Constant(net.Len(), map[string]float64{"k": 0.5, "x": 0.2})
	plan, err := diffroute.Plan(net, *steps, *batch, b, diffroute.Options{Params: params, SubSteps: *f, Method: diffroute.Method(*method), MaxDelay: *maxDelay})
	if err != nil {
		return budgetError("plan", *budget, err)
	}
	fmt.Fprintln(stdout, net)
	fmt.Fprintln(stdout, plan)
	return nil
}
