package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/diffroute/data"
	"github.com/diffroute-go/diffroute/diffroute"
)

// routeFlags are the options shared by route and demo.
type routeFlags struct {
	irf, method, average, lateral, sampling, compat string
	maxDelay, fftPad, blockSize, workers            int
	excludeSelf, quiet                              bool
	methodSet                                       bool // --method given explicitly
	dev                                             device
	params                                          paramFlags
	paramsFile                                      string
	paramsFrom                                      string // a calibrate --out folder
}

func (rf *routeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&rf.irf, "irf", "muskingum", "impulse response function (see 'diffroute irfs')")
	fs.StringVar(&rf.method, "method", "recursive", "routing method: recursive (exact, fastest on CPU) or kernel (DiffRoute's)")
	fs.StringVar(&rf.average, "average", "start", "fine values averaged per step: start (RAPID's Qout) or end (DiffRoute)")
	fs.StringVar(&rf.lateral, "lateral", "rapid", "how runoff enters a reach within its step: rapid or lti (DiffRoute)")
	fs.StringVar(&rf.sampling, "sampling", "avg", "back to the runoff step: avg (mean of sub-steps) or sample (last sub-step)")
	fs.StringVar(&rf.compat, "compat", "", "\"diffroute\" reproduces DiffRoute's numbers (lti, end, ReLU, renormalised kernels)")
	fs.IntVar(&rf.maxDelay, "max-delay", 64, "kernel length in runoff steps (kernel method, convolution IRFs)")
	fs.IntVar(&rf.fftPad, "fft-pad", 2, "FFT length factor for path kernels (1 = DiffRoute's, wrap-around beyond max-delay)")
	fs.IntVar(&rf.blockSize, "block-size", 16, "tile size of the block-sparse kernel")
	fs.IntVar(&rf.workers, "workers", 0, "goroutines (default: all cores)")
	fs.StringVar(&rf.dev.name, "device", "cpu", "where the kernel method convolves: cpu, or cuda in a binary built with -tags cuda")
	fs.IntVar(&rf.dev.ordinal, "gpu", 0, "CUDA device ordinal for --device cuda")
	fs.BoolVar(&rf.excludeSelf, "exclude-self", false, "add a reach's own runoff directly instead of routing it through the reach")
	fs.BoolVar(&rf.quiet, "quiet", false, "print nothing but errors")
	fs.Var(&rf.params, "param", "IRF parameter for every reach, name=value (repeatable; times such as k, tau and delay in runoff steps, not seconds)")
	fs.StringVar(&rf.paramsFile, "params", "", "CSV of per-reach IRF parameters: header rivid,<name>,…")
	fs.StringVar(&rf.paramsFrom, "params-from", "", "folder written by 'diffroute calibrate': its k.csv and x.csv (muskingum) or params.csv")
}

// options turns flags into routing options for a network and step.
func (rf *routeFlags) options(cfg *data.RAPID, step time.Duration, f int) (diffroute.Options, error) {
	// Zero would mean "default" to the library: refuse it rather than
	// silently route with another value than the one asked for.
	if rf.maxDelay < 1 || rf.fftPad < 1 || rf.blockSize < 1 || rf.workers < 0 {
		return diffroute.Options{}, usageError{"--max-delay, --fft-pad and --block-size must be ≥ 1, --workers ≥ 0"}
	}
	o := diffroute.Options{
		IRF: rf.irf, SubSteps: f, Method: diffroute.Method(rf.method), Average: diffroute.Average(rf.average),
		Lateral: diffroute.LateralRule(rf.lateral), Sampling: diffroute.Sampling(rf.sampling), Compat: rf.compat,
		MaxDelay: rf.maxDelay, FFTPad: rf.fftPad, BlockSize: rf.blockSize, Workers: rf.workers, ExcludeSelf: rf.excludeSelf,
	}
	if rf.compat != "" && !rf.methodSet {
		o.Method = "" // the compat mode picks its method
	}
	irf, err := diffroute.LookupIRF(rf.irf)
	if err != nil {
		return o, err
	}
	net := cfg.Network
	p := diffroute.Params{}
	if rf.irf == "muskingum" && len(rf.params) == 0 && rf.paramsFile == "" {
		if p, err = cfg.Muskingum(step); err != nil {
			return o, err
		}
	}
	if rf.paramsFrom != "" {
		if err := readParamsFrom(rf.paramsFrom, rf.irf, cfg, step, p); err != nil {
			return o, err
		}
	}
	for name, v := range rf.params {
		p[name] = diffroute.Constant(net.Len(), map[string]float64{name: v})[name]
	}
	if rf.paramsFile != "" {
		if err := readParamsCSV(rf.paramsFile, net, p); err != nil {
			return o, err
		}
	}
	for name := range p {
		if !slices.Contains(irf.Params, name) {
			src := "--param " + name
			if _, flag := rf.params[name]; !flag {
				src = rf.paramsFile + " column " + name
			}
			return o, usageError{fmt.Sprintf("%s: IRF %s has no parameter %q (it takes %s)", src, rf.irf, name, strings.Join(irf.Params, ", "))}
		}
	}
	var missing, give []string
	for _, name := range irf.Params {
		if _, ok := p[name]; !ok {
			if _, def := irf.Defaults[name]; !def {
				missing = append(missing, name)
				give = append(give, "--param "+name+"=VALUE")
			}
		}
	}
	if len(missing) > 0 {
		what := "parameter " + missing[0]
		if len(missing) > 1 {
			what = "parameters " + andList(missing)
		}
		return o, usageError{fmt.Sprintf("IRF %s needs %s: give %s (times in runoff steps) or --params FILE with columns rivid,%s",
			rf.irf, what, strings.Join(give, " "), strings.Join(missing, ","))}
	}
	o.Params = p
	if rf.irf == "muskingum" && !rf.quiet {
		warnOscillating(net, p, f)
	}
	return o, nil
}

// warnOscillating reports Muskingum reaches whose C2 = (k(1−x) − Δt/2)/den
// is negative: their response alternates in sign from one sub-step to the
// next (RAPID computes the same), which a shorter sub-step avoids.
func warnOscillating(net *diffroute.Network, p diffroute.Params, f int) {
	k, x := p["k"], p["x"]
	if len(k) != net.Len() || len(x) != net.Len() {
		return
	}
	r := 1 / float64(f)
	n, first := 0, -1
	for i := range k {
		if k[i]*(1-x[i]) < r/2 {
			if n == 0 {
				first = i
			}
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(os.Stderr, "diffroute: warning: %d reaches (first: %d) have k(1-x) < substep/2, so Muskingum's C2 < 0 and their response oscillates; a shorter --substep avoids it\n",
			n, net.ID(first))
	}
}

type paramFlags map[string]float64

func (p *paramFlags) String() string { return fmt.Sprint(map[string]float64(*p)) }
func (p *paramFlags) Set(s string) error {
	name, val, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	v, err := strconv.ParseFloat(val, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("parameter %s: %q is not a finite number", name, val)
	}
	if *p == nil {
		*p = paramFlags{}
	}
	(*p)[name] = v
	return nil
}

// readParamsCSV reads per-reach parameters (header rivid,<name>,…) into p,
// requiring a row for every reach of the network.
func readParamsCSV(path string, net *diffroute.Network, p diffroute.Params) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := strings.TrimPrefix(string(raw), "\ufeff") // a byte-order mark from spreadsheets
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return fmt.Errorf("%s: empty file", path)
	}
	header := strings.Split(lines[0], ",")
	if strings.TrimSpace(header[0]) != "rivid" || len(header) < 2 {
		return fmt.Errorf("%s:1: header must be rivid,<param>,…", path)
	}
	// Names are checked before anything is sized by them: IRFs take a
	// handful of parameters, never thousands.
	if len(header)-1 > 64 {
		return fmt.Errorf("%s:1: %d parameter columns; IRFs take a few", path, len(header)-1)
	}
	seen := map[string]bool{}
	for k, h := range header[1:] {
		name := strings.TrimSpace(h)
		if name == "" || seen[name] {
			return fmt.Errorf("%s:1: column %d: parameter name %q is empty or repeated", path, k+2, name)
		}
		seen[name] = true
	}
	cols := make([][]float64, len(header)-1)
	for k := range cols {
		cols[k] = make([]float64, net.Len())
		for i := range cols[k] {
			cols[k][i] = math.NaN()
		}
	}
	rowOf := map[int64]int{}
	for ln, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != len(header) {
			return fmt.Errorf("%s:%d: %d fields, header has %d", path, ln+2, len(f), len(header))
		}
		idf, err := strconv.ParseFloat(strings.TrimSpace(f[0]), 64)
		if err != nil || idf != math.Trunc(idf) || math.Abs(idf) > 1<<53 {
			return fmt.Errorf("%s:%d: rivid %q is not an integer", path, ln+2, f[0])
		}
		id := int64(idf) // ids written as 10.0 are accepted, as data's readers do
		if prev, dup := rowOf[id]; dup {
			return fmt.Errorf("%s:%d: reach %d already given on line %d", path, ln+2, id, prev)
		}
		rowOf[id] = ln + 2
		i, ok := net.Index(id)
		if !ok {
			continue // reaches outside the basin
		}
		for k, s := range f[1:] {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s:%d: %s = %q is not a finite number", path, ln+2, strings.TrimSpace(header[k+1]), s)
			}
			cols[k][i] = v
		}
	}
	for k, name := range header[1:] {
		for i, v := range cols[k] {
			if math.IsNaN(v) {
				return fmt.Errorf("%s: no row for reach %d", path, net.ID(i))
			}
		}
		p[strings.TrimSpace(name)] = cols[k]
	}
	return nil
}

func runRoute(ctx context.Context, args []string, stdout io.Writer) error {
	if isBasinsRun(args) {
		return runBasins(ctx, args, stdout)
	}
	const synopsis = "diffroute route --rapid DIR --runoff FILE --out FILE(.nc|.csv) [flags]"
	fs := newFlags("route", synopsis)
	var rf routeFlags
	rf.register(fs)
	rapidDir := fs.String("rapid", "", "RAPID config folder (rapid_connect.csv, riv_bas_id.csv, k.csv, x.csv)")
	runoffPath := fs.String("runoff", "", "runoff file: netCDF (m3_riv(time, rivid), runoff(time, river_id)) or CSV (time,<id>,…)")
	var mem memFlags
	mem.register(fs)
	var rs restartFlags
	rs.register(fs)
	runoffVar := fs.String("runoff-var", "", "runoff variable of a netCDF file (default: guessed)")
	units := fs.String("runoff-units", "", "runoff units: m3 (volume per step, RAPID) or m3/s (default: the file's units attribute)")
	stepSec := fs.Float64("step", 0, "runoff step in seconds (default: the file's time spacing)")
	subSec := fs.Float64("substep", 0, "routing sub-step in seconds (default: the runoff step); step/substep must be whole")
	qinit := fs.String("qinit", "", "initial discharge file (RAPID qinit: one value per reach, rapid_connect order)")
	out := fs.String("out", "", "output file: .nc (RAPID Qout layout) or .csv")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { rf.methodSet = rf.methodSet || f.Name == "method" })
	for name, v := range map[string]string{"rapid": *rapidDir, "out": *out} {
		if v == "" {
			return usageError{fmt.Sprintf("route: --%s is required", name)}
		}
	}
	outExt := strings.ToLower(filepath.Ext(*out))
	if outExt != ".nc" && outExt != ".csv" {
		return usageError{fmt.Sprintf("route: --out %s: want a .nc or .csv file", *out)}
	}
	// Flag values first: a typo costs nothing, not a read of the inputs.
	if err := rf.validate("route"); err != nil {
		return err
	}
	if err := mem.validate("route"); err != nil {
		return err
	}
	if err := checkUnits("route", *units); err != nil {
		return err
	}
	if err := rs.validate(*qinit, mem.outputs); err != nil {
		return err
	}
	if *runoffPath == "" && mem.pixelRunoff == "" {
		return usageError{"route: --runoff or --pixel-runoff is required"}
	}
	if *runoffPath != "" {
		if ext := strings.ToLower(filepath.Ext(*runoffPath)); !slices.Contains([]string{".nc", ".nc4", ".netcdf", ".csv"}, ext) {
			return usageError{fmt.Sprintf("route: --runoff %s: want a netCDF (.nc) or .csv file", *runoffPath)}
		}
	}
	if *qinit != "" && rf.methodSet && rf.method == string(diffroute.Kernel) {
		return usageError{"route: --qinit needs the recursive method: drop --method kernel"}
	}
	if err := checkRAPIDDir("route", *rapidDir); err != nil {
		return err
	}
	for _, in := range []struct{ flag, path string }{
		{"runoff", *runoffPath}, {"qinit", *qinit}, {"params", rf.paramsFile}, {"outputs", mem.outputs},
		{"pixel-runoff", mem.pixelRunoff}, {"weights", mem.weight}, {"state-in", rs.in},
	} {
		if err := checkInputFile("route", in.flag, in.path); err != nil {
			return err
		}
	}
	if err := checkWritable("route", "out", *out, false); err != nil {
		return err
	}
	inputs := []string{*runoffPath, *qinit, rf.paramsFile, mem.outputs, mem.pixelRunoff, mem.weight, rs.in}
	for _, f := range []string{data.RAPIDConnectFile, data.RAPIDBasinFile, data.RAPIDKFile, data.RAPIDXFile} {
		inputs = append(inputs, filepath.Join(*rapidDir, f))
	}
	if err := checkNotInput(*out, inputs); err != nil {
		return err
	}
	job := routeJob{rf: rf, rapidDir: *rapidDir, runoffPath: *runoffPath, runoffVar: *runoffVar, units: *units,
		stepSec: *stepSec, subSec: *subSec, qinit: *qinit, out: *out, mem: mem, rs: rs}
	_, err := job.run(ctx, stdout)
	return err
}

// checkNotInput refuses an output path that names one of the input files:
// the (atomic) write would replace the input with discharge.
func checkNotInput(out string, inputs []string) error {
	ost, err := os.Stat(out)
	if err != nil {
		return nil // nothing there yet: it cannot be an input
	}
	for _, in := range inputs {
		if in == "" {
			continue
		}
		if ist, err := os.Stat(in); err == nil && os.SameFile(ost, ist) {
			return usageError{fmt.Sprintf("route: --out %s is the input file %s; write the discharge elsewhere", out, in)}
		}
	}
	return nil
}

// routeJob is one route command: read, route, write.
type routeJob struct {
	rf                              routeFlags
	rapidDir, runoffPath, runoffVar string
	units                           string
	stepSec, subSec                 float64
	qinit, out                      string
	mem                             memFlags
	rs                              restartFlags
	step                            time.Duration // resolved runoff step
}

type routeResult struct {
	cfg      *data.RAPID
	runoff   *diffroute.DataTensor
	q        *diffroute.DataTensor
	f        int
	elapsed  time.Duration
	routeDur time.Duration
}

func (j *routeJob) run(ctx context.Context, stdout io.Writer) (*routeResult, error) {
	start := time.Now()
	logf := func(format string, a ...any) {
		if !j.rf.quiet {
			fmt.Fprintf(stdout, format, a...)
		}
	}
	cfg, err := data.ReadRAPID(j.rapidDir)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		if !j.rf.quiet {
			fmt.Fprintln(os.Stderr, "diffroute: warning:", w)
		}
	}
	src, err := openRunoff(j, cfg)
	if err != nil {
		return nil, err
	}
	defer src.closer()
	if j.mem.outputs == "" { // --outputs needs only the reaches it routes: checked below
		if err := checkCoverage(src.path, src.ids, cfg.Network); err != nil {
			return nil, err
		}
	}
	step, err := secondsFlag("step", j.stepSec)
	if err != nil {
		return nil, err
	}
	if step == 0 {
		step = src.step
	}
	if step <= 0 {
		return nil, fmt.Errorf("%s: cannot tell the runoff step from the file's times; give --step SECONDS", src.path)
	}
	j.step = step
	sub, err := secondsFlag("substep", j.subSec)
	if err != nil {
		return nil, err
	}
	if sub == 0 {
		sub = step
	}
	ratio := float64(step) / float64(sub)
	f := int(math.Round(ratio))
	if f < 1 || math.Abs(ratio-float64(f)) > 1e-9*ratio {
		return nil, subStepError(step, sub, j.stepSec != 0)
	}
	opts, err := j.rf.options(cfg, step, f)
	if err != nil {
		return nil, err
	}
	if j.qinit != "" {
		if opts.InitialQ, err = data.ReadQinit(j.qinit, cfg); err != nil {
			return nil, err
		}
	}
	budget, err := parseBudget(j.mem.budget)
	if err != nil {
		return nil, err
	}
	net := cfg.Network
	state, skip, err := j.rs.load(net, opts, src.times, step)
	if err != nil {
		return nil, err
	}
	if skip > 0 {
		logf("continuing from %s (state at %s): skipping the first %d runoff steps\n", j.rs.in, state.Time, skip)
		src = src.from(skip)
	}
	T := len(src.times)
	if T == 0 {
		return nil, fmt.Errorf("%s: no time steps to route", src.path)
	}
	if budget == 0 && j.mem.timeChunk == 0 && j.mem.maxNodes == 0 && j.mem.maxPaths == 0 && j.mem.outputs == "" {
		// Runoff and discharge alone would take more than half the free
		// memory: plan for that half rather than run out of memory.
		whole := 2 * int64(net.Len()) * int64(T) * 4
		if avail := memAvailable(); avail > 0 && whole > avail/2 {
			budget = avail / 2
			logf("runoff and discharge need %s, more than half the available memory: planning for %s (set --mem-budget to choose)\n",
				humanize.IBytes(uint64(whole)), humanize.IBytes(uint64(budget)))
		}
	}
	var cl *diffroute.Clusters
	chunk := j.mem.timeChunk
	switch {
	case budget > 0:
		if os.Getenv("GOMEMLIMIT") == "" {
			// Make the collector work harder near the budget rather than let
			// garbage push the process over it.
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(budget * 8 / 10))
		}
		if !j.rf.methodSet {
			opts.Method = "" // the planner chooses
		}
		plan, err := diffroute.Plan(net, T, 1, budget, opts)
		if err != nil {
			return nil, budgetError("route", j.mem.budget, err)
		}
		logf("%s\n", plan)
		opts.Method = plan.Method
		if plan.Staged {
			cl = plan.Clusters
		}
		if plan.Streaming && chunk == 0 {
			chunk = plan.TimeChunk
			// The planner counts per-cluster runoff; this command reads time
			// chunks of every reach (the current one and the next, prefetched)
			// and gathers discharge rows per chunk (the one being routed and the
			// one being written): keep those four within a third of the budget.
			// Each chunk's buffers are fresh allocations, so up to 3/4 of them
			// again is garbage awaiting collection.
			perStep := int64(net.Len()) * 4 * 4
			chunk = int(max(1, min(int64(chunk), budget/3/perStep)))
			bufs := perStep * int64(chunk)
			logf("streaming runoff and discharge in time chunks of %d steps (%s for chunk buffers); predicted peak %s\n",
				chunk, humanize.IBytes(uint64(bufs)), humanize.IBytes(uint64(plan.Predicted+bufs*7/4)))
		}
	case j.mem.maxNodes > 0 || j.mem.maxPaths > 0:
		if cl, err = diffroute.Schedule(net, j.mem.maxPaths, j.mem.maxNodes); err != nil {
			return nil, err
		}
	}
	if chunk < 0 || j.mem.maxNodes < 0 || j.mem.maxPaths < 0 {
		return nil, usageError{"route: --time-chunk, --max-nodes and --max-paths must be ≥ 0"}
	}
	if cl != nil {
		logf("%s\n", cl)
	}
	if err := j.rf.dev.open(&opts); err != nil {
		return nil, err
	}
	defer j.rf.dev.close()
	if j.rf.dev.dev != nil && j.mem.outputs != "" {
		return nil, usageError{"route: --outputs routes on the CPU; drop --device cuda"}
	}
	logf("%s\nrunoff: %d steps of %v, routed on %d sub-steps of %v (%s, %s method)\n", net, T, step, f, sub, opts.IRF, methodName(opts))
	t0 := time.Now()
	var runoff, q *diffroute.DataTensor
	switch {
	case j.mem.outputs != "":
		if chunk > 0 || cl != nil {
			return nil, usageError{"route: --outputs routes the selected reaches whole; drop --time-chunk, --max-nodes, --max-paths and --mem-budget"}
		}
		ids, err := readIDList(j.mem.outputs, net)
		if err != nil {
			return nil, err
		}
		sel, err := diffroute.Select(net, opts, ids)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.mem.outputs, err)
		}
		if err := checkCoverage(src.path, src.ids, sel.Net); err != nil {
			return nil, err
		}
		if runoff, err = src.read(0, T); err != nil {
			return nil, err
		}
		if q, err = sel.Route(ctx, runoff); err != nil {
			return nil, err
		}
		if q, err = q.SelectIDs(ids); err != nil {
			return nil, err
		}
		net = sel.Net
	case chunk > 0:
		if !strings.EqualFold(filepath.Ext(j.out), ".nc") {
			return nil, usageError{"route: time-chunked routing streams discharge to a .nc file; use --out FILE.nc"}
		}
		if cl == nil {
			if cl, err = diffroute.Schedule(net, 0, 0); err != nil {
				return nil, err
			}
		}
		if err := os.MkdirAll(filepath.Dir(j.out), 0o755); err != nil {
			return nil, err
		}
		if err := streamRoute(ctx, src, net, cl, opts, &j.rf.dev, chunk, j.out, j.rf.quiet, &streamState{rs: &j.rs, in: state, cfg: cfg, step: step}); err != nil {
			return nil, err
		}
	default:
		if runoff, err = src.read(0, T); err != nil {
			return nil, err
		}
		if cl != nil {
			sr, err := diffroute.NewStagedRouter(opts)
			if err != nil {
				return nil, err
			}
			if err := j.rf.dev.stage(sr); err != nil {
				return nil, err
			}
			var done func(error)
			sr.Progress, done = progressFor(j.rf.quiet, "routing clusters")
			q, err = j.rs.routeSegments(ctx, stagedStep{sr, cl}, state, runoff, cfg, step)
			done(err)
			if err != nil {
				return nil, err
			}
		} else {
			router, err := j.rf.dev.router(ctx, net, opts)
			if err != nil {
				return nil, err
			}
			if !j.rs.active() {
				q, err = router.Route(ctx, runoff)
			} else {
				var sr stepRouter
				if sr, err = asStepRouter(router); err == nil {
					q, err = j.rs.routeSegments(ctx, sr, state, runoff, cfg, step)
				}
			}
			if err != nil {
				return nil, err
			}
		}
	}
	routeDur := time.Since(t0)
	if q != nil {
		if err := writeDischarge(j.out, q); err != nil {
			return nil, err
		}
	}
	work := float64(net.Len()) * float64(T) * float64(f)
	logf("routed %d reaches x %d steps in %v (%.1f M reach-sub-steps/s); wrote %s\n",
		net.Len(), T, routeDur.Round(time.Microsecond), work/routeDur.Seconds()/1e6, j.out)
	if t := j.rf.dev.timing(); t != "" {
		logf("%s\n", t)
	}
	return &routeResult{cfg: cfg, runoff: runoff, q: q, f: f, elapsed: time.Since(start), routeDur: routeDur}, nil
}

// secondsFlag converts a --step or --substep value in seconds (0: not given)
// to a duration, refusing values that are negative, not finite, or that a
// duration cannot hold (shorter than a nanosecond, longer than 290 years).
func secondsFlag(name string, sec float64) (time.Duration, error) {
	if sec == 0 {
		return 0, nil
	}
	d := sec * float64(time.Second)
	if !(sec > 0) || math.IsInf(sec, 0) || d < 1 || d >= math.MaxInt64 {
		return 0, usageError{fmt.Sprintf("route: --%s %v: want a positive number of seconds, at least a nanosecond", name, sec)}
	}
	return time.Duration(math.Round(d)), nil
}

// memAvailable is the memory this process may use: MemAvailable from
// /proc/meminfo, lowered by a cgroup v2 limit (containers), or
// DIFFROUTE_MEM_AVAILABLE (bytes, e.g. "2GiB") when set; 0 when unknown.
var memAvailable = func() int64 {
	if v := os.Getenv("DIFFROUTE_MEM_AVAILABLE"); v != "" {
		if b, err := humanize.ParseBytes(v); err == nil {
			return int64(b)
		}
	}
	avail := int64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					avail = kb << 10
				}
			}
		}
	}
	limit, err1 := os.ReadFile("/sys/fs/cgroup/memory.max")
	used, err2 := os.ReadFile("/sys/fs/cgroup/memory.current")
	if err1 == nil && err2 == nil {
		l, e1 := strconv.ParseInt(strings.TrimSpace(string(limit)), 10, 64) // "max" means none
		u, e2 := strconv.ParseInt(strings.TrimSpace(string(used)), 10, 64)
		if e1 == nil && e2 == nil && (avail == 0 || l-u < avail) {
			avail = max(0, l-u)
		}
	}
	return avail
}

func methodName(o diffroute.Options) string {
	if o.Method == "" {
		return string(diffroute.Kernel)
	}
	return string(o.Method)
}

func readRunoff(path, varName string, cfg *data.RAPID) (*diffroute.DataTensor, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".nc", ".nc4", ".netcdf":
		return data.ReadRunoffNC(path, &data.NCOptions{Var: varName, IDs: cfg.ConnectIDs})
	case ".csv":
		if varName != "" {
			return nil, usageError{"route: --runoff-var applies to netCDF files only"}
		}
		return data.ReadCSVTableFile(path)
	default:
		return nil, usageError{fmt.Sprintf("route: --runoff %s: want a .nc or .csv file", path)}
	}
}

// toRate converts runoff to m³/s: volumes per step (RAPID m3_riv) are
// divided by the step.
func toRate(x *diffroute.DataTensor, units string, step time.Duration, path string) error {
	if units == "" {
		units = x.Units
	}
	switch normUnits(units) {
	case "m3":
		if err := data.VolumeToRate(x, step); err != nil {
			return err
		}
	case "m3/s":
	case "":
		return fmt.Errorf("%s: runoff units unknown; give --runoff-units m3 (volume per step) or m3/s", path)
	default:
		return fmt.Errorf("%s: runoff units %q not understood; give --runoff-units m3 or m3/s", path, units)
	}
	x.Units = "m3/s"
	return nil
}

func normUnits(u string) string {
	s := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(u), " ", ""))
	switch s {
	case "m3", "m^3", "m**3":
		return "m3"
	case "m3/s", "m3s-1", "m3.s-1", "m^3/s", "m**3/s", "m3s^-1":
		return "m3/s"
	}
	return s
}

// checkFinite refuses runoff with missing or infinite values, naming the file.
func checkFinite(x *diffroute.DataTensor, path string) error {
	if err := x.CheckFinite(); err != nil {
		return fmt.Errorf("%s: runoff of %v", path, err)
	}
	return nil
}

// checkDischarge refuses to write discharge that is not finite: finite
// runoff routes to Inf or NaN only when it overflows float32. t0 is the
// step of q's first step in the run.
func checkDischarge(q *diffroute.DataTensor, t0 int) error {
	if err := q.CheckFinite(); err != nil {
		if e, ok := err.(*diffroute.NotFiniteError); ok && e.Time == "" {
			e.Step += t0
		}
		return fmt.Errorf("discharge of %v: the runoff is too large for float32 discharge", err)
	}
	return nil
}

func writeDischarge(path string, q *diffroute.DataTensor) error {
	if err := checkDischarge(q, 0); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if strings.ToLower(filepath.Ext(path)) == ".csv" {
		return data.WriteCSVTableFile(path, q)
	}
	return data.WriteQoutNC(path, q, nil)
}
