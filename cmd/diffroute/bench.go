package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/diffroute-go/diffroute/diffroute"
)

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute bench [--reaches N] [--steps T] [--substeps f] [--method recursive|kernel|both] [--irf NAME]"
	fs := newFlags("bench", synopsis)
	n := fs.Int("reaches", 100000, "reaches of the generated network")
	steps := fs.Int("steps", 100, "runoff steps")
	f := fs.Int("substeps", 24, "routing sub-steps per runoff step")
	method := fs.String("method", "both", "recursive, kernel or both")
	irf := fs.String("irf", "muskingum", "impulse response function")
	kernelReaches := fs.Int("kernel-reaches", 20000, "reaches for the kernel method (its kernel grows with N·depth)")
	maxDelay := fs.Int("max-delay", 16, "kernel length in runoff steps")
	workers := fs.Int("workers", 0, "goroutines (default: all cores)")
	repeat := fs.Int("repeat", 3, "timed repetitions (best is reported)")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	if *n < 1 || *kernelReaches < 1 || *steps < 1 || *f < 1 || *maxDelay < 1 || *repeat < 1 || *workers < 0 {
		return usageError{"bench: --reaches, --kernel-reaches, --steps, --substeps, --max-delay and --repeat must be ≥ 1, --workers ≥ 0"}
	}
	if err := choice("bench", "method", *method, "recursive", "kernel", "both"); err != nil {
		return err
	}
	if err := checkIRF("bench", *irf); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s, %s/%s, GOMAXPROCS=%d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	params := func(net *diffroute.Network) diffroute.Params {
		switch *irf {
		case "muskingum":
			return diffroute.Constant(net.Len(), map[string]float64{"k": 0.25, "x": 0.2})
		case "linear_storage", "nash_cascade":
			return diffroute.Constant(net.Len(), map[string]float64{"tau": 0.2})
		case "pure_lag":
			return diffroute.Constant(net.Len(), map[string]float64{"delay": 0.5})
		default:
			return diffroute.Constant(net.Len(), map[string]float64{"L": 2, "D": 1, "c": 4})
		}
	}
	best := func(fn func() error) (time.Duration, error) {
		var b time.Duration
		for r := 0; r < *repeat; r++ {
			t0 := time.Now()
			if err := fn(); err != nil {
				return 0, err
			}
			if d := time.Since(t0); r == 0 || d < b {
				b = d
			}
		}
		return b, nil
	}
	if *method == "recursive" || *method == "both" {
		net := diffroute.SyntheticNetwork(*n, 1)
		x := diffroute.SyntheticRunoff(net, 1, *steps, 1)
		rr, err := diffroute.NewRecursiveRouter(ctx, net, diffroute.Options{IRF: *irf, Params: params(net), SubSteps: *f, Workers: *workers, MaxDelay: *maxDelay})
		if err != nil {
			return err
		}
		d, err := best(func() error { rr.Reset(); _, err := rr.Route(ctx, x); return err })
		if err != nil {
			return err
		}
		work := float64(*n) * float64(*steps) * float64(*f)
		fmt.Fprintf(stdout, "recursive %-14s %8d reaches x %5d steps x %3d sub-steps: %8.1f ms  %7.1f M reach-sub-steps/s\n",
			*irf, *n, *steps, *f, d.Seconds()*1e3, work/d.Seconds()/1e6)
	}
	if *method == "kernel" || *method == "both" {
		net := diffroute.SyntheticNetwork(*kernelReaches, 1)
		x := diffroute.SyntheticRunoff(net, 1, *steps, 1)
		opts := diffroute.Options{IRF: *irf, Params: params(net), SubSteps: *f, Workers: *workers, MaxDelay: *maxDelay, Method: diffroute.Kernel}
		var kr diffroute.Router
		build, err := best(func() error {
			var err error
			kr, err = diffroute.NewRouter(ctx, net, opts)
			return err
		})
		if err != nil {
			return err
		}
		conv, err := best(func() error { _, err := kr.Route(ctx, x); return err })
		if err != nil {
			return err
		}
		pairs := float64(net.Pairs())
		fmt.Fprintf(stdout, "kernel build     %8d reaches, %9.0f pairs, W=%d: %8.1f ms  %7.2f M pairs/s\n",
			net.Len(), pairs, *maxDelay**f, build.Seconds()*1e3, pairs/build.Seconds()/1e6)
		flops := 2 * pairs * float64(*maxDelay) * float64(*steps)
		work := float64(net.Len()) * float64(*steps) * float64(*f)
		fmt.Fprintf(stdout, "kernel convolve  %8d reaches x %5d steps, %d taps: %8.1f ms  %7.2f GFLOP/s (pair-taps)  %7.1f M reach-sub-steps/s\n",
			net.Len(), *steps, *maxDelay, conv.Seconds()*1e3, flops/conv.Seconds()/1e9, work/conv.Seconds()/1e6)
	}
	return nil
}
