//go:build cuda || cudaemu

package gpu

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// Router routes with the kernel method on a GPU: the kernel is built on the
// CPU (diffroute.NewKernelRouter, same options and results) and uploaded in
// its block-sparse layout; Route streams the runoff through the device in
// time chunks, two at a time on two streams, so that host packing, copies
// and the convolution overlap.
type Router struct {
	dev  *Device
	cpu  *diffroute.KernelRouter
	opts RouterOptions

	mu            sync.Mutex // one Route at a time
	stats         RouteStats
	backStats     RouteStats // of the last BackwardRunoff
	builtOnDevice bool

	k    *devKernel // the kernel on the device (freed by Close)
	conv *cudaConv  // the pipeline, its slots kept across calls (freed by Close)
}

// NewRouter is NewRouter on d with default router options: with d as
// diffroute.Options.Device, diffroute.NewRouter routes here.
func (d *Device) NewRouter(ctx context.Context, net *diffroute.Network, opts diffroute.Options) (diffroute.Router, error) {
	r, err := NewRouter(ctx, d, net, opts, nil)
	if err != nil {
		return nil, err
	}
	return r, nil
}

var _ diffroute.Device = (*Device)(nil)

// NewRouter builds the kernel of net on the CPU and uploads it to d.
func NewRouter(ctx context.Context, d *Device, net *diffroute.Network, opts diffroute.Options, ropts *RouterOptions) (*Router, error) {
	ro, err := ropts.orDefaults()
	if err != nil {
		return nil, err
	}
	kr, vals, err := d.buildKernel(ctx, net, opts, ro)
	if err != nil {
		return nil, err
	}
	r := &Router{dev: d, cpu: kr, opts: ro, builtOnDevice: vals.bytes > 0, conv: &cudaConv{d: d, opts: ro}}
	err = d.do(func() (err error) {
		r.k, err = uploadKernel(kr.BlockSparse(), vals)
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// BuiltOnDevice reports whether the kernel was built on the device (see
// RouterOptions.CPUBuild).
func (r *Router) BuiltOnDevice() bool { return r.builtOnDevice }

// Network returns the network the kernel was built for.
func (r *Router) Network() *diffroute.Network { return r.cpu.Network() }

// CPU returns the CPU kernel router the GPU kernel came from.
func (r *Router) CPU() *diffroute.KernelRouter { return r.cpu }

// Stats describes the last Route call.
func (r *Router) Stats() RouteStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close frees the kernel and the chunk buffers on the device.
func (r *Router) Close() error {
	_ = r.dev.do(func() error {
		if r.k != nil {
			r.k.free()
		}
		return nil
	})
	return r.conv.close()
}

// Route returns the discharge of every reach (network order) for runoff
// aligned by reach id, from a zero initial state.
func (r *Router) Route(ctx context.Context, runoff *diffroute.DataTensor) (*diffroute.DataTensor, error) {
	if _, err := alignRows(runoff, r.cpu.Network()); err != nil {
		return nil, err
	}
	y := discharge(runoff, r.cpu.Network())
	if err := r.routeTo(ctx, y, runoff); err != nil {
		return nil, err
	}
	return y, nil
}

// RouteWarm routes runoff whose first warmup steps are history only and
// returns steps [warmup, T) (see diffroute.KernelRouter.RouteWarm): a
// diffroute.KernelStream over it routes consecutive segments through the
// device with a state that restarts exactly. The warm-up steps are routed
// and dropped.
func (r *Router) RouteWarm(ctx context.Context, runoff *diffroute.DataTensor, warmup int) (*diffroute.DataTensor, error) {
	if warmup < 0 || warmup > runoff.T {
		return nil, fmt.Errorf("gpu: warm-up of %d steps for %d steps of runoff", warmup, runoff.T)
	}
	y, err := r.Route(ctx, runoff)
	if err != nil {
		return nil, err
	}
	if warmup == 0 {
		return y, nil
	}
	return y.SliceTime(warmup, y.T), nil
}

// RouteTo is Route writing into dst, which must have runoff's batch and time
// dims and the network's reach ids in network order; every value is
// overwritten.
func (r *Router) RouteTo(ctx context.Context, dst, runoff *diffroute.DataTensor) error {
	if err := checkDst(dst, runoff, r.cpu.Network()); err != nil {
		return err
	}
	return r.routeTo(ctx, dst, runoff)
}

// Reset does nothing: every call starts from a zero state.
func (r *Router) Reset() {}

func (r *Router) routeTo(ctx context.Context, y, runoff *diffroute.DataTensor) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	// The whole network is one job: no warm-up, no transfers.
	j, err := newClusterJob(r.cpu, diffroute.ClusterJob{Runoff: runoff}, nil, nil)
	if err != nil {
		return err
	}
	j.dk = r.k
	if runoff.T == 0 || j.bs.N == 0 {
		return nil
	}
	tc, err := r.conv.chunkSteps(j)
	if err != nil {
		return err
	}
	r.conv.resetTiming()
	host, err := runJob(ctx, r.conv, j, y, tc)
	if err != nil {
		return err
	}
	r.stats = r.callStats(j, tc, host, start)
	return nil
}

// callStats describes a Route or BackwardRunoff call that ran job j in
// chunks of tc steps.
func (r *Router) callStats(j *clusterJob, tc int, host float64, start time.Time) RouteStats {
	cs := j.chunks(tc)
	stats := RouteStats{Chunks: len(cs), ChunkSteps: tc, Timing: r.conv.timing(host)}
	stats.FMAs, stats.Bytes = convWork(j.bs, r.cpu.Stats().Pairs, j.B, j.T, cs)
	stats.TotalSeconds = time.Since(start).Seconds()
	return stats
}

var _ diffroute.Router = (*Router)(nil)
