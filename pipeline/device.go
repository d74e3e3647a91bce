package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu"
)

// device is where the kernel method's convolution runs: the CPU, or a CUDA
// GPU in binaries built with -tags cuda (such a binary needs a GPU to start,
// as gorgonia.org/cu initialises CUDA when the program loads).
type device struct {
	name    string // "cpu" or "cuda"
	ordinal int
	dev     *gpu.Device
	staged  *gpu.StagedBackend
	routers []*gpu.Router
	// warn, when set, receives what a user should know about a router
	// (a kernel that loses part of its path responses).
	warn func(format string, a ...any)
	mu   sync.Mutex
	cut  *diffroute.KernelStats // of the staged kernel that cut the most
}

// open validates the choice and opens the GPU when one is asked for.
func (d *device) open(name string, ordinal int, opts *diffroute.Options) error {
	d.name, d.ordinal = name, ordinal
	switch d.name {
	case "", "cpu":
		return nil
	case "cuda":
	default:
		return configErrorf("route: --device %q: want cpu or cuda", d.name)
	}
	if opts.Method != diffroute.Kernel && opts.Compat == diffroute.CompatNone {
		return configErrorf("route: --device cuda runs the kernel method: add --method kernel")
	}
	dev, err := gpu.Open(d.ordinal)
	if err != nil {
		return err
	}
	d.dev = dev
	return nil
}

// router prepares an unstaged router on the chosen device.
func (d *device) router(ctx context.Context, net *diffroute.Network, opts diffroute.Options) (diffroute.Router, error) {
	if d.dev == nil {
		r, err := diffroute.NewRouter(ctx, net, opts)
		if kr, ok := r.(*diffroute.KernelRouter); ok && err == nil {
			d.checkKernel(kr.Stats(), opts)
		}
		if rr, ok := r.(*diffroute.RecursiveRouter); ok && err == nil {
			checkWindow(d.warn, rr)
		}
		return r, err
	}
	r, err := gpu.NewRouter(ctx, d.dev, net, opts, nil)
	if err != nil {
		return nil, err
	}
	d.checkKernel(r.CPU().Stats(), opts)
	d.routers = append(d.routers, r)
	return r, nil
}

// lostMassWarn is the share of a path's response beyond the kernel's window
// above which a run is warned: the kernel method drops (or, built by FFT,
// wraps around) what a path delivers after MaxDelay steps.
const lostMassWarn = 0.01

// checkKernel warns when some path response does not fit the kernel's
// window, which silently changes the discharge of the reaches downstream.
func (d *device) checkKernel(st diffroute.KernelStats, opts diffroute.Options) {
	if d.warn == nil || !(st.TruncatedMassMax > lostMassWarn) {
		return
	}
	d.warn("kernel method: %.3g %% of the response of reach %d to runoff of reach %d (median over all pairs %.3g %%) falls beyond the kernel's %d steps and is lost or wrapped around: raise --max-delay (or route with --method recursive)",
		100*st.TruncatedMassMax, st.WorstPair[0], st.WorstPair[1], 100*st.TruncatedMassMedian, st.Taps)
}

// checkWindow warns when the recursive method cuts some reach's
// convolution IRF at the end of its window, which silently loses (or,
// for an IRF normalised over the window, hastens) that reach's outflow.
func checkWindow(warn func(string, ...any), rr *diffroute.RecursiveRouter) {
	ratio, id := rr.WindowTail()
	if warn == nil || !(ratio > lostMassWarn) {
		return
	}
	warn("recursive method: the IRF of reach %d is still at %.3g %% of its peak at the end of its window: the response beyond it is lost (or, for an IRF normalised over the window such as hayami, comes too early): raise --max-delay",
		id, 100*ratio)
}

// checkWindowOf is checkWindow for runs that build their recursive routers
// cluster by cluster or chunk by chunk (staged, time-chunked): it reads the
// IRFs of the whole network without preparing a router.
func checkWindowOf(warn func(string, ...any), net *diffroute.Network, opts diffroute.Options) {
	if warn == nil || opts.Method != diffroute.Recursive {
		return
	}
	ratio, id, err := diffroute.WindowTail(net, opts)
	if err != nil || !(ratio > lostMassWarn) {
		return // a bad parameter is reported by the routing itself
	}
	warn("recursive method: the IRF of reach %d is still at %.3g %% of its peak at the end of its window: the response beyond it is lost (or, for an IRF normalised over the window such as hayami, comes too early): raise --max-delay",
		id, 100*ratio)
}

// timing describes where GPU time went in the routers and staged backend
// of this run ("" on the CPU).
func (d *device) timing() string {
	if d.dev == nil {
		return ""
	}
	var t gpu.Timing
	built := ""
	for _, r := range d.routers {
		t.Add(r.Stats().Timing)
		if r.BuiltOnDevice() {
			built = fmt.Sprintf("; kernel built on the device in %v", r.CPU().Stats().BuildTime.Round(time.Millisecond))
		}
	}
	if d.staged != nil {
		t.Add(d.staged.Timing())
	}
	return fmt.Sprintf("%s: %s%s", d.dev.Info().Name, t, built)
}

// stage plugs the device into a staged router, and watches the kernels
// its clusters build (see warnStaged).
func (d *device) stage(sr *diffroute.StagedRouter) error {
	build := diffroute.NewKernelRouter
	if d.dev != nil {
		b, err := gpu.NewStagedBackend(d.dev, nil, nil)
		if err != nil {
			return err
		}
		d.staged = b
		sr.ClusterRouter = b.Factory()
		build = b.KernelBuilder()
	}
	sr.KernelBuilder = func(ctx context.Context, net *diffroute.Network, o diffroute.Options) (*diffroute.KernelRouter, error) {
		kr, err := build(ctx, net, o)
		if err == nil {
			st := kr.Stats()
			d.mu.Lock()
			if d.cut == nil || st.TruncatedMassMax > d.cut.TruncatedMassMax {
				d.cut = &st
			}
			d.mu.Unlock()
		}
		return kr, err
	}
	return nil
}

// warnStaged warns, once a staged run is routed, when the kernel of some
// cluster cut a path's response (checkKernel), as an unstaged run's is
// checked when it is built.
func (d *device) warnStaged(opts diffroute.Options) {
	d.mu.Lock()
	cut := d.cut
	d.mu.Unlock()
	if cut != nil {
		d.checkKernel(*cut, opts)
	}
}

func (d *device) close() {
	if d.staged != nil {
		d.staged.Close()
	}
	if d.dev != nil {
		d.dev.Close()
	}
}
