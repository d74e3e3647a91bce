//go:build cuda || cudaemu

package gpu

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/diffroute-go/route/gpu/internal/cu"

	"github.com/diffroute-go/route/diffroute"
)

// KernelTapGrad returns ∂L/∂K for every tap of the kernel, in the layout of
// the kernel's taps (diffroute.BlockSparseKernel.Vals), given the runoff and
// gy = ∂L/∂y: per pair (d, s) and tap k, Σ_b Σ_t x[b, s, t]·gy[b, d, t+k],
// on the device (dr_tapgrad, accumulated in double over time chunks). It is
// the heavy part of the kernel method's parameter gradients, whose chain to
// the IRF parameters (diffroute.KernelRouter.BackwardParamsFromTaps) is
// cheap and runs on the host.
func (r *Router) KernelTapGrad(ctx context.Context, runoff, gy *diffroute.DataTensor) ([]float64, error) {
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
	bs := r.cpu.BlockSparse()
	dk := make([]float64, len(bs.Vals))
	if runoff.T == 0 || bs.N == 0 || len(dk) == 0 {
		return dk, nil
	}
	xrow, grow := make([]int, bs.N), make([]int, bs.N)
	for p, v := range bs.Order {
		xrow[p], grow[p] = idx[v], int(v)
	}
	B, n, T, ahead := runoff.B, bs.N, runoff.T, bs.Taps-1
	threads := r.opts.Threads
	err = r.dev.do(func() (err error) {
		var bufs []*devBuf
		keep := func(b devBuf, e error) (*devBuf, error) {
			bufs = append(bufs, &b)
			return &b, e
		}
		defer func() {
			for _, b := range bufs {
				b.free()
			}
		}()
		dkb, err := keep(alloc(int64(len(dk))*8, "∂L/∂ taps (double)"))
		if err != nil {
			return err
		}
		if err := cu.MemsetD32(dkb.p, 0, int64(len(dk))*2); err != nil {
			return fmt.Errorf("gpu: clearing ∂L/∂ taps: %v", err)
		}
		tileRow, err := keep(upload(bs.TileRow, "the kernel's tile rows"))
		if err != nil {
			return err
		}
		// Time chunks: what the free memory allows for the runoff chunk and
		// its ∂L/∂y with lookahead, as for the convolution's slots.
		free, _, err := cu.MemInfo()
		if err != nil {
			return fmt.Errorf("gpu: memory info: %v", err)
		}
		budget := free / 2
		if r.opts.MemoryBudget > 0 {
			budget = r.opts.MemoryBudget
		}
		tc, err := chunkSteps(budget, B, n, ahead, T)
		if err != nil {
			return err
		}
		x, err := keep(alloc(int64(B*n*tc)*4, "a runoff chunk"))
		if err != nil {
			return err
		}
		gyb, err := keep(alloc(int64(B*n*(tc+ahead))*4, "a ∂L/∂y chunk"))
		if err != nil {
			return err
		}
		hx := make([]float32, B*n*tc)
		hg := make([]float32, B*n*(tc+ahead))
		for _, c := range chunks(T, tc, 0) {
			if err := ctx.Err(); err != nil {
				return err
			}
			packChunk(hx, runoff, xrow, c)
			ca := chunk{T0: c.T0, Len: c.Len, Hist: ahead} // TX() = Len + lookahead
			packAhead(hg, gy, grow, ca)
			if err := cu.MemcpyHtoD(x.p, unsafe.Pointer(&hx[0]), int64(B*n*c.Len)*4); err != nil {
				return fmt.Errorf("gpu: copying a runoff chunk to the device: %v", err)
			}
			if err := cu.MemcpyHtoD(gyb.p, unsafe.Pointer(&hg[0]), int64(B*n*ca.TX())*4); err != nil {
				return fmt.Errorf("gpu: copying a ∂L/∂y chunk to the device: %v", err)
			}
			if err := r.dev.launch(kernelTapGrad, int64(len(dk)), threads, cu.Stream{},
				dkb.p, x.p, gyb.p, tileRow.p, r.k.tileCol.p, r.k.size.p,
				int64(len(bs.TileRow)), int64(n), int64(bs.B), int64(bs.Taps), int64(B), int64(c.Len), int64(ca.TX())); err != nil {
				return err
			}
			if err := cu.Synchronize(); err != nil {
				return fmt.Errorf("gpu: ∂L/∂ taps on the device: %v", err)
			}
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&dk[0]), dkb.p, int64(len(dk))*8); err != nil {
			return fmt.Errorf("gpu: copying ∂L/∂ taps from the device: %v", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dk, nil
}
