package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/route/calibrate"
	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
	"github.com/diffroute-go/route/viz"
)

// gradLosses are the losses of diffroute grad: sse is the plain sum of
// squared errors over gauges and steps, the others calibrate's means over
// gauges.
var gradLosses = []string{"sse", "mse", "nse", "kge", "lognse"}

func runGrad(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute grad --rapid DIR --runoff FILE --observed FILE --out FILE.csv [--runoff-grad FILE.nc] [flags]"
	fs := newFlags("grad", synopsis)
	var rf routeFlags
	rf.register(fs)
	rapidDir := fs.String("rapid", "", "RAPID config folder (rapid_connect.csv, riv_bas_id.csv, k.csv, x.csv)")
	runoffPath := fs.String("runoff", "", "runoff file: netCDF or CSV (time,<id>,…), as route reads it")
	runoffVar := fs.String("runoff-var", "", "runoff variable of a netCDF file (default: guessed)")
	units := fs.String("runoff-units", "", "runoff units: m3 (volume per step, RAPID) or m3/s (default: the file's units attribute)")
	stepSec := fs.Float64("step", 0, "runoff step in seconds (default: the file's time spacing)")
	subSec := fs.Float64("substep", 0, "routing sub-step in seconds (default: the runoff step)")
	qinit := fs.String("qinit", "", "initial discharge file (RAPID qinit); its gradient is written with --q0-grad")
	observed := fs.String("observed", "", "observed discharge (m3/s): CSV time,<rivid>,… (empty or NaN = missing) or netCDF Qout(time, rivid); its columns are the gauges")
	observedVar := fs.String("observed-var", "", "variable of a netCDF --observed file (default: guessed, e.g. Qout)")
	lossName := fs.String("loss", "sse", "loss: sse (sum over gauges and steps of (y-obs)^2), mse, nse (1-NSE), kge (1-KGE) or lognse, the last four averaged over gauges")
	warmup := fs.Int("warmup", 0, "runoff steps at the start left out of the loss")
	ckpt := fs.Int("checkpoint-steps", 0, "runoff steps per checkpoint block of the backward pass (0: the whole series, or what --mem-budget allows; blocks use less memory and recompute the forward pass once)")
	memBudget := fs.String("mem-budget", "", "memory budget, e.g. 2GiB: the planner picks the checkpoint block (the kernel method holds the whole series and kernel: only its recursive parameter adjoint takes blocks)")
	out := fs.String("out", "", "CSV of dL/dparameter per reach: rivid,dL_d<name>,… (k per second as in k.csv, x as in x.csv, --param/--params values per runoff step)")
	runoffGrad := fs.String("runoff-grad", "", "netCDF of dL/drunoff(time, rivid) in the runoff file's layout and per its units (optional)")
	q0Grad := fs.String("q0-grad", "", "CSV of dL/dq0 per reach, rivid,dL_dq0 (optional)")
	maxNodes := fs.Int("max-nodes", 0, "stage the gradient: clusters of at most N reaches, routed and differentiated one at a time, the derivative of route's staged run with the same flags (with --mem-budget the planner stages when needed)")
	maxPaths := fs.Int64("max-paths", 0, "stage the gradient so each cluster has at most N closure pairs")
	chart := fs.String("chart", "", "HTML page of sensitivity maps: the network coloured by |dL/dparameter| and by the runoff gradient, and the runoff gradient in time (optional)")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { rf.methodSet = rf.methodSet || f.Name == "method" })
	for name, v := range map[string]string{"rapid": *rapidDir, "runoff": *runoffPath, "observed": *observed, "out": *out} {
		if v == "" {
			return usageError{fmt.Sprintf("grad: --%s is required", name)}
		}
	}
	if err := rf.validate("grad"); err != nil {
		return err
	}
	if !slices.Contains(gradLosses, *lossName) {
		return usageError{fmt.Sprintf("grad: --loss %s: want %s", *lossName, strings.Join(gradLosses, ", "))}
	}
	if *warmup < 0 || *ckpt < 0 || *maxNodes < 0 || *maxPaths < 0 {
		return usageError{"grad: --warmup, --checkpoint-steps, --max-nodes and --max-paths must be ≥ 0"}
	}
	staged := *maxNodes > 0 || *maxPaths > 0
	if strings.ToLower(filepath.Ext(*out)) != ".csv" {
		return usageError{fmt.Sprintf("grad: --out %s: want a .csv file", *out)}
	}
	if *runoffGrad != "" && strings.ToLower(filepath.Ext(*runoffGrad)) != ".nc" {
		return usageError{fmt.Sprintf("grad: --runoff-grad %s: want a .nc file", *runoffGrad)}
	}
	if err := checkRAPIDDir("grad", *rapidDir); err != nil {
		return err
	}
	for _, in := range []struct{ flag, path string }{{"runoff", *runoffPath}, {"observed", *observed}, {"qinit", *qinit}, {"params", rf.paramsFile}} {
		if err := checkInputFile("grad", in.flag, in.path); err != nil {
			return err
		}
	}
	inputs := append([]string{*runoffPath, *observed, *qinit, rf.paramsFile}, rapidInputs(*rapidDir)...)
	if err := checkNotInput("grad", "out", "gradient", *out, inputs); err != nil {
		return err
	}
	if err := checkNotInput("grad", "runoff-grad", "runoff gradient", *runoffGrad, inputs); err != nil {
		return err
	}
	if *chart != "" && strings.ToLower(filepath.Ext(*chart)) != ".html" {
		return usageError{fmt.Sprintf("grad: --chart %s: want a .html file", *chart)}
	}
	for _, o := range []struct{ flag, path string }{{"out", *out}, {"runoff-grad", *runoffGrad}, {"q0-grad", *q0Grad}, {"chart", *chart}} {
		if o.path == "" {
			continue
		}
		if err := checkWritable("grad", o.flag, o.path, false); err != nil {
			return err
		}
	}
	budget, err := parseBudget(*memBudget)
	if err != nil {
		return err
	}
	if budget > 0 && (*ckpt > 0 || staged) {
		return usageError{"grad: give --mem-budget or --checkpoint-steps/--max-nodes/--max-paths, not both"}
	}
	step, sub, err := stepFlags(*stepSec, *subSec)
	if err != nil {
		return err
	}

	start := time.Now()
	pc := rf.config(io.Discard)
	pc.Log, pc.Progress = nil, nil
	if rf.quiet {
		pc.Warn = nil
	}
	pc.RAPID, pc.Runoff, pc.RunoffVar, pc.RunoffUnits, pc.Step, pc.SubStep, pc.Qinit = *rapidDir, *runoffPath, *runoffVar, *units, step, sub, *qinit
	in, err := pipeline.Open(pc)
	if err != nil {
		return cliError(err)
	}
	defer in.Close()
	cfg, opts := in.RAPID, in.Options
	if opts.Method == "" {
		opts.Method = diffroute.Recursive
		if opts.Compat != "" || opts.ExcludeSelf { // path kernels: the kernel method
			opts.Method = diffroute.Kernel
		}
	}
	opts.CheckpointSteps = *ckpt
	irf, err := diffroute.LookupIRF(opts.IRF)
	if err != nil {
		return err
	}
	if len(irf.GradParams) == 0 {
		fmt.Fprintf(os.Stderr, "diffroute: warning: IRF %s has no parameter gradient; %s lists reach ids only (the runoff and initial-discharge gradients are exact)\n", irf.Name, *out)
	}
	net := cfg.Network
	runoff, err := in.Read(0, in.Steps())
	if err != nil {
		return err
	}
	if runoff, err = runoff.SelectIDs(net.IDs()); err != nil {
		return err
	}
	times, err := parseLabels(in.Path, runoff.Times)
	if err != nil {
		return err
	}
	gauges, err := readObserved(*observed, *observedVar, cfg, times)
	if err != nil {
		return err
	}
	if *warmup >= runoff.T {
		return usageError{fmt.Sprintf("grad: --warmup %d leaves none of the %d runoff steps in the loss", *warmup, runoff.T)}
	}
	var cl *diffroute.Clusters
	if budget > 0 {
		// The inputs are read: the plan covers what the process holds.
		plan, err := diffroute.PlanGradientIn(net, runoff.T, runoff.B, budget, opts, pipeline.ProcessMemory())
		if err != nil {
			return err
		}
		if !plan.Fits {
			what := "the gradient"
			if opts.Method == diffroute.Kernel {
				what = "the kernel method's gradient"
			}
			if plan.Staged {
				what += fmt.Sprintf(" (staged as --max-paths %d)", plan.MaxPaths)
			}
			return fmt.Errorf("grad: --mem-budget %s: %s needs a budget of %s (predicted peak of the whole process %s): %s", *memBudget, what, ceilIBytes(plan.BudgetNeeded()), humanize.IBytes(uint64(plan.Predicted)), plan.Note)
		}
		opts.CheckpointSteps = plan.CheckpointSteps
		if plan.Staged {
			cl = plan.Clusters
		}
		if !rf.quiet {
			fmt.Fprint(stdout, plan)
		}
	}
	loss, err := gradLoss(*lossName, gauges, *warmup)
	if err != nil {
		return err
	}
	if rf.dev.name == "cuda" && opts.Method != diffroute.Kernel {
		return usageError{"grad: --device cuda runs the kernel method: add --method kernel"}
	}
	if staged {
		if cl, err = diffroute.Schedule(net, *maxPaths, *maxNodes); err != nil {
			return err
		}
		if !rf.quiet {
			fmt.Fprintln(stdout, cl)
		}
	}
	t0 := time.Now()
	L, gr, err := routeGrad(ctx, &rf, net, opts, cl, runoff, loss)
	if err != nil {
		return err
	}
	gradDur := time.Since(t0)
	// Units: Muskingum's k from k.csv is in seconds, the library's in steps.
	scale := map[string]float64{}
	if opts.IRF == "muskingum" && len(rf.params) == 0 && rf.paramsFile == "" && rf.paramsFrom == "" {
		scale["k"] = 1 / in.Step.Seconds()
	}
	if err := writeParamGrads(*out, net, irf, gr.Params, scale); err != nil {
		return err
	}
	if *chart != "" {
		if err := writeSensitivityHTML(*chart, net, irf, gr, *lossName); err != nil {
			return err
		}
	}
	if *runoffGrad != "" {
		dx := gr.Runoff
		volume := in.RunoffUnits == "m3"
		if volume { // x = V/Δ, so dL/dV = dL/dx / Δ
			inv := float32(1 / in.Step.Seconds())
			for k := range dx.Data {
				dx.Data[k] *= inv
			}
		}
		if err := data.WriteQoutNC(*runoffGrad, dx, &data.QoutOptions{Var: "dL_drunoff", Title: "diffroute-go gradient of the loss with respect to runoff",
			Units: runoffGradUnits(*lossName, volume), LongName: "derivative of the " + *lossName + " loss with respect to each runoff value"}); err != nil {
			return err
		}
	}
	if *q0Grad != "" {
		if gr.InitialQ == nil {
			return fmt.Errorf("grad: --q0-grad: the kernel method starts from rest and takes no initial discharge: use --method recursive for dL/dq0")
		}
		if err := writeQ0Grad(*q0Grad, net, gr.InitialQ); err != nil {
			return err
		}
	}
	if !rf.quiet {
		fmt.Fprintf(stdout, "loss %s = %.10g over %d gauges; gradient of %d reaches × %d steps × %d sub-steps in %s (%s in all)\n",
			*lossName, L, len(gauges.IDs), net.Len(), runoff.T, opts.SubSteps, gradDur.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// routeGrad runs the forward and backward pass on the router of --device:
// staged over cl when it is not nil (either method: the derivative of
// route's staged run).
func routeGrad(ctx context.Context, rf *routeFlags, net *diffroute.Network, opts diffroute.Options, cl *diffroute.Clusters, runoff *diffroute.DataTensor, loss diffroute.LossFunc) (float64, *diffroute.Gradients, error) {
	if cl != nil {
		sr, release, err := pipeline.StagedGradRouter(rf.dev.name, rf.dev.ordinal, opts)
		defer release()
		if err != nil {
			return 0, nil, err
		}
		_, L, gr, err := sr.RouteGrad(ctx, runoff, cl, loss)
		return L, gr, err
	}
	d, release, err := pipeline.GradRouter(ctx, rf.dev.name, rf.dev.ordinal, net, opts)
	defer release()
	if err != nil {
		return 0, nil, err
	}
	_, L, gr, err := d.RouteGrad(ctx, runoff, loss)
	return L, gr, err
}

// runoffGradUnits are the units of dL/drunoff: the loss's (m6 s-2 for sse
// and mse, none for the scores) over the runoff's (m3 s-1, or m3 per step).
func runoffGradUnits(loss string, volume bool) string {
	squared := loss == "sse" || loss == "mse"
	switch {
	case squared && volume:
		return "m3 s-2"
	case squared:
		return "m3 s-1"
	case volume:
		return "m-3"
	}
	return "s m-3"
}

// gradLoss builds the loss function of diffroute grad.
func gradLoss(name string, g *calibrate.Gauges, warmup int) (diffroute.LossFunc, error) {
	if name != "sse" {
		l, err := calibrate.ParseLoss(name)
		if err != nil {
			return nil, err
		}
		return g.LossFunc(l, calibrate.Window{Warmup: warmup}), nil
	}
	return func(y, gy *diffroute.DataTensor) (float64, error) {
		s := 0.0
		for k, id := range g.IDs {
			row := slices.Index(y.IDs, id)
			if row < 0 {
				return 0, fmt.Errorf("gauge reach %d is not in the discharge", id)
			}
			for b := 0; b < y.B; b++ {
				sim, grad := y.Series(b, row), gy.Series(b, row)
				for t := warmup; t < y.T; t++ {
					o := g.Obs[k][t]
					if math.IsNaN(o) {
						continue
					}
					d := float64(sim[t]) - o
					s += d * d
					grad[t] = float32(2 * d)
				}
			}
		}
		return s, nil
	}, nil
}

// writeParamGrads writes rivid,dL_d<name>,… (rapid_connect order of the
// network), atomically; scale converts a gradient per runoff step to the
// units of the file the parameter came from.
func writeParamGrads(path string, net *diffroute.Network, irf diffroute.IRF, g diffroute.Params, scale map[string]float64) error {
	var names []string
	for _, name := range irf.GradParams {
		if g[name] != nil {
			names = append(names, name)
		}
	}
	var sb strings.Builder
	sb.WriteString("rivid")
	for _, name := range names {
		sb.WriteString(",dL_d" + name)
	}
	sb.WriteByte('\n')
	for i := 0; i < net.Len(); i++ {
		sb.WriteString(strconv.FormatInt(net.ID(i), 10))
		for _, name := range names {
			v := g[name][i]
			if s, ok := scale[name]; ok {
				v *= s
			}
			sb.WriteString("," + strconv.FormatFloat(v, 'g', 10, 64))
		}
		sb.WriteByte('\n')
	}
	return writeFileAtomic(path, []byte(sb.String()))
}

// writeQ0Grad writes rivid,dL_dq0 atomically.
func writeQ0Grad(path string, net *diffroute.Network, g []float64) error {
	var sb strings.Builder
	sb.WriteString("rivid,dL_dq0\n")
	for i, v := range g {
		sb.WriteString(strconv.FormatInt(net.ID(i), 10) + "," + strconv.FormatFloat(v, 'g', 10, 64) + "\n")
	}
	return writeFileAtomic(path, []byte(sb.String()))
}

// writeSensitivityHTML draws which reaches' parameters and runoff, and
// which steps' runoff, drive the loss.
func writeSensitivityHTML(path string, net *diffroute.Network, irf diffroute.IRF, gr *diffroute.Gradients, loss string) error {
	var items []any
	for _, name := range irf.GradParams {
		if g := gr.Params[name]; g != nil {
			items = append(items, viz.SensitivityMap(net, "dL/d"+name, g))
		}
	}
	per, err := viz.RunoffSensitivity(net, gr.Runoff)
	if err != nil {
		return err
	}
	items = append(items,
		viz.SensitivityMap(net, "dL/drunoff", per, viz.Title("Runoff sensitivity: Σ over steps of |dL/drunoff|")),
		viz.Hydrograph(viz.RunoffSensitivityInTime(gr.Runoff), viz.Title("Runoff sensitivity in time: Σ over reaches of dL/drunoff"), viz.Units("per m3/s")))
	return viz.WriteHTML(path, "diffroute grad: sensitivity of the "+loss+" loss", items...)
}

// ceilIBytes writes b in binary units rounded up, so that a budget of what
// it prints is at least b.
func ceilIBytes(b int64) string {
	switch x := float64(b); {
	case x >= 1<<30:
		return fmt.Sprintf("%.1fGiB", math.Ceil(x/(1<<30)*10)/10)
	case x >= 1<<20:
		return fmt.Sprintf("%.0fMiB", math.Ceil(x/(1<<20)))
	}
	return fmt.Sprintf("%.0fKiB", math.Ceil(float64(b)/(1<<10)))
}
