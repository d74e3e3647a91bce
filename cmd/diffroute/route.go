package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
	"github.com/diffroute-go/route/viz"
)

// routeFlags are the options shared by route and demo.
type routeFlags struct {
	irf, method, average, lateral, sampling, compat string
	maxDelay, fftPad, blockSize, workers            int
	excludeSelf, quiet                              bool
	methodSet                                       bool // --method given explicitly
	dev                                             deviceFlags
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
	fs.BoolVar(&rf.excludeSelf, "exclude-self", false, "add a reach's own runoff directly instead of routing it through the reach (kernel method: selects it when --method is not given)")
	fs.BoolVar(&rf.quiet, "quiet", false, "print nothing but errors")
	fs.Var(&rf.params, "param", "IRF parameter for every reach, name=value (repeatable; times such as k, tau and delay in runoff steps, not seconds)")
	fs.StringVar(&rf.paramsFile, "params", "", "CSV of per-reach IRF parameters: header rivid,<name>,…")
	fs.StringVar(&rf.paramsFrom, "params-from", "", "folder written by 'diffroute calibrate': its k.csv and x.csv (muskingum) or params.csv")
}

// config turns the routing flags into a pipeline configuration (the
// inputs and output are the command's).
func (rf *routeFlags) config(stdout io.Writer) pipeline.Config {
	c := pipeline.Config{
		Options: diffroute.Options{
			IRF: rf.irf, Average: diffroute.Average(rf.average), Lateral: diffroute.LateralRule(rf.lateral),
			Sampling: diffroute.Sampling(rf.sampling), Compat: diffroute.Compat(rf.compat),
			MaxDelay: rf.maxDelay, FFTPad: rf.fftPad, BlockSize: rf.blockSize, Workers: rf.workers, ExcludeSelf: rf.excludeSelf,
		},
		Params: rf.params, ParamsFile: rf.paramsFile, ParamsFrom: rf.paramsFrom, Device: rf.dev.name, GPU: rf.dev.ordinal,
	}
	if rf.methodSet { // otherwise the compat mode or the planner picks it
		c.Options.Method = diffroute.Method(rf.method)
	}
	if !rf.quiet {
		c.Log, c.Warn = stdout, os.Stderr
		c.Progress = viz.NewProgress(false, viz.ProgressWriter(progressOut))
	}
	return c
}

// progressOut is where progress bars are drawn (a variable for tests).
var progressOut io.Writer = os.Stderr

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
	var of outFlags
	of.register(fs)
	runoffVar := fs.String("runoff-var", "", "runoff variable of a netCDF file (default: guessed)")
	units := fs.String("runoff-units", "", "runoff units: m3 (volume per step, RAPID) or m3/s (default: the file's units attribute)")
	stepSec := fs.Float64("step", 0, "runoff step in seconds (default: the file's time spacing)")
	subSec := fs.Float64("substep", 0, "routing sub-step in seconds (default: the runoff step); step/substep must be whole")
	qinit := fs.String("qinit", "", "initial discharge file (RAPID qinit: one value per reach, rapid_connect order)")
	out := fs.String("out", "", "output file: .nc (RAPID Qout layout), .nc4 (netCDF-4, compressed), .csv or .parquet")
	mapFrom := fs.String("map-from", "", "map.json learned by 'diffroute calibrate --map loglinear|mlp|group': route with the parameters it gives this basin's --attributes")
	attrs := fs.String("attributes", "", "with --map-from (or --params-from a folder holding map.json): this basin's reach attributes, rivid,<attribute>,… (or rivid,group) (default: attributes.csv in the --rapid folder)")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { rf.methodSet = rf.methodSet || f.Name == "method" })
	var zero string
	fs.Visit(func(f *flag.Flag) {
		if (f.Name == "step" || f.Name == "substep") && f.Value.String() == "0" {
			zero = f.Name
		}
	})
	if zero != "" { // 0 would silently mean "not given"
		return usageError{fmt.Sprintf("route: --%s 0: want a positive number of seconds (or leave --%s out)", zero, zero)}
	}
	for name, v := range map[string]string{"rapid": *rapidDir, "out": *out} {
		if v == "" {
			return usageError{fmt.Sprintf("route: --%s is required", name)}
		}
	}
	// Flag values first: a typo costs nothing, not a read of the inputs.
	if err := rf.validate("route"); err != nil {
		return err
	}
	if err := mem.validate("route"); err != nil {
		return err
	}
	step, sub, err := stepFlags(*stepSec, *subSec)
	if err != nil {
		return err
	}
	cfg := rf.config(stdout)
	cfg.RAPID, cfg.Runoff, cfg.RunoffVar, cfg.RunoffUnits, cfg.Qinit, cfg.Out = *rapidDir, *runoffPath, *runoffVar, *units, *qinit, *out
	cfg.Step, cfg.SubStep = step, sub
	mem.apply(&cfg)
	rs.apply(&cfg)
	of.apply(&cfg)
	if err := cfg.Check(); err != nil {
		return cliError(err)
	}
	if err := checkRAPIDDir("route", *rapidDir); err != nil {
		return err
	}
	if err := applyLearnedMap(&cfg, &rf, *rapidDir, *mapFrom, *attrs); err != nil {
		return err
	}
	runoffCheck := *runoffPath
	if m, _ := filepath.Glob(runoffCheck); strings.ContainsAny(runoffCheck, "*?[") && len(m) > 0 {
		runoffCheck = m[0] // an ensemble pattern: its files are checked as they are opened
	}
	for _, in := range []struct{ flag, path string }{
		{"runoff", runoffCheck}, {"qinit", *qinit}, {"params", rf.paramsFile}, {"outputs", mem.outputs},
		{"pixel-runoff", mem.pixelRunoff}, {"weights", mem.weight}, {"state-in", rs.in},
	} {
		if err := checkInputFile("route", in.flag, in.path); err != nil {
			return err
		}
	}
	if err := checkWritable("route", "out", *out, false); err != nil {
		return err
	}
	if err := rs.check(); err != nil {
		return err
	}
	inputs := append([]string{*runoffPath, *qinit, rf.paramsFile, mem.outputs, mem.pixelRunoff, mem.weight, rs.in}, rapidInputs(*rapidDir)...)
	if err := checkNotInput("route", "out", "discharge", *out, inputs); err != nil {
		return err
	}
	cfg.InPlace = true // only the file is wanted
	setRouteGC()
	_, err = pipeline.Run(ctx, cfg)
	return cliError(err)
}

// setRouteGC makes the collector run when the heap has grown by a quarter
// rather than doubled (unless GOGC says otherwise): a large run's set-up
// allocates and drops hundreds of megabytes of pointer-free arrays, which
// cost little to collect, and memory reused costs far less than fresh
// memory (page faults) and keeps the peak resident size down.
func setRouteGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
}

// cliError turns the pipeline's configuration errors into usage errors
// (exit status 2).
func cliError(err error) error {
	var ce *pipeline.ConfigError
	if errors.As(err, &ce) {
		return usageError{ce.Msg}
	}
	return err
}

// checkNotInput refuses an output path that names one of the input files:
// the (atomic) write would replace the input. flagName is the output's flag
// and what its contents, for the message.
func checkNotInput(cmd, flagName, what, out string, inputs []string) error {
	if in := inputAt(out, inputs); in != "" {
		return usageError{fmt.Sprintf("%s: --%s %s is the input file %s; write the %s elsewhere", cmd, flagName, out, in, what)}
	}
	return nil
}

// inputAt returns the input that out names ("" if none).
func inputAt(out string, inputs []string) string {
	ost, err := os.Stat(out)
	if err != nil {
		return "" // nothing there yet: it cannot be an input
	}
	for _, in := range inputs {
		if in == "" {
			continue
		}
		if ist, err := os.Stat(in); err == nil && os.SameFile(ost, ist) {
			return in
		}
	}
	return ""
}

// rapidInputs lists the RAPID files of a folder that a run reads.
func rapidInputs(dir string) []string {
	if dir == "" {
		return nil
	}
	var l []string
	for _, f := range []string{data.RAPIDConnectFile, data.RAPIDBasinFile, data.RAPIDKFile, data.RAPIDXFile} {
		l = append(l, filepath.Join(dir, f))
	}
	return l
}

// stepFlags converts --step and --substep (seconds, 0: not given).
func stepFlags(stepSec, subSec float64) (step, sub time.Duration, err error) {
	if step, err = secondsFlag("step", stepSec); err != nil {
		return 0, 0, err
	}
	sub, err = secondsFlag("substep", subSec)
	return step, sub, err
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

// deviceFlags choose where the kernel method convolves (--device, --gpu).
type deviceFlags struct {
	name    string
	ordinal int
}
