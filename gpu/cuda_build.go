//go:build cuda || cudaemu

package gpu

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/diffroute-go/route/gpu/internal/cu"

	"github.com/diffroute-go/route/diffroute"
)

// buildKernel builds net's kernel where that is faster (see the package
// documentation): on the device when it comes from spectra — unless
// ro.CPUBuild, or the fold is wider than dr_pair_taps holds — and on the
// CPU otherwise, or when the device runs out of memory. vals is the device
// copy of the taps when the device built them, zero otherwise.
func (d *Device) buildKernel(ctx context.Context, net *diffroute.Network, opts diffroute.Options, ro RouterOptions) (kr *diffroute.KernelRouter, vals devBuf, err error) {
	sk, err := diffroute.NewSpectralKernel(ctx, net, opts)
	switch {
	case errors.Is(err, diffroute.ErrNotSpectral):
	case err != nil:
		return nil, devBuf{}, err
	case !ro.CPUBuild && (sk.ReLU || sk.FoldBins/2+1 <= pairMaxFold):
		kr, vals, err = d.buildSpectral(ctx, sk, ro.Threads)
		if !errors.Is(err, ErrOutOfMemory) { // the CPU build needs no device memory
			return kr, vals, err
		}
	}
	kr, err = diffroute.NewKernelRouter(ctx, net, opts)
	return kr, devBuf{}, err
}

// buildSpectral builds an FFT-path kernel on the device (pairs.cu,
// prefix.cu): the reach log spectra computed on the CPU are summed to the
// outlet by pointer jumping, the closure pairs enumerated, and every pair's
// taps folded from its spectrum, all in device memory. It returns the
// kernel router (with a host copy of the taps, for Router.CPU and the
// layout) and the device copy of the taps, kept for the convolution.
func (d *Device) buildSpectral(ctx context.Context, sk *diffroute.SpectralKernel, threads int) (*diffroute.KernelRouter, devBuf, error) {
	bs := sk.Layout
	n, width := int64(bs.N), int64(2*sk.NF)
	np := sk.Pairs()
	nvals := bs.RowTiles[len(bs.RowTiles)-1] * int64(bs.B*bs.B*bs.Taps)
	hostVals := make([]float32, nvals)
	hostSums := make([]float64, np)
	var vals devBuf
	if nvals == 0 || np == 0 {
		return nil, vals, fmt.Errorf("gpu: empty kernel")
	}
	err := d.do(func() (err error) {
		var tmp []*devBuf
		keep := func(b devBuf, e error) (*devBuf, error) {
			p := &b
			tmp = append(tmp, p)
			return p, e
		}
		defer func() {
			for _, b := range tmp {
				b.free()
			}
			if err != nil {
				vals.free()
			}
		}()
		// 1. Prefix sums of the log spectra, ping-pong between two buffers.
		pin, err := keep(upload(sk.L, fmt.Sprintf("reach log spectra (%d reaches × %d bins)", n, sk.NF)))
		if err != nil {
			return err
		}
		pout, err := keep(alloc(pin.bytes, "prefix log spectra"))
		if err != nil {
			return err
		}
		nxtIn, err := keep(upload(sk.DownPos, "downstream positions"))
		if err != nil {
			return err
		}
		nxtOut, err := keep(alloc(nxtIn.bytes, "pointer-jumping links"))
		if err != nil {
			return err
		}
		for s := 1; s < sk.MaxDepth; s *= 2 {
			if err := d.launch(kernelPrefixJump, n*width, threads, cu.Stream{}, pout.p, pin.p, nxtOut.p, nxtIn.p, n, width); err != nil {
				return err
			}
			pin, pout = pout, pin // the sums so far are in pin
			nxtIn, nxtOut = nxtOut, nxtIn
		}
		// 2. The closure pairs.
		pairStart, err := keep(upload(sk.PairStart, "pair offsets"))
		if err != nil {
			return err
		}
		downPos, err := keep(upload(sk.DownPos, "downstream positions"))
		if err != nil {
			return err
		}
		pairD, err := keep(alloc(np*4, fmt.Sprintf("pair rows (%d pairs)", np)))
		if err != nil {
			return err
		}
		pairS, err := keep(alloc(np*4, fmt.Sprintf("pair columns (%d pairs)", np)))
		if err != nil {
			return err
		}
		if err := d.launch(kernelPairEnum, n, threads, cu.Stream{}, pairD.p, pairS.p, pairStart.p, downPos.p, n); err != nil {
			return err
		}
		// 3. Every pair's taps.
		src, err := keep(upload(sk.Src, "source lateral log spectra"))
		if err != nil {
			return err
		}
		boxed, err := keep(upload(sk.Boxed, "boxed-source flags"))
		if err != nil {
			return err
		}
		rowTiles, err := keep(upload(bs.RowTiles, "the kernel's row index"))
		if err != nil {
			return err
		}
		fold, err := keep(upload(sk.Fold, "fold tables"))
		if err != nil {
			return err
		}
		trig, err := keep(upload(sk.Trig, "inverse DFT twiddles"))
		if err != nil {
			return err
		}
		selfTaps, err := keep(upload(sk.SelfTaps, "self-pair taps"))
		if err != nil {
			return err
		}
		sums, err := keep(alloc(np*8, fmt.Sprintf("pair sums (%d pairs)", np)))
		if err != nil {
			return err
		}
		if vals, err = alloc(nvals*4, fmt.Sprintf("the block-sparse kernel (%d pairs × %d taps in %d tiles)", np, bs.Taps, bs.RowTiles[len(bs.RowTiles)-1])); err != nil {
			return err
		}
		if err := cu.MemsetD32(vals.p, 0, nvals); err != nil {
			return fmt.Errorf("gpu: clearing the kernel: %v", err)
		}
		normalize := int64(0)
		if sk.Normalize {
			normalize = 1
		}
		if sk.ReLU {
			// The fine kernel: per thread, the spectrum, W fine values and
			// the taps in scratch; a grid of at most fineThreads threads
			// bounds it.
			total := min(np, fineThreads)
			per := int64(2*sk.NF + sk.Taps*sk.F + sk.Taps)
			scratch, err := keep(alloc(d.gridThreads(total, threads)*per*8, fmt.Sprintf("fine-kernel scratch (%d doubles per thread)", per)))
			if err != nil {
				return err
			}
			sample := int64(0)
			if sk.Sample {
				sample = 1
			}
			err = d.launch(kernelPairTapsFine, total, threads, cu.Stream{},
				vals.p, sums.p, pairD.p, pairS.p, pin.p, src.p, boxed.p, downPos.p, rowTiles.p, trig.p, selfTaps.p, scratch.p,
				np, int64(sk.NF), int64(sk.M), int64(sk.F), int64(bs.Taps), int64(bs.B), int64(sk.Mode), normalize, int64(sk.Shift), sample)
			if err != nil {
				return err
			}
		} else {
			err = d.launch(kernelPairTaps, np, threads, cu.Stream{},
				vals.p, sums.p, pairD.p, pairS.p, pin.p, src.p, boxed.p, downPos.p, rowTiles.p, fold.p, selfTaps.p,
				np, int64(sk.NF), int64(sk.M), int64(sk.FoldBins), int64(bs.Taps), int64(bs.B), int64(sk.Mode), normalize)
			if err != nil {
				return err
			}
		}
		if err := cu.Synchronize(); err != nil {
			return fmt.Errorf("gpu: building the kernel on the device: %v", err)
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&hostVals[0]), vals.p, nvals*4); err != nil {
			return fmt.Errorf("gpu: copying the kernel from the device: %v", err)
		}
		if err := cu.MemcpyDtoH(unsafe.Pointer(&hostSums[0]), sums.p, np*8); err != nil {
			return fmt.Errorf("gpu: copying pair sums from the device: %v", err)
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, devBuf{}, err
	}
	kr, err := sk.Finish(hostVals, hostSums)
	if err != nil {
		_ = d.do(func() error { vals.free(); return nil })
		return nil, devBuf{}, err
	}
	return kr, vals, nil
}
