// Command diffroute routes runoff through RAPID river networks.
//
//	diffroute route --rapid DIR --runoff FILE --out FILE [flags]   route a basin
//	diffroute demo [--out DIR]                                     route the bundled demo basin
//	diffroute plan (--rapid DIR | --reaches N) --steps T --mem-budget SIZE   plan for a memory budget
//	diffroute bench [flags]                                        measure routing throughput
//	diffroute irfs                                                 list the impulse response functions
//	diffroute generate --out DIR [flags]                           write a synthetic RAPID basin
//	diffroute download vpu N --out DIR                             fetch a VPU of DiffHydro's sample data
//	diffroute grad --rapid DIR --runoff FILE --observed FILE --out FILE.csv   gradients and sensitivities
//	diffroute calibrate --rapid DIR --runoff FILE --observed FILE --out DIR   fit parameters to gauges
//	diffroute route --basins DIR --runoff NAME --out DIR [--executor local|slurm]   route many basins
//	diffroute calibrate --basins DIR --runoff NAME --observed NAME --out DIR [--executor local|slurm]   calibrate each basin
//	diffroute jobs status DIR                                      state of a multi-basin job
//
// Run a subcommand with -h for its flags. Errors print one line and exit
// with status 1 (2 for bad usage); no partial output file is ever left.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/diffroute-go/route/diffroute"
)

var commands = []struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
}{
	{"route", "route runoff through a RAPID network", runRoute},
	{"demo", "route the bundled demo basin and write discharge and a chart", runDemo},
	{"plan", "plan routing for a memory budget (method, staging, time chunk)", runPlan},
	{"bench", "measure routing throughput on a generated network", runBench},
	{"irfs", "list the registered impulse response functions", runIRFs},
	{"generate", "write a synthetic basin in RAPID layout with runoff.nc", runGenerate},
	{"download", "download a VPU of DiffHydro's sample data, or one file, resumably and checked", runDownload},
	{"grad", "gradient of a loss against observed discharge with respect to parameters and runoff", runGrad},
	{"calibrate", "fit routing parameters (or a map from reach attributes) to observed discharge", runCalibrate},
	{"jobs", "state, array task and gather step of a multi-basin job (route or calibrate --basins)", runJobs},
}

// usageError marks errors that should exit with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	// SIGTERM too: Slurm's scancel and time limit send it, and a job task
	// then records its basin as failed rather than vanish.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// DIFFROUTE_CPUPROFILE=FILE writes a CPU profile of the command (go
	// tool pprof reads it): how the benchmarks were profiled.
	if path := os.Getenv("DIFFROUTE_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
	}
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && os.Getenv("DIFFROUTE_CPUPROFILE") != "" {
		pprof.StopCPUProfile()
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintln(os.Stderr, "diffroute:", strings.TrimPrefix(err.Error(), "diffroute: "))
	var ue usageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return userError(c.run(ctx, args[1:], stdout))
		}
	}
	return usageError{fmt.Sprintf("unknown command %q (try: diffroute help)", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: diffroute <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'diffroute <command> -h' for the flags of a command.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	_ = synopsis
	return fs
}

// parseFlags parses args, printing the flag help on -h and turning flag
// errors into usage errors.
func parseFlags(fs *flag.FlagSet, synopsis string, args []string, stdout io.Writer) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "usage: %s\n", synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(stdout, "\nflags:\n")
			fs.SetOutput(stdout)
			fs.PrintDefaults()
		}
		if ex := examples[fs.Name()]; ex != "" {
			fmt.Fprintf(stdout, "\nexamples:\n%s", ex)
		}
		return flag.ErrHelp
	}
	if err != nil {
		return usageError{fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func runIRFs(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("irfs", "")
	if err := parseFlags(fs, "diffroute irfs", args, stdout); err != nil {
		return err
	}
	for _, name := range diffroute.IRFNames() {
		irf, _ := diffroute.LookupIRF(name)
		def := ""
		for _, k := range irf.Params { // parameter order, not map order
			if v, ok := irf.Defaults[k]; ok {
				def += fmt.Sprintf(" (%s defaults to %g)", k, v)
			}
		}
		rec := "convolution"
		if irf.Sections != nil {
			rec = "recursive"
		}
		fmt.Fprintf(stdout, "%-18s params: %-10s %s%s\n", name, strings.Join(irf.Params, ","), rec, def)
	}
	return nil
}

// userError says in a user's words what reached the command as Go's: a
// cancelled context is the user's Ctrl-C (or a deadline).
func userError(err error) error {
	var done *plainError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &done):
		return err // already in a user's words
	case errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "context canceled"):
		return &plainError{"interrupted: no output was written (state files finished before the interruption are complete)", err}
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "context deadline exceeded"):
		return &plainError{"stopped: the time limit ran out; no output was written", err}
	}
	return err
}

// plainError is an error reworded for users; errors.Is still sees the
// original.
type plainError struct {
	msg string
	err error
}

func (e *plainError) Error() string { return e.msg }
func (e *plainError) Unwrap() error { return e.err }
