package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu"
	"github.com/diffroute-go/route/pipeline"
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
	fs.IntVar(&m.timeChunk, "time-chunk", 0, "route in time chunks of N steps, streaming runoff in and discharge out")
	fs.StringVar(&m.outputs, "outputs", "", "route only these reaches (one id per line) and what drains into them")
	fs.StringVar(&m.pixelRunoff, "pixel-runoff", "", "pixel runoff Feather file (instead of --runoff): interpolated onto catchments with --weights")
	fs.StringVar(&m.weight, "weights", "", "interpolation weights Feather file (river_id, pixel_idx, area_sqm_total)")
	fs.StringVar(&m.budget, "mem-budget", "", "memory budget of the whole process, e.g. 1GiB: the planner picks method, staging and time chunk")
}

// apply puts the memory flags into a pipeline configuration (validate has
// checked them).
func (m *memFlags) apply(c *pipeline.Config) {
	c.Budget, _ = parseBudget(m.budget)
	c.WholeProcess = true // --mem-budget bounds this process, as grad's does
	c.TimeChunk, c.MaxNodes, c.MaxPaths = m.timeChunk, m.maxNodes, m.maxPaths
	c.Outputs, c.PixelRunoff, c.Weights = m.outputs, m.pixelRunoff, m.weight
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
	const synopsis = "diffroute plan (--rapid DIR | --reaches N) --steps T --mem-budget SIZE [--substeps f] [--method M] [--batch B] [--gpu-memory SIZE]"
	fs := newFlags("plan", synopsis)
	rapid := fs.String("rapid", "", "RAPID config folder")
	reaches := fs.Int("reaches", 0, "plan for a generated network of N reaches instead")
	steps := fs.Int("steps", 0, "runoff steps to route")
	f := fs.Int("substeps", 24, "routing sub-steps per runoff step")
	batch := fs.Int("batch", 1, "ensemble members")
	method := fs.String("method", "", "force a method (recursive or kernel); default: the planner's choice")
	maxDelay := fs.Int("max-delay", 64, "kernel length in runoff steps")
	budget := fs.String("mem-budget", "", "memory budget, e.g. 1GiB")
	gpuMem := fs.String("gpu-memory", "", "also predict the device memory of the kernel method on a GPU of this size (e.g. 16GiB) and its device time chunk")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	var dev int64
	if *gpuMem != "" {
		g, err := humanize.ParseBytes(*gpuMem)
		if err != nil || g == 0 {
			return usageError{fmt.Sprintf("plan: --gpu-memory %q: want a size such as 16GiB", *gpuMem)}
		}
		if *method == string(diffroute.Recursive) {
			return usageError{"plan: --gpu-memory plans the kernel method; drop --method recursive"}
		}
		dev = int64(g)
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
	if err := checkGeneratedSize("plan", "reaches", *reaches, 0); err != nil {
		return err
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
	opts := diffroute.Options{Params: params, SubSteps: *f, Method: diffroute.Method(*method), MaxDelay: *maxDelay}
	var plan *diffroute.MemoryPlan
	if dev > 0 {
		plan, err = diffroute.PlanDevice(net, *steps, *batch, b, opts, gpu.MemoryModel{Bytes: dev})
	} else {
		// The budget bounds the whole process, as route's and grad's
		// --mem-budget do: this one has read the network as they will have
		// when they plan.
		plan, err = diffroute.PlanIn(net, *steps, *batch, b, opts, pipeline.ProcessMemory())
	}
	if err != nil {
		if plan != nil && plan.Device != nil {
			fmt.Fprintln(stdout, plan)
		}
		return budgetError("plan", *budget, err)
	}
	fmt.Fprintln(stdout, net)
	fmt.Fprintln(stdout, plan)
	return nil
}
