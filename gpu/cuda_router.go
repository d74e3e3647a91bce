//go:build cuda

package gpu

import (
	"context"
	"fmt"
	"sync"
	"time"

	"gorgonia.org/cu"

	"github.com/diffroute-go/diffroute/diffroute"
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

	mu    sync.Mutex // one Route at a time
	stats RouteStats

	// Device copies of the kernel (freed by Close).
	vals, rowTiles, tileCol, size devBuf
}

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
	kr, err := diffroute.NewKernelRouter(ctx, net, opts)
	if err != nil {
		return nil, err
	}
	r := &Router{dev: d, cpu: kr, opts: ro}
	bs := kr.BlockSparse()
	err = d.do(func() error {
		var err error
		if r.vals, err = upload(bs.Vals, "the block-sparse kernel"); err != nil {
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

// Close frees the kernel on the device.
func (r *Router) Close() error {
	return r.dev.do(func() error {
		for _, b := range []*devBuf{&r.vals, &r.rowTiles, &r.tileCol, &r.size} {
			b.free()
		}
		return nil
	})
}

// Route returns the discharge of every reach (network order) for runoff
// aligned by reach id, from a zero initial state.
func (r *Router) Route(ctx context.Context, runoff *diffroute.DataTensor) (*diffroute.DataTensor, error) {
	net := r.cpu.Network()
	idx, err := alignRows(runoff, net)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	bs := r.cpu.BlockSparse()
	xrow := make([]int, bs.N)
	for p, v := range bs.Order {
		xrow[p] = idx[v]
	}
	y := discharge(runoff, net)
	if runoff.T == 0 || bs.N == 0 {
		return y, nil
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
			budget = free / 10 * 8
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
		cd, err := r.newConv(runoff.B, hist, tc)
		if err != nil {
			return err
		}
		defer cd.close()
		if err := pipeline(ctx, cd, runoff, y, xrow, bs.Order, cs); err != nil {
			return err
		}
		stats.Chunks, stats.ChunkSteps = len(cs), tc
		stats.FMAs, stats.Bytes = convWork(bs, r.cpu.Stats().Pairs, runoff.B, runoff.T, cs)
		stats.ConvSeconds, err = cd.convTime()
		return err
	})
	if err != nil {
		return nil, err
	}
	stats.TotalSeconds = time.Since(start).Seconds()
	r.stats = stats
	return y, nil
}

// cudaConv is the pipeline's device: two slots, each a stream with pinned
// host and device buffers for one chunk, and events around each launch.
type cudaConv struct {
	r        *Router
	nb       int
	streams  [2]cu.Stream
	hin      [2]pinned
	hout     [2]pinned
	din      [2]devBuf
	dout     [2]devBuf
	ev       [2][2]cu.Event // per slot: before and after the launch
	timed    [2]bool        // slot has a launch whose events are not yet read
	convSecs float64
}

func (r *Router) newConv(nb, hist, tc int) (c *cudaConv, err error) {
	c = &cudaConv{r: r, nb: nb}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	n := r.cpu.BlockSparse().N
	nin, nout := nb*n*(hist+tc), nb*n*tc
	for s := range 2 {
		if c.streams[s], err = cu.MakeStream(cu.NonBlocking); err != nil {
			return nil, fmt.Errorf("gpu: creating a stream: %v", err)
		}
		for e := range 2 {
			if c.ev[s][e], err = cu.MakeEvent(cu.DefaultEvent); err != nil {
				return nil, fmt.Errorf("gpu: creating an event: %v", err)
			}
		}
		if c.hin[s], err = allocPinned(nin); err != nil {
			return nil, err
		}
		if c.hout[s], err = allocPinned(nout); err != nil {
			return nil, err
		}
		if c.din[s], err = alloc(int64(nin)*4, fmt.Sprintf("runoff chunk buffer %d (%d steps with %d of history)", s, tc, hist)); err != nil {
			return nil, err
		}
		if c.dout[s], err = alloc(int64(nout)*4, fmt.Sprintf("discharge chunk buffer %d (%d steps)", s, tc)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *cudaConv) hostIn(s int) []float32  { return c.hin[s].f }
func (c *cudaConv) hostOut(s int) []float32 { return c.hout[s].f }

func (c *cudaConv) run(s int, ch chunk) error {
	bs := c.r.cpu.BlockSparse()
	n := bs.N
	nin, nout := int64(c.nb*n*ch.TX())*4, int64(c.nb*n*ch.Len)*4
	st := c.streams[s]
	if err := cu.MemcpyHtoDAsync(c.din[s].p, c.hin[s].p, nin, st); err != nil {
		return fmt.Errorf("gpu: copying a runoff chunk (%s) to the device: %v", mib(nin), err)
	}
	if err := c.ev[s][0].Record(st); err != nil {
		return fmt.Errorf("gpu: recording an event: %v", err)
	}
	r := c.r
	err := r.dev.launch(kernelBSConv, int64(c.nb*n*ch.Len), r.opts.Threads, st,
		c.dout[s].p, c.din[s].p, r.vals.p, r.rowTiles.p, r.tileCol.p, r.size.p,
		int64(n), int64(bs.B), int64(bs.Taps), int64(c.nb), int64(ch.TX()), int64(ch.Hist))
	if err != nil {
		return err
	}
	if err := c.ev[s][1].Record(st); err != nil {
		return fmt.Errorf("gpu: recording an event: %v", err)
	}
	c.timed[s] = true
	if err := cu.MemcpyDtoHAsync(c.hout[s].p, c.dout[s].p, nout, st); err != nil {
		return fmt.Errorf("gpu: copying a discharge chunk (%s) from the device: %v", mib(nout), err)
	}
	return nil
}

func (c *cudaConv) wait(s int) error {
	if err := c.streams[s].Synchronize(); err != nil {
		return fmt.Errorf("gpu: convolution failed: %v", err)
	}
	if c.timed[s] {
		ms, err := c.ev[s][0].Elapsed(c.ev[s][1])
		if err != nil {
			return fmt.Errorf("gpu: reading event times: %v", err)
		}
		c.convSecs += ms / 1e3
		c.timed[s] = false
	}
	return nil
}

func (c *cudaConv) convTime() (float64, error) { return c.convSecs, nil }

func (c *cudaConv) close() {
	for s := range 2 {
		if c.streams[s] != (cu.Stream{}) {
			_ = c.streams[s].Synchronize()
			_ = c.streams[s].Destroy()
		}
		for e := range 2 {
			if c.ev[s][e] != (cu.Event{}) {
				_ = cu.DestroyEvent(&c.ev[s][e])
			}
		}
		_ = c.hin[s].free()
		_ = c.hout[s].free()
		c.din[s].free()
		c.dout[s].free()
	}
}

var _ diffroute.Router = (*Router)(nil)
