package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/route/basins"
	"github.com/diffroute-go/route/diffroute"
)

// basinFlags are the flags route takes only with --basins; every other
// route flag is passed on to the route command of each basin.
var basinFlags = map[string]bool{ // name -> takes a value
	"basins": true, "runoff": true, "out": true, "executor": true, "submit": false, "resume": false,
	"members": true, "only": true, "jobs": true, "mem-budget": true, "task-minutes": true, "cpus-per-task": true,
	"partition": true, "account": true, "max-parallel": true, "merge": false, "sbatch": true,
}

// isBasinsRun reports whether route's arguments ask for a multi-basin run.
func isBasinsRun(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && (name == "basins" || name == "resume") {
			return true
		}
	}
	return false
}

type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, " ") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

// runBasins is `route --basins DIR`: every basin of DIR routed by the local
// worker pool or as a Slurm job array.
func runBasins(ctx context.Context, args []string, stdout io.Writer) (err error) {
	const synopsis = "diffroute route --basins DIR --runoff NAME|FILE --out DIR [--executor local|slurm] [--submit] [--resume] [route flags]"
	fs := newFlags("route", synopsis)
	var rf routeFlags
	rf.register(fs)
	var mem memFlags
	mem.register(fs)
	fs.String("runoff-var", "", "runoff variable of a netCDF file (default: guessed)")
	fs.String("runoff-units", "", "runoff units: m3 (volume per step, RAPID) or m3/s")
	stepSec := fs.Float64("step", 0, "runoff step in seconds (default: the file's time spacing)")
	subSec := fs.Float64("substep", 0, "routing sub-step in seconds (default: the runoff step)")
	fs.String("qinit", "", "initial discharge file ({basin} and {member} are replaced)")
	fs.String("rapid", "", "not with --basins: each basin folder is a RAPID folder")
	for _, name := range []string{"out-format", "out-layout", "compress"} {
		fs.String(name, "", "not with --basins: each basin's output is OUT/<basin>/Qout.nc (RAPID Qout, netCDF classic)")
	}
	dir := fs.String("basins", "", "folder of basins: one RAPID folder per basin (or <basin>/configs, as GEOGLOWS VPUs)")
	runoff := fs.String("runoff", "", "runoff file name in each basin folder ({basin}, {member} replaced), or one file covering every basin")
	out := fs.String("out", "", "job folder: <basin>/Qout.nc per basin, manifest.csv, job.json, slurm/")
	members := fs.String("members", "", "ensemble members, comma-separated: one task per basin and member, {member} in --runoff")
	only := fs.String("only", "", "route only these basins (comma-separated names)")
	var ex executorFlags
	ex.register(fs, true)
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	defer func() { err = jobInterrupted("route", *out, err) }()
	if err := ex.check("route", *out, mem.budget); err != nil {
		return err
	}
	ex.quiet = rf.quiet
	resume := ex.resume
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"rapid", "outputs", "pixel-runoff", "weights", "out-format", "out-layout", "compress"} {
		if set[name] {
			return usageError{fmt.Sprintf("route: --%s does not apply with --basins (outputs are OUT/<basin>/Qout.nc, RAPID's netCDF)", name)}
		}
	}
	if err := rf.validate("route"); err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		if !rf.quiet {
			fmt.Fprintf(stdout, format, a...)
		}
	}

	var job *basins.Job
	if *resume {
		if job, err = basins.Load(*out); err != nil {
			return fmt.Errorf("route: --resume: %w", err)
		}
		logf("resuming the job in %s (%d tasks)\n", job.Out, len(job.Tasks))
	} else {
		if *dir == "" || *runoff == "" {
			return usageError{"route: --basins and --runoff are required"}
		}
		f := 1
		if *subSec > 0 {
			f = max(1, int(math.Round(max(*stepSec, 86400) / *subSec)))
		}
		var mlist, olist []string
		if *members != "" {
			mlist = strings.Split(*members, ",")
		}
		if *only != "" {
			olist = strings.Split(*only, ",")
		}
		job, err = basins.Prepare(basins.PrepareOptions{
			Basins: *dir, Out: *out, Runoff: *runoff, Members: mlist, Only: olist, SubSteps: f,
			RouteArgs:   forwardArgs(args, basinFlags),
			Options:     diffroute.Options{IRF: rf.irf, Method: diffroute.Method(rf.method), MaxDelay: rf.maxDelay},
			TaskSeconds: *ex.taskMin * 60,
		})
		if err != nil {
			return err
		}
		if job, err = saveOrContinue("route", job, logf); err != nil {
			return err
		}
	}

	return ex.run(ctx, job, stdout, logf)
}

// saveOrContinue saves a prepared job, or continues the same job already
// in its folder (keeping its bundles, which its Slurm submissions refer to).
func saveOrContinue(cmd string, job *basins.Job, logf func(string, ...any)) (*basins.Job, error) {
	if old, err := basins.Load(job.Out); err == nil {
		if !old.Same(job) {
			return nil, fmt.Errorf("%s: %s holds another job (other basins, inputs or flags): choose another --out, or --resume it", cmd, job.Out)
		}
		job = old
		logf("continuing the job in %s\n", job.Out)
	} else if err := job.Save(); err != nil {
		return nil, err
	}
	var reaches int
	var req int64
	for _, t := range job.Tasks {
		reaches += t.Reaches
		req = max(req, t.Request)
	}
	logf("%d tasks (%d reaches in all) in %s; largest planned request %s\n", len(job.Tasks), reaches, job.Out, humanize.IBytes(uint64(req)))
	return job, nil
}

// calBasinFlags are the flags calibrate takes only with --basins (and its
// own --runoff, --observed, --out and --mem-budget, which the job sets per
// basin); every other calibrate flag is passed on to each basin's.
var calBasinFlags = map[string]bool{ // name -> takes a value
	"basins": true, "runoff": true, "observed": true, "out": true, "executor": true, "submit": false, "resume": false,
	"only": true, "jobs": true, "mem-budget": true, "task-minutes": true, "cpus-per-task": true,
	"partition": true, "account": true, "max-parallel": true, "sbatch": true,
}

// runCalibrateBasins is `calibrate --basins DIR`: one calibration per
// basin, by the local worker pool or as a Slurm job array, and a summary.
func runCalibrateBasins(ctx context.Context, args []string, stdout io.Writer) (err error) {
	const synopsis = "diffroute calibrate --basins DIR --runoff NAME|FILE --observed NAME|FILE --out DIR [--executor local|slurm] [--submit] [--resume] [calibrate flags]"
	fs := newFlags("calibrate", synopsis)
	var rf routeFlags
	var c calFlags
	c.register(fs, &rf)
	dir := fs.String("basins", "", "folder of basins: one RAPID folder per basin (or <basin>/configs, as GEOGLOWS VPUs)")
	only := fs.String("only", "", "calibrate only these basins (comma-separated names)")
	var ex executorFlags
	ex.register(fs, false)
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	defer func() { err = jobInterrupted("calibrate", c.out, err) }()
	if err := ex.check("calibrate", c.out, c.memBudget); err != nil {
		return err
	}
	ex.quiet = rf.quiet
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"rapid", "valid-rapid", "valid-runoff", "valid-observed", "valid-attributes"} {
		if set[name] {
			return usageError{fmt.Sprintf("calibrate: --%s does not apply with --basins (each basin is calibrated on its own)", name)}
		}
	}
	logf := func(format string, a ...any) {
		if !rf.quiet {
			fmt.Fprintf(stdout, format, a...)
		}
	}
	var job *basins.Job
	if *ex.resume {
		if job, err = basins.Load(c.out); err != nil {
			return fmt.Errorf("calibrate: --resume: %w", err)
		}
		logf("resuming the job in %s (%d tasks)\n", job.Out, len(job.Tasks))
		return ex.run(ctx, job, stdout, logf)
	}
	if *dir == "" || c.runoff == "" || c.observed == "" {
		return usageError{"calibrate: --basins, --runoff and --observed are required"}
	}
	step, sub, err := stepFlags(c.stepSec, c.subSec)
	if err != nil {
		return err
	}
	f := 1
	if sub > 0 {
		f = max(1, int(math.Round(float64(max(step, 24*time.Hour))/float64(sub))))
	}
	var olist []string
	if *only != "" {
		olist = strings.Split(*only, ",")
	}
	job, err = basins.Prepare(basins.PrepareOptions{
		Kind: basins.KindCalibrate, Basins: *dir, Out: c.out, Runoff: c.runoff, Observed: c.observed, Only: olist,
		SubSteps: f, Epochs: c.epochs, RouteArgs: forwardArgs(args, calBasinFlags),
		Options:     diffroute.Options{IRF: rf.irf, MaxDelay: rf.maxDelay},
		TaskSeconds: *ex.taskMin * 60,
	})
	if err != nil {
		return err
	}
	// Every flag checked against the first basin before any task runs.
	first := job.Tasks[0]
	probe := c
	probe.rapid, probe.runoff, probe.observed, probe.out = first.RAPID, first.Runoff, first.Observed, filepath.Join(job.Out, first.Dir())
	rf.method = string(diffroute.Recursive)
	if _, err := probe.check(&rf); err != nil {
		return err
	}
	if job, err = saveOrContinue("calibrate", job, logf); err != nil {
		return err
	}
	return ex.run(ctx, job, stdout, logf)
}

// executorFlags are the flags of a multi-basin run that say where and how
// its tasks run.
type executorFlags struct {
	executor              *string
	submit, resume, merge *bool
	jobs, cpus, maxPar    *int
	taskMin               *float64
	partition, account    *string
	extra                 repeated
	budget                int64
	quiet                 bool
}

func (e *executorFlags) register(fs *flag.FlagSet, merge bool) {
	e.executor = fs.String("executor", "local", "where basins run: local (a worker pool on this machine) or slurm (an sbatch job array)")
	e.submit = fs.Bool("submit", false, "slurm: submit the scripts with sbatch (otherwise run OUT/slurm/submit.sh yourself)")
	e.resume = fs.Bool("resume", false, "continue the job in --out: rerun (resubmit) only tasks that are missing or failed")
	e.jobs = fs.Int("jobs", 0, "local: most basins at once (default: the number of CPUs)")
	e.taskMin = fs.Float64("task-minutes", 0, "slurm: bundle small basins into array tasks of about this many minutes (0: one basin per task)")
	e.cpus = fs.Int("cpus-per-task", 1, "CPUs (--workers) per task: of each Slurm array task, of each local task")
	e.partition = fs.String("partition", "", "slurm: partition")
	e.account = fs.String("account", "", "slurm: account")
	e.maxPar = fs.Int("max-parallel", 0, "slurm: most array tasks running at once (%N)")
	fs.Var(&e.extra, "sbatch", "slurm: another sbatch option for every script, e.g. --sbatch=--qos=normal (repeatable)")
	if merge {
		e.merge = fs.Bool("merge", false, "also write the discharge of all basins as one file, OUT/Qout.nc")
	} else {
		e.merge = new(bool)
	}
}

// check validates the executor flags (cmd names the command in errors).
func (e *executorFlags) check(cmd, out, memBudget string) error {
	if out == "" {
		return usageError{cmd + ": --basins needs --out DIR (the job folder)"}
	}
	if *e.executor != "local" && *e.executor != "slurm" {
		return usageError{fmt.Sprintf("%s: --executor %q: want local or slurm", cmd, *e.executor)}
	}
	if *e.submit && *e.executor != "slurm" {
		return usageError{cmd + ": --submit needs --executor slurm"}
	}
	var err error
	if e.budget, err = parseBudget(memBudget); err != nil {
		return usageError{fmt.Sprintf("%s: --mem-budget %s: %v", cmd, memBudget, err)}
	}
	if *e.jobs < 0 || *e.cpus < 1 || *e.maxPar < 0 || *e.taskMin < 0 || math.IsNaN(*e.taskMin) {
		return usageError{cmd + ": --jobs, --max-parallel and --task-minutes must be ≥ 0, --cpus-per-task ≥ 1"}
	}
	return nil
}

// run runs a prepared job on the chosen executor: locally, then its
// gather step; or as Slurm arrays (submitted with --submit).
func (e *executorFlags) run(ctx context.Context, job *basins.Job, stdout io.Writer, logf func(string, ...any)) error {
	if *e.executor == "slurm" {
		return slurmRun(ctx, job, basins.SlurmOptions{CPUs: *e.cpus, Partition: *e.partition, Account: *e.account, MaxParallel: *e.maxPar, Merge: *e.merge, Extra: e.extra},
			*e.resume, *e.submit, stdout, logf)
	}
	var progress io.Writer
	if !e.quiet {
		progress = stdout
	}
	rep, err := job.RunLocal(ctx, basins.LocalOptions{Budget: e.budget, Jobs: *e.jobs, Workers: *e.cpus, Progress: progress, Reuse: true})
	if rep != nil {
		bud := "no budget"
		if e.budget > 0 {
			bud = "budget " + humanize.IBytes(uint64(e.budget))
		}
		verb := "routed"
		if job.IsCalibration() {
			verb = "calibrated"
		}
		logf("%d %s, %d skipped (output exists), %d failed in %v; peak RSS of the tasks running together %s, reserved %s (%s)\n",
			rep.Done, verb, rep.Skipped, rep.Failed, rep.Elapsed.Round(1e6), humanize.IBytes(uint64(rep.PeakRSS)), humanize.IBytes(uint64(rep.PeakReserved)), bud)
	}
	if err != nil {
		return fmt.Errorf("%w; fix the input and rerun with --resume", err)
	}
	recs, err := job.Gather(*e.merge)
	if err != nil {
		return err
	}
	logf("wrote %s (%d tasks)", filepath.Join(job.Out, basins.ManifestCSV), len(recs))
	if *e.merge {
		logf(" and the merged discharge %s", job.MergedFile(""))
	}
	if job.IsCalibration() {
		logf(" and %s", filepath.Join(job.Out, basins.SummaryFile))
		if b, a, n, err := job.CalibrationScores(); err == nil {
			logf("\nmedian NSE over %d gauges: %.4f before, %.4f after", n, b, a)
		}
	}
	logf("\n")
	return nil
}

// slurmRun writes (and with submit, submits) the sbatch scripts for the
// bundles not done; with resume, only for those missing or failed.
func slurmRun(ctx context.Context, job *basins.Job, o basins.SlurmOptions, resume, submit bool, stdout io.Writer, logf func(string, ...any)) error {
	st, err := job.Status(ctx)
	if err != nil {
		return err
	}
	todo := basins.ToResubmit(st, job)
	if len(todo) == 0 {
		logf("every task is done or queued; nothing to submit (see 'diffroute jobs status %s')\n", job.Out)
		return nil
	}
	plan, err := job.WriteSlurm(o, todo)
	if err != nil {
		return err
	}
	for _, a := range plan.Arrays {
		logf("wrote %s: %d array tasks, --mem %s, --time %d min\n", a.Script, len(a.Bundles), humanize.IBytes(uint64(a.Mem)), a.Minutes)
	}
	logf("wrote %s (after the arrays succeed) and %s\n", plan.Gather, plan.Submit)
	if !submit {
		logf("submit with: %s\n", plan.Submit)
		return nil
	}
	s, err := job.Submit(ctx, plan)
	if err != nil {
		return err
	}
	var ids []string
	for _, a := range s.Arrays {
		ids = append(ids, a.JobID)
	}
	what := "submitted"
	if resume {
		what = fmt.Sprintf("resubmitted %d of %d bundles:", len(todo), len(job.Bundles))
	}
	logf("%s arrays %s, gather job %s; follow with: diffroute jobs status %s\n", what, strings.Join(ids, ", "), s.Gather, job.Out)
	return nil
}

// forwardArgs drops the flags only --basins runs take (and their values),
// keeping every other route flag for the basins' route commands.
func forwardArgs(args []string, own map[string]bool) []string {
	var out []string
	for k := 0; k < len(args); k++ {
		a := args[k]
		if a == "--" {
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes, mine := own[name]
		if !strings.HasPrefix(a, "-") || !mine {
			out = append(out, a)
			continue
		}
		if takes && !hasValue {
			k++ // skip the value
		}
	}
	return out
}

// jobInterrupted words a multi-basin run's Ctrl-C: unlike a single run it
// leaves output behind, each basin finished before it, and --resume runs
// only the rest.
func jobInterrupted(cmd, out string, err error) error {
	if err == nil || !(errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "context canceled")) {
		return err
	}
	return &plainError{fmt.Sprintf("interrupted: basins finished before it keep their output in %s; 'diffroute jobs status %s' lists them and 'diffroute %s --resume --out %s' runs the rest", out, out, cmd, out), err}
}
