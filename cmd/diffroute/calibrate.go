package main

import (
	"context"
	"encoding/json"
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

	"github.com/diffroute-go/route/calibrate"
	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
)

// calFlags are the calibrate command's own flags.
type calFlags struct {
	rapid, runoff, runoffVar, units, observed, observedVar string
	stepSec, subSec                                        float64
	params, bounds, mapSpec, loss, optimizer               string
	hidden, epochs, warmup, window, patience, validEvery   int
	lr, ridge                                              float64
	qinit                                                  string
	trainUntil, memBudget, out                             string
	seed                                                   uint64
	validRapid, validRunoff, validObserved, validAttrs     string
}

// routeFlagsForCalibration are the route flags that apply to a gradient
// run: the recursive method on the CPU, any IRF with a gradient, every
// lateral, averaging and sampling convention.
var routeFlagsForCalibration = []string{"irf", "average", "lateral", "sampling", "max-delay", "workers", "quiet", "param"}

// calibrateOutputs are the files calibrate may write in its --out folder.
var calibrateOutputs = []string{
	"k.csv", "x.csv", "params.csv", "map.json", "report.csv", "history.csv", "calibration.html",
	"valid/k.csv", "valid/x.csv", "valid/params.csv", "valid/report.csv",
}

func runCalibrate(ctx context.Context, args []string, stdout io.Writer) error {
	if isBasinsRun(args) {
		return runCalibrateBasins(ctx, args, stdout)
	}
	const synopsis = "diffroute calibrate --rapid DIR --runoff FILE --observed FILE --out DIR [flags]"
	fs := newFlags("calibrate", synopsis)
	var rf routeFlags
	var c calFlags
	c.register(fs, &rf)
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	rf.method = string(diffroute.Recursive)
	job, err := c.check(&rf)
	if err != nil {
		return err
	}
	return job.run(ctx, stdout)
}

// register adds calibrate's flags, and the route flags that apply, to fs.
func (c *calFlags) register(fs *flag.FlagSet, rf *routeFlags) {
	shared := flag.NewFlagSet("route", flag.ContinueOnError)
	rf.register(shared)
	shared.VisitAll(func(f *flag.Flag) {
		if slices.Contains(routeFlagsForCalibration, f.Name) {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	fs.StringVar(&rf.paramsFile, "prior", "", "CSV of per-reach prior parameters, header rivid,<name>,… in runoff steps (default: k.csv and x.csv for muskingum)")
	fs.StringVar(&c.rapid, "rapid", "", "RAPID config folder (rapid_connect.csv, riv_bas_id.csv, k.csv, x.csv)")
	fs.StringVar(&c.runoff, "runoff", "", "runoff file: netCDF or CSV (time,<id>,…), as route reads it")
	fs.StringVar(&c.runoffVar, "runoff-var", "", "runoff variable of a netCDF file (default: guessed)")
	fs.StringVar(&c.units, "runoff-units", "", "runoff units: m3 (volume per step) or m3/s (default: the file's units attribute)")
	fs.Float64Var(&c.stepSec, "step", 0, "runoff step in seconds (default: the file's time spacing)")
	fs.Float64Var(&c.subSec, "substep", 0, "routing sub-step in seconds (default: the runoff step)")
	fs.StringVar(&c.observed, "observed", "", "observed discharge (m3/s): CSV time,<rivid>,… (empty or NaN = missing) or netCDF Qout(time, rivid)")
	fs.StringVar(&c.observedVar, "observed-var", "", "variable of a netCDF --observed file (default: guessed, e.g. Qout)")
	fs.StringVar(&c.params, "params", "", "parameters to calibrate, comma-separated (default: every parameter of the IRF with a gradient)")
	fs.StringVar(&c.bounds, "bounds", "", "name=min:max,… (max inf: log transform above min); k in seconds, others in runoff steps (default k=1800:86400,x=0:0.5)")
	fs.StringVar(&c.mapSpec, "map", "reach", "free variables: reach (one per reach), group:FILE (rivid,group), loglinear:FILE or mlp:FILE (rivid,attr1,…)")
	fs.IntVar(&c.hidden, "hidden", 16, "hidden tanh units of --map mlp")
	fs.StringVar(&c.loss, "loss", "nse", "loss per gauge, averaged over gauges: nse (1-NSE), kge (1-KGE), mse or lognse (1-NSE of log flows)")
	fs.StringVar(&c.optimizer, "optimizer", "adam", "adam or lbfgs (L-BFGS on the whole training period)")
	fs.IntVar(&c.epochs, "epochs", 100, "optimizer iterations (one window each for adam)")
	fs.Float64Var(&c.lr, "lr", 0.1, "Adam's learning rate")
	fs.Float64Var(&c.ridge, "ridge", 0, "prior term: add RIDGE * mean((z - z0)^2) over the free variables z to the training loss, pulling them towards the prior's z0 (per-reach k the gauges cannot tell apart stays at the prior)")
	fs.StringVar(&c.qinit, "qinit", "", "initial discharge file (RAPID qinit: one value per reach, rapid_connect order): routing starts from it (with --window, every window does)")
	fs.StringVar(&c.trainUntil, "train-until", "", "date/time (as in the runoff's time coordinate) where training ends and validation begins (default: train on everything)")
	fs.IntVar(&c.warmup, "warmup", -1, "runoff steps at the start of each routed window left out of the loss (default: twice the longest travel time of the prior, at most a quarter of the training period)")
	fs.IntVar(&c.window, "window", 0, "loss steps per Adam iteration, in random windows of the training period (0: the whole period)")
	fs.IntVar(&c.patience, "patience", 0, "stop after this many validations without improvement (0: run every epoch)")
	fs.IntVar(&c.validEvery, "valid-every", 1, "validate every so many epochs")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed (windows, MLP initial weights)")
	fs.StringVar(&c.memBudget, "mem-budget", "", "memory budget, e.g. 1GiB: a basin whose gradient does not fit is calibrated cluster by cluster, headwaters first (--map reach: each cluster in turn against its own gauges; a shared map: the whole basin's exact gradient, computed cluster by cluster, at every iteration)")
	fs.StringVar(&c.validRapid, "valid-rapid", "", "validate on another basin (learning a map): its RAPID folder")
	fs.StringVar(&c.validRunoff, "valid-runoff", "", "with --valid-rapid: its runoff file")
	fs.StringVar(&c.validObserved, "valid-observed", "", "with --valid-rapid: its observed discharge")
	fs.StringVar(&c.validAttrs, "valid-attributes", "", "with --valid-rapid and --map loglinear/mlp: its reach attributes")
	fs.StringVar(&c.out, "out", "", "output folder: k.csv, x.csv (or params.csv), map.json, report.csv, history.csv, calibration.html")
}

// calJob is a checked calibrate command.
type calJob struct {
	c       calFlags
	rf      *routeFlags
	irf     diffroute.IRF
	names   []string
	loss    calibrate.Loss
	mapKind string
	mapFile string
	budget  int64
}

// check validates every flag value before any file is read.
func (c *calFlags) check(rf *routeFlags) (*calJob, error) {
	for name, v := range map[string]string{"rapid": c.rapid, "runoff": c.runoff, "observed": c.observed, "out": c.out} {
		if v == "" {
			return nil, usageError{fmt.Sprintf("calibrate: --%s is required", name)}
		}
	}
	if err := rf.validate("calibrate"); err != nil {
		return nil, err
	}
	if err := checkUnits("calibrate", c.units); err != nil {
		return nil, err
	}
	j := &calJob{c: *c, rf: rf}
	var err error
	if j.irf, err = diffroute.LookupIRF(rf.irf); err != nil {
		return nil, usageError{"calibrate: " + strings.TrimPrefix(err.Error(), "diffroute: ")}
	}
	if len(j.irf.GradParams) == 0 {
		return nil, usageError{fmt.Sprintf("calibrate: IRF %s has no parameter gradient; calibrate one of the IRFs that do (see diffroute irfs)", rf.irf)}
	}
	j.names = j.irf.GradParams
	if c.params != "" {
		j.names = nil
		for _, name := range strings.Split(c.params, ",") {
			name = strings.TrimSpace(name)
			switch {
			case !slices.Contains(j.irf.Params, name):
				return nil, usageError{fmt.Sprintf("calibrate: --params %s: IRF %s has no parameter %q (it takes %s)", c.params, rf.irf, name, strings.Join(j.irf.Params, ", "))}
			case j.irf.GradParam(name) != nil:
				return nil, usageError{fmt.Sprintf("calibrate: --params %s: %s", c.params, strings.TrimPrefix(j.irf.GradParam(name).Error(), "diffroute: "))}
			case slices.Contains(j.names, name):
				return nil, usageError{fmt.Sprintf("calibrate: --params %s: %s given twice", c.params, name)}
			}
			j.names = append(j.names, name)
		}
	}
	if _, err := calibrate.ParseBounds(c.bounds, j.names, nil); err != nil {
		return nil, usageError{"calibrate: --" + err.Error()}
	}
	if j.loss, err = calibrate.ParseLoss(c.loss); err != nil {
		return nil, usageError{fmt.Sprintf("calibrate: --loss %s: want nse, kge, mse or lognse", c.loss)}
	}
	if c.optimizer != "adam" && c.optimizer != "lbfgs" {
		return nil, usageError{fmt.Sprintf("calibrate: --optimizer %s: want adam or lbfgs", c.optimizer)}
	}
	switch {
	case c.epochs < 1:
		return nil, usageError{fmt.Sprintf("calibrate: --epochs %d: want at least 1", c.epochs)}
	case !(c.lr > 0) || math.IsInf(c.lr, 0):
		return nil, usageError{fmt.Sprintf("calibrate: --lr %v: want a positive learning rate", c.lr)}
	case c.warmup < -1:
		return nil, usageError{fmt.Sprintf("calibrate: --warmup %d: want steps ≥ 0", c.warmup)}
	case !(c.ridge >= 0) || math.IsInf(c.ridge, 0):
		return nil, usageError{fmt.Sprintf("calibrate: --ridge %v: want a finite value ≥ 0", c.ridge)}
	case c.window < 0 || c.patience < 0 || c.validEvery < 1:
		return nil, usageError{"calibrate: --window and --patience must be ≥ 0, --valid-every ≥ 1"}
	case c.hidden < 1 || c.hidden > 1024:
		return nil, usageError{fmt.Sprintf("calibrate: --hidden %d: want 1 to 1024 units", c.hidden)}
	}
	kind, file, _ := strings.Cut(c.mapSpec, ":")
	switch kind {
	case "reach":
		if file != "" {
			return nil, usageError{"calibrate: --map reach takes no file"}
		}
	case "group", "loglinear", "mlp":
		if file == "" {
			return nil, usageError{fmt.Sprintf("calibrate: --map %s needs a file: --map %s:FILE", kind, kind)}
		}
	default:
		return nil, usageError{fmt.Sprintf("calibrate: --map %s: want reach, group:FILE, loglinear:FILE or mlp:FILE", c.mapSpec)}
	}
	j.mapKind, j.mapFile = kind, file
	if j.budget, err = parseBudget(c.memBudget); err != nil {
		return nil, err
	}
	valid := []string{c.validRapid, c.validRunoff, c.validObserved}
	if slices.ContainsFunc(valid, func(s string) bool { return s != "" }) || c.validAttrs != "" {
		if slices.Contains(valid, "") {
			return nil, usageError{"calibrate: validating on another basin needs --valid-rapid, --valid-runoff and --valid-observed"}
		}
		if kind != "loglinear" && kind != "mlp" || c.validAttrs == "" {
			return nil, usageError{"calibrate: another basin can validate a learned map only: --map loglinear/mlp with --valid-attributes"}
		}
		if c.trainUntil != "" {
			return nil, usageError{"calibrate: validate in time (--train-until) or on another basin (--valid-rapid), not both"}
		}
	}
	if err := checkRAPIDDir("calibrate", c.rapid); err != nil {
		return nil, err
	}
	if c.validRapid != "" {
		if err := checkRAPIDDir("calibrate", c.validRapid); err != nil {
			return nil, fmt.Errorf("%s (--valid-rapid)", err)
		}
	}
	for _, in := range []struct{ flag, path string }{
		{"runoff", c.runoff}, {"observed", c.observed}, {"prior", rf.paramsFile}, {"map", file}, {"qinit", c.qinit},
		{"valid-runoff", c.validRunoff}, {"valid-observed", c.validObserved}, {"valid-attributes", c.validAttrs},
	} {
		if err := checkInputFile("calibrate", in.flag, in.path); err != nil {
			return nil, err
		}
	}
	if err := checkWritable("calibrate", "out", c.out, true); err != nil {
		return nil, err
	}
	// --out beside the inputs (the --rapid folder, say) would replace its
	// k.csv and x.csv, the prior, with the calibrated values.
	inputs := []string{c.runoff, c.observed, rf.paramsFile, file, c.qinit, c.validRunoff, c.validObserved, c.validAttrs}
	inputs = append(append(inputs, rapidInputs(c.rapid)...), rapidInputs(c.validRapid)...)
	for _, name := range calibrateOutputs {
		if in := inputAt(filepath.Join(c.out, name), inputs); in != "" {
			return nil, usageError{fmt.Sprintf("calibrate: --out %s would replace the input file %s with its %s; write the calibration elsewhere", c.out, in, name)}
		}
	}
	return j, nil
}

// calBasin is one basin read for calibration.
type calBasin struct {
	dir    string
	cfg    *data.RAPID
	basin  calibrate.Basin
	step   time.Duration
	f      int
	attrs  *calibrate.Attributes
	group  []int
	labels []string // group labels, by group index
	times  []time.Time
}

// readBasin reads a RAPID folder, its runoff and observed discharge, and
// aligns them; every bad input is an error before any routing.
func (j *calJob) readBasin(rapidDir, runoffPath, obsPath, attrPath, qinit string) (*calBasin, error) {
	step, sub, err := stepFlags(j.c.stepSec, j.c.subSec)
	if err != nil {
		return nil, err
	}
	pc := j.rf.config(io.Discard)
	// No warnings: the oscillation warning is for routing the prior, not
	// the calibrated parameters.
	pc.Log, pc.Warn, pc.Progress = nil, nil, nil
	pc.RAPID, pc.Runoff, pc.RunoffVar, pc.RunoffUnits, pc.Step, pc.SubStep = rapidDir, runoffPath, j.c.runoffVar, j.c.units, step, sub
	pc.Qinit = qinit
	in, err := pipeline.Open(pc)
	if err != nil {
		return nil, cliError(err)
	}
	defer in.Close()
	cfg, opts, src := in.RAPID, in.Options, in
	step, f := in.Step, in.Options.SubSteps
	runoff, err := in.Read(0, in.Steps())
	if err != nil {
		return nil, err
	}
	net := cfg.Network
	if runoff, err = runoff.SelectIDs(net.IDs()); err != nil {
		return nil, err
	}
	times, err := parseLabels(src.Path, runoff.Times)
	if err != nil {
		return nil, err
	}
	g, err := readObserved(obsPath, j.c.observedVar, cfg, times)
	if err != nil {
		return nil, err
	}
	b := &calBasin{dir: rapidDir, cfg: cfg, step: step, f: f, times: times,
		basin: calibrate.Basin{Net: net, Options: opts, Runoff: runoff, Gauges: g}}
	if attrPath != "" {
		switch j.mapKind {
		case "group":
			if b.group, b.labels, err = readGroups(attrPath, net); err != nil {
				return nil, err
			}
		case "loglinear", "mlp":
			if b.attrs, err = readAttributes(attrPath, net); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}

// parseLabels parses a runoff file's time labels: observed discharge is
// matched to runoff steps by time.
func parseLabels(path string, labels []string) ([]time.Time, error) {
	times := make([]time.Time, len(labels))
	for t, s := range labels {
		v, err := data.ParseTime(s)
		if err != nil {
			return nil, fmt.Errorf("%s: step %d: time label %q is not a date, so observed discharge cannot be matched to it", path, t, s)
		}
		times[t] = v
	}
	return times, nil
}

// readObserved reads observed discharge and aligns it with the runoff
// steps by time: observations at other times are ignored; gauges outside
// the network, no common time, and gauges with no observation in common
// time are errors naming the file.
func readObserved(path, varName string, cfg *data.RAPID, times []time.Time) (*calibrate.Gauges, error) {
	if _, err := data.SeriesFormatFor(path, false); err != nil {
		return nil, usageError{"calibrate: --observed " + err.Error()}
	}
	obs, err := data.ReadSeries(path, &data.NCOptions{Var: varName, IDs: cfg.ConnectIDs})
	if err != nil {
		return nil, err
	}
	if obs.N == 0 {
		return nil, fmt.Errorf("%s: no gauges", path)
	}
	for _, id := range obs.IDs {
		if _, ok := cfg.Network.Index(id); !ok {
			return nil, fmt.Errorf("%s: gauge reach %d is not in the network of %d reaches", path, id, cfg.Network.Len())
		}
	}
	at := make(map[int64]int, len(times))
	for t, v := range times {
		at[v.UnixNano()] = t
	}
	g := &calibrate.Gauges{IDs: slices.Clone(obs.IDs), Obs: make([][]float64, obs.N)}
	for k := range g.Obs {
		g.Obs[k] = make([]float64, len(times))
		for t := range g.Obs[k] {
			g.Obs[k][t] = math.NaN()
		}
	}
	common := 0
	for s, label := range obs.Times {
		v, err := data.ParseTime(label)
		if err != nil {
			return nil, fmt.Errorf("%s: time %q is not a date", path, label)
		}
		t, ok := at[v.UnixNano()]
		if !ok {
			continue
		}
		common++
		for k := range g.Obs {
			x := obs.At(0, k, s)
			if math.IsInf(float64(x), 0) {
				return nil, fmt.Errorf("%s: gauge reach %d at %s is %v", path, obs.IDs[k], label, x)
			}
			// A fill value such as -9999 would otherwise be fitted as
			// discharge; routed runoff has no reverse flow to match.
			if x < 0 {
				return nil, fmt.Errorf("%s: gauge reach %d at %s is %v: discharge must be ≥ 0 (leave missing values empty or NaN, not a fill value)", path, obs.IDs[k], label, x)
			}
			g.Obs[k][t] = float64(x)
		}
	}
	if common == 0 {
		span := func(l []string) string {
			if len(l) == 0 {
				return "no times"
			}
			return l[0] + " .. " + l[len(l)-1]
		}
		return nil, fmt.Errorf("%s: no time in common with the runoff (observed %s, runoff %s .. %s)", path, span(obs.Times),
			data.FormatTime(times[0]), data.FormatTime(times[len(times)-1]))
	}
	for k, id := range g.IDs {
		n := 0
		for _, v := range g.Obs[k] {
			if !math.IsNaN(v) {
				n++
			}
		}
		if n < 2 {
			return nil, fmt.Errorf("%s: gauge reach %d has %d observations within the runoff's times; a loss needs at least 2", path, id, n)
		}
	}
	return g, nil
}

// readReachTable reads a CSV with header rivid,<col>,… and one row per
// reach of the network (others are ignored), returning the fields of each
// reach (network order) and the column names.
func readReachTable(path string, net *diffroute.Network) ([][]string, []string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	lines := strings.Split(strings.ReplaceAll(strings.TrimPrefix(string(raw), "\ufeff"), "\r\n", "\n"), "\n")
	header := strings.Split(lines[0], ",")
	if strings.TrimSpace(header[0]) != "rivid" || len(header) < 2 {
		return nil, nil, fmt.Errorf("%s:1: header must be rivid,<column>,…", path)
	}
	names := make([]string, len(header)-1)
	for k, h := range header[1:] {
		names[k] = strings.TrimSpace(h)
		if names[k] == "" || slices.Contains(names[:k], names[k]) {
			return nil, nil, fmt.Errorf("%s:1: column %d: name %q is empty or repeated", path, k+2, names[k])
		}
	}
	rows := make([][]string, net.Len())
	for ln, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != len(header) {
			return nil, nil, fmt.Errorf("%s:%d: %d fields, header has %d", path, ln+2, len(f), len(header))
		}
		id, err := strconv.ParseInt(strings.TrimSpace(f[0]), 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: rivid %q is not an integer", path, ln+2, f[0])
		}
		i, ok := net.Index(id)
		if !ok {
			continue
		}
		if rows[i] != nil {
			return nil, nil, fmt.Errorf("%s:%d: reach %d given twice", path, ln+2, id)
		}
		rows[i] = f[1:]
	}
	for i, r := range rows {
		if r == nil {
			return nil, nil, fmt.Errorf("%s: no row for reach %d", path, net.ID(i))
		}
	}
	return rows, names, nil
}

func readAttributes(path string, net *diffroute.Network) (*calibrate.Attributes, error) {
	rows, names, err := readReachTable(path, net)
	if err != nil {
		return nil, err
	}
	a := &calibrate.Attributes{Names: names, Values: make([][]float64, len(rows)), IDs: make([]int64, len(rows))}
	for i, r := range rows {
		a.IDs[i] = net.ID(i)
		a.Values[i] = make([]float64, len(r))
		for k, s := range r {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s: reach %d: %s = %q is not a finite number", path, net.ID(i), names[k], s)
			}
			a.Values[i][k] = v
		}
	}
	return a, nil
}

func readGroups(path string, net *diffroute.Network) ([]int, []string, error) {
	rows, names, err := readReachTable(path, net)
	if err != nil {
		return nil, nil, err
	}
	if len(names) != 1 {
		return nil, nil, fmt.Errorf("%s:1: header must be rivid,group", path)
	}
	idx := map[string]int{}
	var labels []string
	group := make([]int, len(rows))
	for i, r := range rows {
		s := strings.TrimSpace(r[0])
		if s == "" {
			return nil, nil, fmt.Errorf("%s: reach %d has an empty group", path, net.ID(i))
		}
		k, ok := idx[s]
		if !ok {
			k = len(labels)
			idx[s] = k
			labels = append(labels, s)
		}
		group[i] = k
	}
	return group, labels, nil
}

// transforms returns the transform of each calibrated parameter in the
// IRF's parameter units (runoff steps for times): --bounds, else the
// defaults (Muskingum k 1,800 to 86,400 s, x 0 to 0.5).
func (j *calJob) transforms(step time.Duration) ([]calibrate.Transform, error) {
	scale := map[string]float64{}
	if j.rf.irf == "muskingum" {
		scale["k"] = 1 / step.Seconds() // --bounds k in seconds, as k.csv
	}
	b, err := calibrate.ParseBounds(j.c.bounds, j.names, scale)
	if err != nil {
		return nil, usageError{"calibrate: --" + err.Error()}
	}
	defaults := map[string]calibrate.Transform{}
	if j.rf.irf == "muskingum" {
		defaults["k"] = calibrate.Sigmoid{Min: 1800 * scale["k"], Max: 86400 * scale["k"]}
		defaults["x"] = calibrate.Sigmoid{Min: 0, Max: 0.5}
	}
	out := make([]calibrate.Transform, len(j.names))
	for k, name := range j.names {
		t, ok := b[name]
		if !ok {
			t, ok = defaults[name]
		}
		if !ok {
			return nil, usageError{fmt.Sprintf("calibrate: give bounds for %s: --bounds %s=MIN:MAX (runoff steps; MAX inf for a log transform)", name, name)}
		}
		out[k] = t
	}
	return out, nil
}

// space builds the search space of a basin. st is the standardisation of
// the training basin's attributes (nil: fit it on this basin's).
func (j *calJob) space(b *calBasin, tr []calibrate.Transform, st *calibrate.Standardization) (*calibrate.Space, *calibrate.Standardization, error) {
	n := b.basin.Net.Len()
	P := len(j.names)
	var m calibrate.Map
	switch j.mapKind {
	case "reach":
		m = calibrate.PerReach{P: P, N: n}
	case "group":
		g, err := calibrate.NewGrouped(P, b.group)
		if err != nil {
			return nil, nil, err
		}
		m = g
	case "loglinear", "mlp":
		var err error
		if st == nil {
			if st, err = calibrate.FitStandardization(b.attrs); err != nil {
				return nil, nil, err
			}
		}
		x, err := st.Apply(b.attrs)
		if err != nil {
			return nil, nil, err
		}
		if j.mapKind == "loglinear" {
			m = &calibrate.Linear{P: P, Attr: x}
		} else {
			m = &calibrate.MLP{P: P, H: j.c.hidden, Attr: x, Seed: j.c.seed}
		}
	}
	fixed := diffroute.Params{}
	for name, v := range b.basin.Options.Params {
		if !slices.Contains(j.names, name) {
			fixed[name] = v
		}
	}
	sp, err := calibrate.NewSpace(j.names, tr, m, n, fixed)
	return sp, st, err
}

// autoWarmup is twice the longest travel time through the network under
// the prior (Σ k along the path from a reach to its outlet), in runoff
// steps, or the IRF window for IRFs without a storage time.
func autoWarmup(net *diffroute.Network, p diffroute.Params, o diffroute.Options) int {
	var k []float64
	for _, name := range []string{"k", "tau", "delay"} {
		if v, ok := p[name]; ok {
			k = v
			break
		}
	}
	if k == nil {
		return max(o.MaxDelay, 1)
	}
	if n, ok := p["n"]; ok && len(n) == len(k) { // Nash: n reservoirs of tau
		k = slices.Clone(k)
		for i := range k {
			k[i] *= n[i]
		}
	}
	travel := make([]float64, net.Len())
	top := 0.0
	for _, i := range net.PreOrder() { // downstream reaches first
		t := k[i]
		if d := net.Down(int(i)); d >= 0 {
			t += travel[d]
		}
		travel[i] = t
		top = max(top, t)
	}
	return int(math.Ceil(2*top)) + 1
}

func (j *calJob) run(ctx context.Context, stdout io.Writer) error {
	start := time.Now()
	if j.budget > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// Make the collector work harder near the budget rather than let
		// garbage (the runoff as read, each cluster's buffers) push the
		// process over it.
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(j.budget * 8 / 10))
	}
	logf := func(format string, a ...any) {
		if !j.rf.quiet {
			fmt.Fprintf(stdout, format, a...)
		}
	}
	b, err := j.readBasin(j.c.rapid, j.c.runoff, j.c.observed, j.mapFile, j.c.qinit)
	if err != nil {
		return err
	}
	net := b.basin.Net
	T := b.basin.Runoff.T
	trainUntil := T
	if j.c.trainUntil != "" {
		at, err := data.ParseTime(j.c.trainUntil)
		if err != nil {
			return usageError{fmt.Sprintf("calibrate: --train-until %q is not a date/time", j.c.trainUntil)}
		}
		trainUntil, _ = slices.BinarySearchFunc(b.times, at, func(a, b time.Time) int { return a.Compare(b) })
		if trainUntil <= 0 || trainUntil >= T {
			return usageError{fmt.Sprintf("calibrate: --train-until %s is outside the runoff's times (%s .. %s): nothing left to train or validate on",
				j.c.trainUntil, data.FormatTime(b.times[0]), data.FormatTime(b.times[T-1]))}
		}
	}
	tr, err := j.transforms(b.step)
	if err != nil {
		return err
	}
	sp, st, err := j.space(b, tr, nil)
	if err != nil {
		return err
	}
	b.basin.Space = sp
	prior := b.basin.Options.Params
	if moved := sp.Clamp(prior); moved > 0 {
		logf("%d prior parameter values lay outside the bounds and were moved inside them\n", moved)
	}
	warmup := j.c.warmup
	if warmup < 0 {
		warmup = min(autoWarmup(net, prior, b.basin.Options), trainUntil/4)
	}
	if warmup >= trainUntil {
		return usageError{fmt.Sprintf("calibrate: --warmup %d leaves nothing of the %d training steps", warmup, trainUntil)}
	}
	if err := b.basin.Gauges.Check(net, T); err != nil {
		return fmt.Errorf("%s: %w", j.c.observed, err)
	}
	cfg := calibrate.Config{Basin: b.basin, Loss: j.loss, Warmup: warmup, Window: j.c.window, Optimizer: j.c.optimizer,
		LR: j.c.lr, Epochs: j.c.epochs, ValidEvery: j.c.validEvery, Patience: j.c.patience, Seed: j.c.seed, Ridge: j.c.ridge}
	if trainUntil < T {
		cfg.TrainUntil = trainUntil
	}
	var vb *calBasin
	if j.c.validRapid != "" {
		if vb, err = j.readBasin(j.c.validRapid, j.c.validRunoff, j.c.validObserved, j.c.validAttrs, ""); err != nil {
			return err
		}
		if vb.step != b.step || vb.f != b.f {
			return fmt.Errorf("%s: runoff step %v / sub-step count %d differs from the training basin's %v / %d", j.c.validRunoff, vb.step, vb.f, b.step, b.f)
		}
		if vb.basin.Space, _, err = j.space(vb, tr, st); err != nil {
			return err
		}
		cfg.Valid = &vb.basin
	}
	seq, cl, err := j.sequentialPlan(net, T, b.f)
	if err != nil {
		return err
	}
	logf("%s\ncalibrating %s of %s (%s map, %d free variables) against %d gauges: %s loss, %s, %d epochs; training steps %d..%d, validation %s\n",
		net, strings.Join(j.names, ","), j.rf.irf, j.mapKind, sp.Map.NumVars(), len(b.basin.Gauges.IDs), j.loss, j.c.optimizer, j.c.epochs,
		warmup, trainUntil, validSpan(cfg, T))
	every := max(1, j.c.epochs/20)
	cfg.Progress = func(e calibrate.Epoch) {
		if e.Epoch%every == 0 || e.Epoch == 1 || e.Epoch == j.c.epochs {
			v := ""
			if !math.IsNaN(e.Valid) {
				v = fmt.Sprintf("  valid %.5g", e.Valid)
			}
			logf("  epoch %4d  train %.5g%s  (%v)\n", e.Epoch, e.Train, v, e.Elapsed.Round(time.Millisecond))
		}
	}
	var params diffroute.Params
	var history []calibrate.Epoch
	var z, z0 []float64
	if seq && cfg.Valid != nil {
		return usageError{"calibrate: a basin calibrated cluster by cluster validates in time, not on another basin"}
	}
	if seq && j.mapKind == "reach" {
		logf("the gradient of the whole basin does not fit --mem-budget %s: calibrating %d clusters in turn, headwaters first\n", j.c.memBudget, cl.Len())
		cfg.Progress = nil
		p, res, err := calibrate.Sequential(ctx, cfg, cl, func(r calibrate.ClusterResult) {
			if r.Result != nil {
				h := r.Result.History
				logf("  cluster %d/%d: %d reaches, %d gauges, loss %.5g -> %.5g (%s)\n", r.Cluster+1, cl.Len(), r.Reaches, r.Gauges, h[0].Train, h[len(h)-1].Train, r.Result.Stopped)
			}
		})
		if err != nil {
			return err
		}
		params = p
		for _, r := range res {
			if r.Result != nil {
				history = append(history, r.Result.History...)
			}
		}
	} else {
		run := cfg
		var reaches []int32
		if cfg.Valid == nil {
			if run, reaches, err = gaugedOnly(cfg); err != nil {
				return err
			}
			if reaches != nil && j.mapKind == "reach" {
				logf("calibrating the %d reaches that drain to a gauge (the other %d have no gradient and keep the prior)\n", len(reaches), net.Len()-len(reaches))
			} else if reaches != nil {
				logf("routing the %d reaches that drain to a gauge at each iteration; the learned map then gives all %d reaches their parameters\n", len(reaches), net.Len())
			}
		}
		if seq {
			// A shared map: the whole basin's exact gradient, cluster by
			// cluster (every reach feels every gauge downstream of it).
			if reaches != nil {
				if seq, cl, err = j.sequentialPlan(run.Net, T, b.f); err != nil {
					return err
				}
			}
			if seq {
				logf("the gradient does not fit --mem-budget %s: each iteration runs it cluster by cluster (%d clusters, headwaters first and back)\n", j.c.memBudget, cl.Len())
				run.Gradient, run.Forward = calibrate.StagedGradient(cl), calibrate.GaugeForward
			}
		}
		res, err := calibrate.Run(ctx, run)
		if err != nil {
			return err
		}
		params, history, z, z0 = res.Params, res.History, res.Z, res.Prior
		if reaches != nil && j.mapKind != "reach" {
			params = sp.Params(z)
		} else if reaches != nil {
			params = diffroute.Params{}
			for name, v := range prior {
				params[name] = slices.Clone(v)
			}
			for _, name := range j.names {
				for k, i := range reaches {
					params[name][i] = res.Params[name][k]
				}
			}
		}
		logf("%s; kept epoch %d\n", res.Stopped, keptEpoch(res))
	}
	rep, err := j.report(ctx, b, prior, params, warmup, trainUntil)
	if err != nil {
		return err
	}
	var vrep *calReport
	var vparams diffroute.Params
	if vb != nil {
		vparams = vb.basin.Space.Params(z)
		vprior := vb.basin.Space.Params(z0) // the map's starting point, applied to the other basin
		if vrep, err = j.report(ctx, vb, vprior, vparams, warmup, vb.basin.Runoff.T); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(j.c.out, 0o755); err != nil {
		return err
	}
	if err := j.writeParams(j.c.out, b, params); err != nil {
		return err
	}
	if z != nil && (j.mapKind == "loglinear" || j.mapKind == "mlp" || j.mapKind == "group") {
		if err := j.writeMap(filepath.Join(j.c.out, "map.json"), b, sp, st, z); err != nil {
			return err
		}
	}
	if vb != nil {
		if err := os.MkdirAll(filepath.Join(j.c.out, "valid"), 0o755); err != nil {
			return err
		}
		if err := j.writeParams(filepath.Join(j.c.out, "valid"), vb, vparams); err != nil {
			return err
		}
		if err := writeReport(filepath.Join(j.c.out, "valid", "report.csv"), vrep); err != nil {
			return err
		}
	}
	if err := writeReport(filepath.Join(j.c.out, "report.csv"), rep); err != nil {
		return err
	}
	if err := writeHistory(filepath.Join(j.c.out, "history.csv"), history); err != nil {
		return err
	}
	if err := writeCalibrationHTML(filepath.Join(j.c.out, "calibration.html"), j, history, rep, vrep); err != nil {
		return err
	}
	logf("%s\nwrote %s in %v\n", rep.summary(), j.c.out, time.Since(start).Round(time.Millisecond))
	if vrep != nil {
		logf("other basin (%s): %s\n", j.c.validRapid, vrep.summary())
	}
	return nil
}

// gaugedOnly restricts a calibration to the reaches that drain to a gauge:
// the others have no gradient, and routing them at every iteration would
// only cost time (a shared map keeps its free variables). It returns the restricted configuration
// and the full-network index of each of its reaches (nil: nothing to cut).
func gaugedOnly(c calibrate.Config) (calibrate.Config, []int32, error) {
	closure, err := c.Net.UpstreamClosure(c.Gauges.IDs)
	if err != nil || len(closure) == c.Net.Len() {
		return c, nil, err
	}
	sub, err := c.Net.Subnetwork(closure)
	if err != nil {
		return c, nil, err
	}
	x, err := c.Runoff.SelectIDs(sub.IDs())
	if err != nil {
		return c, nil, err
	}
	o := c.Options
	o.Params = o.Params.Subset(closure)
	if o.InitialQ != nil {
		q := make([]float64, len(closure))
		for k, i := range closure {
			q[k] = c.Options.InitialQ[i]
		}
		o.InitialQ = q
	}
	sp, err := c.Space.Restrict(closure)
	if err != nil {
		return c, nil, err
	}
	c.Basin = calibrate.Basin{Net: sub, Options: o, Runoff: x, Gauges: c.Gauges, Space: sp}
	return c, closure, nil
}

func keptEpoch(r *calibrate.Result) int {
	if r.Best < 0 {
		return 0
	}
	return r.History[r.Best].Epoch
}

func validSpan(c calibrate.Config, T int) string {
	switch {
	case c.Valid != nil:
		return "on another basin"
	case c.TrainUntil > 0 && c.TrainUntil < T:
		return fmt.Sprintf("steps %d..%d", c.TrainUntil, T)
	}
	return "none"
}

// sequentialPlan decides whether the whole basin's gradient fits the
// memory budget, and otherwise cuts clusters that do. A gradient run holds
// about 32 bytes per reach and step (runoff, discharge and their adjoints
// in float32, the float64 forward and lateral inflow).
func (j *calJob) sequentialPlan(net *diffroute.Network, T, f int) (bool, *diffroute.Clusters, error) {
	if j.budget == 0 {
		return false, nil, nil
	}
	const perReachStep = 32
	runoff := int64(net.Len()) * int64(T) * 4 // the whole runoff stays in memory
	whole := int64(net.Len())*int64(T)*perReachStep + runoff
	if whole <= j.budget*3/4 {
		return false, nil, nil
	}
	left := j.budget*3/4 - runoff
	maxNodes := int(left / (int64(T)*perReachStep + int64(T)*int64(f)*4))
	if maxNodes < 16 {
		return false, nil, fmt.Errorf("calibrate: --mem-budget %s: the runoff alone takes %s; raise the budget", j.c.memBudget, humanize.IBytes(uint64(runoff)))
	}
	paths := int64(maxNodes) * 64
	for range 12 {
		cl, err := diffroute.Schedule(net, paths, maxNodes)
		if err != nil {
			return false, nil, err
		}
		if cl.MaxClusterNodes() <= maxNodes {
			return true, cl, nil
		}
		paths /= 2
	}
	return false, nil, fmt.Errorf("calibrate: --mem-budget %s: cannot cut clusters of at most %d reaches", j.c.memBudget, maxNodes)
}

// calReport holds per-gauge scores before and after calibration.
type calReport struct {
	ids                []int64
	nseTrain, nseValid [2][]float64 // [before, after]
	kgeTrain, kgeValid [2][]float64
	obs                [][]float64
	before, after      [][]float32 // discharge at each gauge
	times              []time.Time
	hasValid           bool
}

// report routes the gauges' upstream closure with the prior and the
// calibrated parameters and scores both.
func (j *calJob) report(ctx context.Context, b *calBasin, prior, after diffroute.Params, warmup, trainUntil int) (*calReport, error) {
	g := b.basin.Gauges
	T := b.basin.Runoff.T
	r := &calReport{ids: g.IDs, obs: g.Obs, times: b.times, hasValid: trainUntil < T}
	for k, p := range []diffroute.Params{prior, after} {
		o := b.basin.Options
		o.Params = p
		sel, err := diffroute.Select(b.basin.Net, o, g.IDs)
		if err != nil {
			return nil, err
		}
		q, err := sel.Route(ctx, b.basin.Runoff)
		if err != nil {
			return nil, err
		}
		series := make([][]float32, len(g.IDs))
		for i := range series {
			series[i] = slices.Clone(q.Series(0, i))
		}
		if k == 0 {
			r.before = series
		} else {
			r.after = series
		}
		if r.nseTrain[k], err = g.Scores(calibrate.NSE, q, calibrate.Window{Warmup: warmup}, trainUntil); err != nil {
			return nil, err
		}
		if r.kgeTrain[k], err = g.Scores(calibrate.KGE, q, calibrate.Window{Warmup: warmup}, trainUntil); err != nil {
			return nil, err
		}
		if r.hasValid {
			r.nseValid[k], _ = g.Scores(calibrate.NSE, q, calibrate.Window{Warmup: trainUntil}, T)
			r.kgeValid[k], _ = g.Scores(calibrate.KGE, q, calibrate.Window{Warmup: trainUntil}, T)
		}
	}
	return r, nil
}

// scores returns the after-calibration NSE that ranks gauges: validation
// when there is a validation period, else training.
func (r *calReport) scores() (before, after []float64) {
	if r.hasValid {
		return r.nseValid[0], r.nseValid[1]
	}
	return r.nseTrain[0], r.nseTrain[1]
}

func (r *calReport) summary() string {
	before, after := r.scores()
	what := "training"
	if r.hasValid {
		what = "validation"
	}
	return fmt.Sprintf("%s NSE over %d gauges: median %.4f -> %.4f, worst %.4f -> %.4f", what, len(r.ids),
		median(before), median(after), nanMin(before), nanMin(after))
}

func median(v []float64) float64 {
	s := slices.DeleteFunc(slices.Clone(v), math.IsNaN)
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func nanMin(v []float64) float64 {
	m := math.NaN()
	for _, x := range v {
		if !math.IsNaN(x) && !(x >= m) {
			m = x
		}
	}
	return m
}

func writeReport(path string, r *calReport) error {
	var b strings.Builder
	b.WriteString("rivid,nse_train_before,nse_train_after,kge_train_before,kge_train_after,nse_valid_before,nse_valid_after,kge_valid_before,kge_valid_after\n")
	num := func(v []float64, k int) string {
		if v == nil || math.IsNaN(v[k]) {
			return ""
		}
		return strconv.FormatFloat(v[k], 'f', 6, 64)
	}
	for k, id := range r.ids {
		fmt.Fprintf(&b, "%d,%s,%s,%s,%s,%s,%s,%s,%s\n", id,
			num(r.nseTrain[0], k), num(r.nseTrain[1], k), num(r.kgeTrain[0], k), num(r.kgeTrain[1], k),
			num(r.nseValid[0], k), num(r.nseValid[1], k), num(r.kgeValid[0], k), num(r.kgeValid[1], k))
	}
	return writeFileAtomic(path, []byte(b.String()))
}

func writeHistory(path string, h []calibrate.Epoch) error {
	var b strings.Builder
	b.WriteString("epoch,train_loss,valid_loss,elapsed_s\n")
	for _, e := range h {
		v := ""
		if !math.IsNaN(e.Valid) {
			v = strconv.FormatFloat(e.Valid, 'g', 8, 64)
		}
		fmt.Fprintf(&b, "%d,%s,%s,%.3f\n", e.Epoch, strconv.FormatFloat(e.Train, 'g', 8, 64), v, e.Elapsed.Seconds())
	}
	return writeFileAtomic(path, []byte(b.String()))
}

// writeParams writes the calibrated parameters where route and RAPID read
// them: for Muskingum k.csv (seconds) and x.csv in rapid_connect.csv order,
// reaches outside the basin keeping their values; for other IRFs
// params.csv (rivid,<name>,… in runoff steps, as route --params reads it).
func (j *calJob) writeParams(dir string, b *calBasin, p diffroute.Params) error {
	net := b.basin.Net
	if j.rf.irf != "muskingum" {
		var sb strings.Builder
		// Parameters left to the IRF's defaults (Nash's n) stay out.
		names := slices.DeleteFunc(slices.Clone(j.irf.Params), func(n string) bool { return len(p[n]) != net.Len() })
		sb.WriteString("rivid," + strings.Join(names, ",") + "\n")
		for i := range net.Len() {
			sb.WriteString(strconv.FormatInt(net.ID(i), 10))
			for _, name := range names {
				sb.WriteString("," + strconv.FormatFloat(p[name][i], 'g', 10, 64))
			}
			sb.WriteString("\n")
		}
		return writeFileAtomic(filepath.Join(dir, "params.csv"), []byte(sb.String()))
	}
	sec := b.step.Seconds()
	for _, name := range []string{"k", "x"} {
		path := filepath.Join(b.dir, "k.csv")
		if name == "x" {
			path = filepath.Join(b.dir, "x.csv")
		}
		old := make([]float64, len(b.cfg.ConnectIDs))
		if fh, err := os.Open(path); err == nil {
			vals, _, err := data.ParseValues(fh, path)
			fh.Close()
			if err == nil && len(vals) == len(old) {
				old = vals
			}
		}
		var sb strings.Builder
		for c, id := range b.cfg.ConnectIDs {
			v := old[c]
			if i, ok := net.Index(id); ok {
				v = p[name][i]
				if name == "k" {
					v *= sec
				}
			}
			sb.WriteString(strconv.FormatFloat(v, 'g', 10, 64) + "\n")
		}
		if err := writeFileAtomic(filepath.Join(dir, name+".csv"), []byte(sb.String())); err != nil {
			return err
		}
	}
	return nil
}

// mapFile is the learned map as written to map.json: enough to apply it
// to another basin's attributes.
type mapFile struct {
	Kind            string                     `json:"kind"`
	IRF             string                     `json:"irf"`
	Params          []string                   `json:"params"`
	Bounds          []string                   `json:"bounds"`
	Units           string                     `json:"units"`
	StepSeconds     float64                    `json:"step_seconds"`
	Hidden          int                        `json:"hidden,omitempty"`
	Groups          []string                   `json:"groups,omitempty"`
	Standardization *calibrate.Standardization `json:"standardization,omitempty"`
	Z               []float64                  `json:"z"`
}

func (j *calJob) writeMap(path string, b *calBasin, sp *calibrate.Space, st *calibrate.Standardization, z []float64) error {
	m := mapFile{Kind: j.mapKind, IRF: j.rf.irf, Params: j.names, Units: "bounds and parameters in runoff steps for times", StepSeconds: b.step.Seconds(), Standardization: st, Z: z}
	for _, t := range sp.Transforms {
		m.Bounds = append(m.Bounds, t.String())
	}
	switch j.mapKind {
	case "mlp":
		m.Hidden = j.c.hidden
	case "group":
		m.Groups = b.labels
	}
	out, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(out, '\n'))
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
