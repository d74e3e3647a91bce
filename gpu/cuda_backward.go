//go:build cuda || cudaemu

package gpu

import (
	"context"
	"fmt"
	"time"

	"github.com/diffroute-go/route/gpu/internal/cu"

	"github.com/diffroute-go/route/diffroute"
)

// BackwardRunoff returns ∂L/∂runoff given gy = ∂L/∂y (the dims and network
// order of the discharge Route returns), in the runoff's layout: the
// transposed block-sparse convolution, run on the device over time chunks
// like Route (dr_bsconv_adj). It needs no forward pass: the convolution is
// linear in runoff.
func (r *Router) BackwardRunoff(ctx context.Context, runoff, gy *diffroute.DataTensor) (*diffroute.DataTensor, error) {
	net := r.cpu.Network()
	idx, err := alignRows(runoff, net)
	if err != nil {
		return nil, err
	}
	if err := checkGy(gy, net, runoff.B, runoff.T); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	bs := r.cpu.BlockSparse()
	grow := make([]int, bs.N)   // ∂L/∂y row of position p
	xrow := make([]int32, bs.N) // runoff row of position p
	for p, v := range bs.Order {
		grow[p], xrow[p] = int(v), int32(idx[v])
	}
	dx := runoffGrad(runoff)
	if runoff.T == 0 || bs.N == 0 {
		return dx, nil
	}
	ahead := bs.Taps - 1
	var stats RouteStats
	err = r.dev.do(func() error {
		tc, err := r.chunkLen(runoff.B, runoff.T, ahead)
		if err != nil {
			return err
		}
		cs := chunks(runoff.T, tc, ahead)
		if r.slots == nil {
			if r.slots, err = newSlots(r.dev); err != nil {
				return err
			}
		}
		if err := r.slots.ensure(runoff.B*bs.N*(ahead+tc), runoff.B*bs.N*tc); err != nil {
			return err
		}
		downPos, err := upload(downPositions(bs, net), "the kernel's downstream positions")
		if err != nil {
			return err
		}
		defer downPos.free()
		r.slots.resetTiming()
		pack := func(dst []float32, c chunk) { packAhead(dst, gy, grow, c) }
		unpack := func(src []float32, c chunk) { unpackChunk(dx, src, xrow, c, 0) }
		host, err := pipeline(ctx, routerAdj{r: r, nb: runoff.B, downPos: downPos}, cs, pack, unpack)
		if err != nil {
			return err
		}
		stats.Chunks, stats.ChunkSteps = len(cs), tc
		stats.FMAs, stats.Bytes = convWork(bs, r.cpu.Stats().Pairs, runoff.B, runoff.T, cs)
		stats.Timing = r.slots.timing(host)
		return nil
	})
	if err != nil {
		return nil, err
	}
	stats.TotalSeconds = time.Since(start).Seconds()
	r.backStats = stats
	return dx, nil
}

// BackwardStats describes the last BackwardRunoff call (Backward and
// RouteGrad make one).
func (r *Router) BackwardStats() RouteStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backStats
}

// Backward implements diffroute.Differentiable: ∂L/∂runoff on the device
// (BackwardRunoff) and, at the same time on the CPU, the parameter and
// initial-discharge gradients of the kernel method
// (diffroute.KernelRouter.BackwardParams: the recursive adjoint; none for
// kernels with ReLU, renormalisation or excluded self pairs).
func (r *Router) Backward(ctx context.Context, runoff, gy *diffroute.DataTensor) (*diffroute.Gradients, error) {
	type result struct {
		g   *diffroute.Gradients
		err error
	}
	done := make(chan result, 1)
	go func() {
		g, err := r.cpu.BackwardParams(ctx, runoff, gy)
		done <- result{g, err}
	}()
	dx, err := r.BackwardRunoff(ctx, runoff, gy)
	res := <-done
	if err != nil {
		return nil, err
	}
	if res.err != nil {
		return nil, res.err
	}
	res.g.Runoff = dx
	return res.g, nil
}

// RouteGrad implements diffroute.Differentiable: Route on the device, the
// loss and its ∂L/∂y on the host, then Backward.
func (r *Router) RouteGrad(ctx context.Context, runoff *diffroute.DataTensor, loss diffroute.LossFunc) (*diffroute.DataTensor, float64, *diffroute.Gradients, error) {
	if loss == nil {
		return nil, 0, nil, fmt.Errorf("gpu: RouteGrad needs a loss function")
	}
	y, err := r.Route(ctx, runoff)
	if err != nil {
		return nil, 0, nil, err
	}
	gy := diffroute.NewDataTensor(y.B, y.IDs, y.T)
	L, err := loss(y, gy)
	if err != nil {
		return nil, 0, nil, err
	}
	g, err := r.Backward(ctx, runoff, gy)
	if err != nil {
		return nil, 0, nil, err
	}
	return y, L, g, nil
}

// chunkLen picks the time chunk for b members and T steps with hist steps
// of history or lookahead: what the device memory budget (free memory and
// the slots already held, when RouterOptions.MemoryBudget is 0), the
// pinned host budget and RouterOptions.ChunkSteps allow. It runs on the
// device goroutine.
func (r *Router) chunkLen(b, T, hist int) (int, error) {
	free, _, err := cu.MemInfo()
	if err != nil {
		return 0, fmt.Errorf("gpu: memory info: %v", err)
	}
	budget := r.opts.MemoryBudget
	if budget == 0 {
		budget = (free + r.slots.deviceBytes()) / 10 * 8
	}
	n := r.cpu.BlockSparse().N
	tc, err := chunkSteps(budget, b, n, hist, T)
	if err != nil {
		return 0, err
	}
	htc, err := chunkSteps(r.opts.HostBudget, b, n, hist, T)
	if err != nil {
		return 0, fmt.Errorf("%v (pinned host buffers)", err)
	}
	tc = min(tc, htc)
	if r.opts.ChunkSteps > 0 {
		tc = min(tc, r.opts.ChunkSteps)
	}
	return tc, nil
}

// routerAdj is the pipeline's device for BackwardRunoff: the router's kept
// slots, its kernel and the downstream positions.
type routerAdj struct {
	r       *Router
	nb      int
	downPos devBuf
}

func (c routerAdj) hostIn(s int) []float32  { return c.r.slots.hostIn(s) }
func (c routerAdj) hostOut(s int) []float32 { return c.r.slots.hostOut(s) }
func (c routerAdj) wait(s int) error        { return c.r.slots.wait(s) }

func (c routerAdj) run(s int, ch chunk) error {
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
	err := sl.timedLaunch(s, kernelBSConvAdj, int64(c.nb*n*ch.Len), r.opts.Threads,
		sl.dout[s].p, sl.din[s].p, r.vals.p, r.rowTiles.p, c.downPos.p,
		int64(n), int64(bs.B), int64(bs.Taps), int64(c.nb), int64(ch.TX()), int64(ch.Hist))
	if err != nil {
		return err
	}
	return sl.download(s, int64(c.nb*n*ch.Len)*4)
}

var _ diffroute.Differentiable = (*Router)(nil)
