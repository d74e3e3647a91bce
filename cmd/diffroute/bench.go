package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
)

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute bench [--reaches N] [--steps T] [--substeps f] [--method recursive|kernel|both] [--irf NAME] | --global [--cache DIR]"
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
	grad := fs.Bool("grad", false, "also time the gradient: a whole RouteGrad (forward pass included) next to the forward run (after one untimed run of each, the two alternated), and the kernel method's backward convolution")
	global := fs.Bool("global", false, "time the GEOGLOWS-size case instead: 6.84 M reaches, 30 daily steps routed hourly, generated once into --cache; set-up, reading, routing and writing timed apart")
	cache := fs.String("cache", "", "with --global: folder of the generated case (default: the user cache folder's diffroute/global)")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	if *global {
		setRouteGC()
		return benchGlobal(ctx, *cache, *workers, stdout)
	}
	if *n < 1 || *kernelReaches < 1 || *steps < 1 || *f < 1 || *maxDelay < 1 || *repeat < 1 || *workers < 0 {
		return usageError{"bench: --reaches, --kernel-reaches, --steps, --substeps, --max-delay and --repeat must be ≥ 1, --workers ≥ 0"}
	}
	if err := checkGeneratedSize("bench", "reaches", *n, *steps); err != nil {
		return err
	}
	if err := checkGeneratedSize("bench", "kernel-reaches", *kernelReaches, *steps); err != nil {
		return err
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
		case "linear_storage", "nash_cascade", "nash_gamma":
			return diffroute.Constant(net.Len(), map[string]float64{"tau": 0.2})
		case "pure_lag":
			return diffroute.Constant(net.Len(), map[string]float64{"delay": 0.5})
		default:
			return diffroute.Constant(net.Len(), map[string]float64{"L": 2, "D": 1, "c": 4})
		}
	}
	// best times fn: the best wall time and the best CPU time (user+system,
	// all goroutines) of the repetitions; on a loaded machine the CPU time
	// is the steadier figure.
	var bestCPU time.Duration
	best := func(fn func() error) (time.Duration, error) {
		var b time.Duration
		for r := 0; r < *repeat; r++ {
			t0, c0 := time.Now(), cpuTime()
			if err := fn(); err != nil {
				return 0, err
			}
			c := cpuTime() - c0
			if d := time.Since(t0); r == 0 || d < b {
				b = d
			}
			if r == 0 || c < bestCPU {
				bestCPU = c
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
		forward := func() error { rr.Reset(); _, err := rr.Route(ctx, x); return err }
		gradient := func() error { _, _, _, err := rr.RouteGrad(ctx, x, diffroute.SumOfSquares); return err }
		work := float64(*n) * float64(*steps) * float64(*f)
		if !*grad {
			d, err := best(forward)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "recursive %-14s %8d reaches x %5d steps x %3d sub-steps: %8.1f ms  %7.1f M reach-sub-steps/s  %8.1f CPU-ms\n",
				*irf, *n, *steps, *f, d.Seconds()*1e3, work/d.Seconds()/1e6, bestCPU.Seconds()*1e3)
		} else {
			// One untimed run of each first (the gradient's first run
			// also pays for first-touching its buffers, which later runs
			// reuse), then forward and gradient alternately, so that both
			// see the same moments of a shared machine.
			if err := forward(); err != nil {
				return err
			}
			if err := gradient(); err != nil {
				return err
			}
			var d, dCPU, g, gCPU time.Duration
			for r := 0; r < *repeat; r++ {
				for _, m := range []struct {
					fn        func() error
					wall, cpu *time.Duration
				}{{forward, &d, &dCPU}, {gradient, &g, &gCPU}} {
					t0, c0 := time.Now(), cpuTime()
					if err := m.fn(); err != nil {
						return err
					}
					c, w := cpuTime()-c0, time.Since(t0)
					if r == 0 || w < *m.wall {
						*m.wall = w
					}
					if r == 0 || c < *m.cpu {
						*m.cpu = c
					}
				}
			}
			fmt.Fprintf(stdout, "recursive %-14s %8d reaches x %5d steps x %3d sub-steps: %8.1f ms  %7.1f M reach-sub-steps/s  %8.1f CPU-ms\n",
				*irf, *n, *steps, *f, d.Seconds()*1e3, work/d.Seconds()/1e6, dCPU.Seconds()*1e3)
			fmt.Fprintf(stdout, "gradient  %-14s %8d reaches x %5d steps x %3d sub-steps: %8.1f ms  %7.1f M reach-sub-steps/s  %8.1f CPU-ms  %.2f x the forward run (CPU %.2f x)\n",
				*irf, *n, *steps, *f, g.Seconds()*1e3, work/g.Seconds()/1e6, gCPU.Seconds()*1e3, g.Seconds()/d.Seconds(), gCPU.Seconds()/dCPU.Seconds())
		}
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
		if *grad {
			kd, ok := kr.(*diffroute.KernelRouter)
			if !ok {
				return fmt.Errorf("bench: the kernel router has no backward convolution")
			}
			gy, err := kr.Route(ctx, x)
			if err != nil {
				return err
			}
			back, err := best(func() error { _, err := kd.BackwardRunoff(ctx, x, gy); return err })
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "kernel backward  %8d reaches x %5d steps, %d taps: %8.1f ms  %7.2f GFLOP/s (pair-taps)  %.2f x the forward convolution\n",
				net.Len(), *steps, *maxDelay, back.Seconds()*1e3, flops/back.Seconds()/1e9, back.Seconds()/conv.Seconds())
		}
	}
	return nil
}

// The global case: DiffRoute's headline experiment at GEOGLOWS size.
const (
	globalReaches = 6840000
	globalDays    = 30
)

// benchGlobal generates the global case into cache unless it is there, then
// times, apart, what a routing run does: set-up (read the RAPID folder,
// open the runoff, prepare the router), reading the runoff, routing, and
// writing Qout.nc (into the cache folder).
func benchGlobal(ctx context.Context, cache string, workers int, stdout io.Writer) error {
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("bench: no user cache folder (%v): give --cache DIR", err)
		}
		cache = filepath.Join(dir, "diffroute", "global")
	}
	runoff := filepath.Join(cache, "runoff.nc")
	if _, err := os.Stat(runoff); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stdout, "generating %d reaches x %d days into %s (once)\n", globalReaches, globalDays, cache)
		t0 := time.Now()
		if err := runGenerate(ctx, []string{"--out", cache, "--reaches", fmt.Sprint(globalReaches), "--days", fmt.Sprint(globalDays)}, io.Discard); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "generated in %.1f s\n", time.Since(t0).Seconds())
	} else if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s, %s/%s, GOMAXPROCS=%d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	start, cpuStart, faultStart := time.Now(), cpuTime(), minorFaults()
	t0, c0, f0 := start, cpuStart, faultStart
	// lap returns the wall and CPU seconds since the last lap, and the
	// phase's page faults and the peak RSS so far, as text: on a virtual
	// machine, touching fresh memory can cost more than the work.
	lap := func() (float64, float64, string) {
		t, c, f := time.Now(), cpuTime(), minorFaults()
		w, u := t.Sub(t0).Seconds(), (c - c0).Seconds()
		m := fmt.Sprintf("%7.0f k faults, RSS %s, peak %s", float64(f-f0)/1e3, currentRSS(), peakRSS())
		t0, c0, f0 = t, c, f
		return w, u, m
	}
	in, err := pipeline.Open(pipeline.Config{RAPID: cache, Runoff: runoff, SubStep: time.Hour, Options: diffroute.Options{Workers: workers}})
	if err != nil {
		return err
	}
	defer in.Close()
	// As `diffroute route` does: the network renumbered in the router's
	// order, runoff read in that order and routed in place, Qout written
	// back in riv_bas_id order.
	net := in.RAPID.Network
	onet, order, err := net.InRoutingOrder(workers)
	if err != nil {
		return err
	}
	// The parameters in network order are not kept while routing, as
	// route does not keep them.
	ropts := pipeline.ReorderOptions(in.Options, order)
	in.Options.Params = nil
	rr, err := diffroute.NewRecursiveRouter(ctx, onet, ropts)
	if err != nil {
		return err
	}
	debug.FreeOSMemory() // as route does before it reads the runoff
	setupW, setupC, setupM := lap()
	x, err := in.ReadInOrder(0, in.Steps(), order)
	if err != nil {
		return err
	}
	// As route does: one list of ids, and the reader's garbage collected
	// before the routing state is allocated.
	if slices.Equal(x.IDs, onet.IDs()) {
		x.IDs = onet.IDs()
	}
	runtime.GC()
	readW, readC, readM := lap()
	if err := rr.RouteTo(ctx, x, x); err != nil {
		return err
	}
	x.Units = "m3/s"
	rr = nil
	runtime.GC() // as route does: the writer reuses the router's memory
	routeW, routeC, routeM := lap()
	back := make([]int32, len(order))
	for k, i := range order {
		back[i] = int32(k)
	}
	if err := data.WriteSeriesWith(filepath.Join(cache, "Qout.nc"), x, &data.SeriesOptions{Order: back}); err != nil {
		return err
	}
	writeW, writeC, writeM := lap()
	work := float64(net.Len()) * float64(x.T) * float64(in.Options.SubSteps)
	// CPU seconds beside wall seconds: on a shared machine the wall time
	// depends on the other work, the CPU time much less.
	fmt.Fprintf(stdout, "global: %d reaches x %d steps x %d sub-steps   (wall s / CPU s)\n", net.Len(), x.T, in.Options.SubSteps)
	fmt.Fprintf(stdout, "  set-up (RAPID folder, runoff header, router) %7.2f / %7.2f  %s\n", setupW, setupC, setupM)
	fmt.Fprintf(stdout, "  read runoff                                  %7.2f / %7.2f  %s\n", readW, readC, readM)
	fmt.Fprintf(stdout, "  route                                        %7.2f / %7.2f  %s  (%.1f M reach-sub-steps/s wall)\n", routeW, routeC, routeM, work/routeW/1e6)
	fmt.Fprintf(stdout, "  write Qout.nc                                %7.2f / %7.2f  %s\n", writeW, writeC, writeM)
	fmt.Fprintf(stdout, "  total                                        %7.2f / %7.2f  %7.0f k faults, peak RSS %s\n", time.Since(start).Seconds(), (cpuTime() - cpuStart).Seconds(), float64(minorFaults()-faultStart)/1e3, peakRSS())
	return nil
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// minorFaults is the process's count of minor page faults.
func minorFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

// currentRSS is the process's resident set size now, as text.
func currentRSS() string {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return "unknown"
	}
	var size, rss int64
	if _, err := fmt.Sscan(string(b), &size, &rss); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f GiB", float64(rss*int64(os.Getpagesize()))/(1<<30))
}

// peakRSS is the process's peak resident set size, as text.
func peakRSS() string {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.2f GiB", float64(ru.Maxrss)/(1<<20)) // Maxrss is in KiB on Linux
}
