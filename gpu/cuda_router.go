//go:build cuda || cudaemu

package gpu

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/diffroute-go/route/gpu/internal/cu"

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

	// Device copies of the kernel (freed by Close).
	vals, rowTiles, tileCol, size devBuf
	// Streams, pinned host and device chunk buffers, kept across Route
	// calls (freed by Close).
	slots *cudaSlots
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
	var ro RouterOptions
	if ropts != nil {
		ro = *ropts
	}
	ro, err := ro.withDefaults()
	if err != nil {
		return nil, err
	}
	kr, vals, err := d.buildKernel(ctx, net, opts, ro)
	if err != nil {
		return nil, err
	}
	r := &Router{dev: d, cpu: kr, opts: ro, builtOnDevice: vals.bytes > 0}
	bs := kr.BlockSparse()
	err = d.do(func() error {
		var err error
		if vals.bytes > 0 {
			r.vals = vals
		} else if r.vals, err = upload(bs.Vals, "the block-sparse kernel"); err != nil {
			return err
		}
		if r.rowTiles, err = upload(bs.RowTiles, "the kernel's row index"); err != nil {
			return err
		}
		if r.tileCol, err = upload(bs.TileCol, "the kernel's tile columns"); err != nil {
			return err
		}
		r.size, err = upload(bs.Size, "the kernel's row lengths")
		return err
	})
	if err != nil {
		r.Close()
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
	return r.dev.do(func() error {
		for _, b := range []*devBuf{&r.vals, &r.rowTiles, &r.tileCol, &r.size} {
			b.free()
		}
		if r.slots != nil {
			r.slots.close()
			r.slots = nil
		}
		return nil
	})
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
	net := r.cpu.Network()
	idx, err := alignRows(runoff, net)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	bs := r.cpu.BlockSparse()
	xrow := make([]int, bs.N)
	for p, v := range bs.Order {
		xrow[p] = idx[v]
	}
	if runoff.T == 0 || bs.N == 0 {
		return nil
	}
	hist := bs.Taps - 1
	var stats RouteStats
	err = r.dev.do(func() error {
		free, _, err := cu.MemInfo()
		if err != nil {
			return fmt.Errorf("gpu: memory info: %v", err)
		}
		budget := r.opts.MemoryBudget
		if budget == 0 {
			budget = (free + r.slots.deviceBytes()) / 10 * 8 // kept slots count as free
		}
		tc, err := chunkSteps(budget, runoff.B, bs.N, hist, runoff.T)
		if err != nil {
			return err
		}
		if htc, err := chunkSteps(r.opts.HostBudget, runoff.B, bs.N, hist, runoff.T); err == nil {
			tc = min(tc, htc)
		} else {
			return fmt.Errorf("%v (pinned host buffers)", err)
		}
		if r.opts.ChunkSteps > 0 {
			tc = min(tc, r.opts.ChunkSteps)
		}
		cs := chunks(runoff.T, tc, hist)
		if r.slots == nil {
			if r.slots, err = newSlots(r.dev); err != nil {
				return err
			}
		}
		// The slots are kept across calls (pinned and device buffers are
		// costly to allocate); they grow when a call needs longer chunks.
		if err := r.slots.ensure(runoff.B*bs.N*(hist+tc), runoff.B*bs.N*tc); err != nil {
			return err
		}
		r.slots.resetTiming()
		pack := func(dst []float32, c chunk) { packChunk(dst, runoff, xrow, c) }
		unpack := func(src []float32, c chunk) { unpackChunk(y, src, bs.Order, c, 0) }
		host, err := pipeline(ctx, routerConv{r: r, nb: runoff.B}, cs, pack, unpack)
		if err != nil {
			return err
		}
		stats.Chunks, stats.ChunkSteps = len(cs), tc
		stats.FMAs, stats.Bytes = convWork(bs, r.cpu.Stats().Pairs, runoff.B, runoff.T, cs)
		stats.Timing = r.slots.timing(host)
		return nil
	})
	if err != nil {
		return err
	}
	stats.TotalSeconds = time.Since(start).Seconds()
	r.stats = stats
	return nil
}

// routerConv is the pipeline's device for Router.Route: the router's kept
// slots and its kernel.
type routerConv struct {
	r  *Router
	nb int
}

func (c routerConv) hostIn(s int) []float32  { return c.r.slots.hostIn(s) }
func (c routerConv) hostOut(s int) []float32 { return c.r.slots.hostOut(s) }
func (c routerConv) wait(s int) error        { return c.r.slots.wait(s) }

func (c routerConv) run(s int, ch chunk) error {
	bs := c.r.cpu.BlockSparse()
	n := bs.N
	sl := c.r.slots
	if err := sl.begin(s, opCopy); err != nil {
		return err
	}
	if err := sl.upload(s, int64(c.nb*n*ch.TX())*4); err != nil {
		return err
	}
	r := c.r
	err := sl.timedLaunch(s, kernelBSConv, int64(c.nb*n*ch.Len), r.opts.Threads,
		sl.dout[s].p, sl.din[s].p, r.vals.p, r.rowTiles.p, r.tileCol.p, r.size.p,
		int64(n), int64(bs.B), int64(bs.Taps), int64(c.nb), int64(ch.TX()), int64(ch.Hist))
	if err != nil {
		return err
	}
	return sl.download(s, int64(c.nb*n*ch.Len)*4)
}

var _ diffroute.Router = (*Router)(nil)
