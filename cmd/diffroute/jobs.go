package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/basins"
)

// runJobs is `diffroute jobs status|task|gather DIR`: the state of a
// multi-basin job, one Slurm array task of it, and its gather step.
func runJobs(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute jobs status DIR [--wait] | jobs task DIR INDEX | jobs gather DIR [--merge] | jobs worker DIR"
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlags("jobs", synopsis)
	wait := fs.Bool("wait", false, "status: wait until no task is queued or running (nor the gather job)")
	merge := fs.Bool("merge", false, "gather: also merge the discharge of every basin into one file")
	if sub == "" {
		if err := parseFlags(fs, synopsis, args, stdout); err != nil {
			return err
		}
		return usageError{"jobs: want a subcommand: status, task, gather or worker"}
	}
	// Positional arguments first or last: parse flags wherever they are.
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return parseFlags(fs, synopsis, args, stdout)
		}
		args = fs.Args()
		if len(args) > 0 {
			pos = append(pos, args[0])
			args = args[1:]
		}
	}
	want := map[string]int{"status": 1, "task": 2, "gather": 1, "worker": 1}
	n, ok := want[sub]
	if !ok {
		return usageError{fmt.Sprintf("jobs: unknown subcommand %q (want status, task, gather or worker)", sub)}
	}
	if len(pos) != n {
		return usageError{fmt.Sprintf("jobs %s: want %d argument(s), got %d: %s", sub, n, len(pos), synopsis)}
	}
	job, err := basins.Load(pos[0])
	if err != nil {
		return err
	}
	switch sub {
	case "worker":
		// The local executor's worker: tasks from stdin, replies on stdout.
		return job.Serve(ctx, os.Stdin, stdout, runCommand)
	case "task":
		b, err := strconv.Atoi(pos[1])
		if err != nil {
			return usageError{fmt.Sprintf("jobs task: INDEX %q is not a number", pos[1])}
		}
		var o basins.TaskOptions
		if c := os.Getenv("SLURM_CPUS_PER_TASK"); c != "" && !hasArg(job.RouteArgs, "workers") {
			o.Args = []string{"--workers", c}
		}
		return job.RunBundle(ctx, b, o, stdout)
	case "gather":
		recs, err := job.Gather(*merge)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d tasks verified; wrote %s/%s", len(recs), job.Out, basins.ManifestCSV)
		if job.IsCalibration() {
			fmt.Fprintf(stdout, " and %s", basins.SummaryFile)
		}
		if *merge {
			fmt.Fprintf(stdout, " and %s", job.MergedFile(""))
		}
		fmt.Fprintln(stdout)
		return nil
	}
	for {
		st, err := job.Status(ctx)
		if err != nil {
			return err
		}
		active := false
		for _, s := range st {
			active = active || s.State == basins.StatePending || s.State == basins.StateRunning
		}
		gather := gatherQueued(ctx, job)
		if *wait && (active || gather) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		printStatus(stdout, job, st)
		return nil
	}
}

func printStatus(w io.Writer, job *basins.Job, st []basins.TaskStatus) {
	count := map[basins.State]int{}
	width := 5
	for _, s := range st {
		width = max(width, len(s.Name))
	}
	fmt.Fprintf(w, "%-*s  %-7s  %s\n", width, "basin", "state", "detail")
	for _, s := range st {
		count[s.State]++
		fmt.Fprintf(w, "%-*s  %-7s  %s\n", width, s.Name, s.State, s.Detail)
	}
	var parts []string
	for _, k := range []basins.State{basins.StateDone, basins.StateRunning, basins.StatePending, basins.StateFailed, basins.StateMissing} {
		if count[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[k], k))
		}
	}
	fmt.Fprintf(w, "%d tasks: %s\n", len(st), strings.Join(parts, ", "))
	if count[basins.StateFailed]+count[basins.StateMissing] > 0 {
		cmd := "route"
		if job.IsCalibration() {
			cmd = "calibrate"
		}
		fmt.Fprintf(w, "rerun what is missing or failed with: diffroute %s --resume --out %s [--executor slurm --submit]\n", cmd, job.Out)
	}
}

// runCommand is run, for job workers (set in init: run's table of
// commands includes jobs).
var runCommand func(ctx context.Context, args []string, stdout io.Writer) error

func init() { runCommand = run }

// gatherQueued reports whether the latest submission's gather job is still
// queued or running.
func gatherQueued(ctx context.Context, job *basins.Job) bool {
	subs, err := job.Submissions()
	if err != nil || len(subs) == 0 || subs[len(subs)-1].Gather == "" {
		return false
	}
	out, err := exec.CommandContext(ctx, "squeue", "-h", "-j", subs[len(subs)-1].Gather, "-o", "%T").Output()
	return err == nil && strings.TrimSpace(string(out)) != ""
}

// hasArg reports whether args set the flag name.
func hasArg(args []string, name string) bool {
	for _, a := range args {
		n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && n == name {
			return true
		}
	}
	return false
}
