package gpu

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// This file holds the host side of the GPU convolution that does not touch
// CUDA: aligning runoff by reach id, packing time chunks (with history) in
// the kernel's position order, unpacking discharge, sizing chunks, and the
// double-buffered pipeline over an abstract device. The CUDA backend
// (cuda*.go, build tag cuda) plugs streams and device memory into it; the
// tests plug in the kernel emulator (gpu/kernels), so that everything but the
// CUDA calls themselves runs without a GPU.

// alignRows returns, per network reach, the runoff row with its id (runoff is
// always aligned by id, never by position), as the CPU routers do.
// checkDst reports a RouteTo destination whose dims or reach ids differ from
// the discharge of runoff through net.
func checkDst(dst, runoff *diffroute.DataTensor, net *diffroute.Network) error {
	if runoff == nil {
		return fmt.Errorf("gpu: no runoff")
	}
	if dst == nil || dst.B != runoff.B || dst.T != runoff.T || dst.N != net.Len() || len(dst.Data) != dst.B*dst.N*dst.T || len(dst.IDs) != dst.N {
		return fmt.Errorf("gpu: RouteTo needs a destination of dims (%d, %d, %d)", runoff.B, net.Len(), runoff.T)
	}
	for i, id := range dst.IDs {
		if id != net.ID(i) {
			return fmt.Errorf("gpu: RouteTo destination row %d is reach %d, want %d (network order)", i, id, net.ID(i))
		}
	}
	return nil
}

func alignRows(runoff *diffroute.DataTensor, net *diffroute.Network) ([]int, error) {
	return diffroute.AlignRows(runoff, net)
}

// discharge allocates the output tensor: network order, runoff's labels.
func discharge(runoff *diffroute.DataTensor, net *diffroute.Network) *diffroute.DataTensor {
	y := diffroute.NewDataTensor(runoff.B, net.IDs(), runoff.T)
	if len(runoff.Times) == runoff.T {
		y.Times = slices.Clone(runoff.Times)
	}
	y.Step = runoff.Step
	y.Units = "m3/s"
	return y
}

// chunk is one time chunk of a run: output steps [T0, T0+Len), convolved
// from runoff steps [T0−Hist, T0+Len) (steps before 0 are zero).
type chunk struct {
	T0, Len, Hist int
}

// TX is the number of input steps of the chunk.
func (c chunk) TX() int { return c.Hist + c.Len }

// chunks cuts T steps into chunks of at most tc steps, each with hist steps
// of history.
func chunks(T, tc, hist int) []chunk {
	var cs []chunk
	for t0 := 0; t0 < T; t0 += tc {
		cs = append(cs, chunk{T0: t0, Len: min(tc, T-t0), Hist: hist})
	}
	return cs
}

// packChunk writes runoff steps [c.T0−c.Hist, c.T0+c.Len) of every reach into
// dst as [B][N][c.TX()] in kernel position order (xrow[p] is the runoff row of
// position p), zeros before step 0.
func packChunk(dst []float32, x *diffroute.DataTensor, xrow []int, c chunk) {
	n, tx := len(xrow), c.TX()
	lo := c.T0 - c.Hist
	for b := 0; b < x.B; b++ {
		for p, row := range xrow {
			d := dst[(b*n+p)*tx : (b*n+p+1)*tx]
			s := x.Series(b, row)
			if lo < 0 {
				clear(d[:-lo])
				copy(d[-lo:], s[:c.T0+c.Len])
			} else {
				copy(d, s[lo:c.T0+c.Len])
			}
		}
	}
}

// unpackChunk copies src ([B][N][c.Len], position order) into steps
// [c.T0−off, c.T0−off+c.Len) of y (network order; order[p] is the reach of
// position p); off is the step of the input that y's step 0 is.
func unpackChunk(y *diffroute.DataTensor, src []float32, order []int32, c chunk, off int) {
	n := len(order)
	t0 := c.T0 - off
	for b := 0; b < y.B; b++ {
		for p, i := range order {
			copy(y.Series(b, int(i))[t0:t0+c.Len], src[(b*n+p)*c.Len:(b*n+p+1)*c.Len])
		}
	}
}

// chunkSteps picks the chunk length: the largest that lets two slots of
// input ([B][N][hist+tc]) and output ([B][N][tc]) float32 buffers fit in
// budget bytes, at most T. It errors, naming the sizes, when not even one
// step fits.
func chunkSteps(budget int64, b, n, hist, T int) (int, error) {
	per := int64(b) * int64(n) * 4 // bytes of one step of one buffer
	if per == 0 {
		return max(T, 1), nil
	}
	// 2 slots × (hist + tc + tc) steps.
	tc := (budget/(2*per) - int64(hist)) / 2
	if tc < 1 {
		return 0, fmt.Errorf("gpu: out of memory: time chunks of one step need %s of device memory (batch %d × %d reaches × (%d history + 2) steps × 2 buffers × 4 B), %s available",
			mib(2*per*int64(hist+2)), b, n, hist, mib(budget))
	}
	return int(min(tc, int64(max(T, 1)))), nil
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// convDevice is what the pipeline needs from a device: two slots, each with
// a host input and output buffer and a queue (a CUDA stream) that runs
// upload → convolution → download in order. Calls on one slot are ordered;
// the two slots' queues run concurrently.
type convDevice interface {
	// hostIn and hostOut are slot s's host buffers (pinned for CUDA), large
	// enough for the longest chunk.
	hostIn(s int) []float32
	hostOut(s int) []float32
	// run queues, on slot s: upload of hostIn(s) holding chunk c, the
	// convolution, and download of the result into hostOut(s).
	run(s int, c chunk) error
	// wait blocks until slot s's queue is empty.
	wait(s int) error
}

// pipeline routes chunk by chunk over two slots: while slot s runs chunk i,
// the host unpacks chunk i−1 from and packs chunk i+1 into the other slot, so
// that packing, copies and convolution overlap. pack fills a slot's host
// input (nil: the device makes the input itself, from resident pixels);
// unpack reads a slot's host output.
func pipeline(ctx context.Context, dev convDevice, cs []chunk, pack, unpack func(buf []float32, c chunk)) (hostSecs float64, err error) {
	var pending [2]*chunk
	var host time.Duration // packing and unpacking
	flush := func(s int) error {
		if err := dev.wait(s); err != nil {
			return err
		}
		if pending[s] != nil {
			t := time.Now()
			unpack(dev.hostOut(s), *pending[s])
			host += time.Since(t)
			pending[s] = nil
		}
		return nil
	}
	for i := range cs {
		s := i % 2
		if err := ctx.Err(); err != nil {
			for j := range 2 { // let queued work finish before buffers are freed
				_ = dev.wait(j)
			}
			return host.Seconds(), err
		}
		if err := flush(s); err != nil {
			return host.Seconds(), err
		}
		if pack != nil {
			t := time.Now()
			pack(dev.hostIn(s), cs[i])
			host += time.Since(t)
		}
		if err := dev.run(s, cs[i]); err != nil {
			return host.Seconds(), err
		}
		pending[s] = &cs[i]
	}
	for i := len(cs); i < len(cs)+2; i++ {
		if err := flush(i % 2); err != nil {
			return host.Seconds(), err
		}
	}
	return host.Seconds(), nil
}

// convWork counts the convolution's multiply-adds (every output runs all
// Taps taps: the history before step 0 is zeros, not skipped) and its least
// DRAM traffic (kernel once per chunk, runoff with history in, discharge
// out) for B batch members and T steps in chunks cs.
func convWork(bs *diffroute.BlockSparseKernel, pairs int64, B, T int, cs []chunk) (fmas, bytes int64) {
	fmas = pairs * int64(bs.Taps) * int64(B) * int64(T)
	kbytes := int64(len(bs.Vals))*4 + int64(len(bs.RowTiles))*8 + int64(len(bs.TileCol)+len(bs.Size))*4
	for _, c := range cs {
		bytes += kbytes + int64(B)*int64(bs.N)*int64(c.TX()+c.Len)*4
	}
	return fmas, bytes
}
