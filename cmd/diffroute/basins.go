package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"

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
func runBasins(ctx context.Context, args []string, stdout io.Writer) error {
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
	executor := fs.String("executor", "local", "where basins run: local (a worker pool on this machine) or slurm (an sbatch job array)")
	submit := fs.Bool("submit", false, "slurm: submit the scripts with sbatch (otherwise run OUT/slurm/submit.sh yourself)")
	resume := fs.Bool("resume", false, "continue the job in --out: rerun (resubmit) only tasks that are missing or failed")
	members := fs.String("members", "", "ensemble members, comma-separated: one task per basin and member, {member} in --runoff")
	only := fs.String("only", "", "route only these basins (comma-separated names)")
	jobs := fs.Int("jobs", 0, "local: most basins at once (default: the number of CPUs)")
	taskMin := fs.Float64("task-minutes", 0, "slurm: bundle small basins into array tasks of about this many minutes (0: one basin per task)")
	cpus := fs.Int("cpus-per-task", 1, "CPUs (route --workers) per task: of each Slurm array task, of each local task")
	partition := fs.String("partition", "", "slurm: partition")
	account := fs.String("account", "", "slurm: account")
	maxPar := fs.Int("max-parallel", 0, "slurm: most array tasks running at once (%N)")
	merge := fs.Bool("merge", false, "also write the discharge of all basins as one file, OUT/Qout.nc")
	var extra repeated
	fs.Var(&extra, "sbatch", "slurm: another sbatch option for every script, e.g. --sbatch=--qos=normal (repeatable)")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"route: --basins needs --out DIR (the job folder)"}
	}
	if *executor != "local" && *executor != "slurm" {
		return usageError{fmt.Sprintf("route: --executor %q: want local or slurm", *executor)}
	}
	if *submit && *executor != "slurm" {
		return usageError{"route: --submit needs --executor slurm"}
	}
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
	budget, err := parseBudget(mem.budget)
	if err != nil {
		return usageError{fmt.Sprintf("route: --mem-budget %s: %v", mem.budget, err)}
	}
	if *jobs < 0 || *cpus < 1 || *maxPar < 0 || *taskMin < 0 || math.IsNaN(*taskMin) {
		return usageError{"route: --jobs, --max-parallel and --task-minutes must be ≥ 0, --cpus-per-task ≥ 1"}
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
			RouteArgs:   forwardArgs(args),
			Options:     diffroute.Options{IRF: rf.irf, Method: diffroute.Method(rf.method), MaxDelay: rf.maxDelay},
			TaskSeconds: *taskMin * 60,
		})
		if err != nil {
			return err
		}
		if old, err := basins.Load(*out); err == nil {
			if !old.Same(job) {
				return fmt.Errorf("route: %s holds another job (other basins, runoff or flags): choose another --out, or --resume it", *out)
			}
			// The same job again: keep its bundles, which its Slurm
			// submissions refer to.
			job = old
			logf("continuing the job in %s\n", job.Out)
		} else if err := job.Save(); err != nil {
			return err
		}
		var reaches int
		var req int64
		for _, t := range job.Tasks {
			reaches += t.Reaches
			req = max(req, t.Request)
		}
		logf("%d tasks (%d reaches in all) in %s; largest planned request %s\n", len(job.Tasks), reaches, job.Out, humanize.IBytes(uint64(req)))
	}

	if *executor == "slurm" {
		return slurmRun(ctx, job, basins.SlurmOptions{CPUs: *cpus, Partition: *partition, Account: *account, MaxParallel: *maxPar, Merge: *merge, Extra: extra},
			*resume, *submit, stdout, logf)
	}
	var progress io.Writer
	if !rf.quiet {
		progress = stdout
	}
	rep, err := job.RunLocal(ctx, basins.LocalOptions{Budget: budget, Jobs: *jobs, Workers: *cpus, Progress: progress})
	if rep != nil {
		bud := "no budget"
		if budget > 0 {
			bud = "budget " + humanize.IBytes(uint64(budget))
		}
		logf("%d routed, %d skipped (output exists), %d failed in %v; peak RSS of the tasks running together %s, reserved %s (%s)\n",
			rep.Done, rep.Skipped, rep.Failed, rep.Elapsed.Round(1e6), humanize.IBytes(uint64(rep.PeakRSS)), humanize.IBytes(uint64(rep.PeakReserved)), bud)
	}
	if err != nil {
		return fmt.Errorf("%w; fix the input and rerun with --resume", err)
	}
	recs, err := job.Gather(*merge)
	if err != nil {
		return err
	}
	logf("wrote %s (%d tasks)", filepath.Join(job.Out, basins.ManifestCSV), len(recs))
	if *merge {
		logf(" and the merged discharge %s", job.MergedFile(""))
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
func forwardArgs(args []string) []string {
	var out []string
	for k := 0; k < len(args); k++ {
		a := args[k]
		if a == "--" {
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes, own := basinFlags[name]
		if !strings.HasPrefix(a, "-") || !own {
			out = append(out, a)
			continue
		}
		if takes && !hasValue {
			k++ // skip the value
		}
	}
	return out
}
