//go:build !cuda

package gpu

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
	"github.com/diffroute-go/route/gpu/kernels"
)

// asyncEmu is an emulated device with two queues (streams) that run
// asynchronously, one copy engine and one set of compute units: a copy and
// a kernel can run at once, two copies or two kernels cannot, as on a GPU
// with one copy engine per direction busy. It times every operation with
// the wall clock into the same timeline the CUDA backend fills from events,
// so the tests can check that the pipeline overlaps copies with kernels.
// serial makes run wait for the other slot first: a one-stream pipeline.
type asyncEmu struct {
	*emuConv
	serial bool

	copyEngine, compute sync.Mutex
	queue               [2]chan func()
	busy                [2]sync.WaitGroup

	mu  sync.Mutex
	t0  time.Time
	ops []op
}

func newAsyncEmu(c *emuConv, serial bool) *asyncEmu {
	a := &asyncEmu{emuConv: c, serial: serial, t0: time.Now()}
	for s := range 2 {
		a.queue[s] = make(chan func(), 4)
		go func() {
			for f := range a.queue[s] {
				f()
			}
		}()
	}
	return a
}

func (a *asyncEmu) close() {
	for s := range 2 {
		close(a.queue[s])
	}
}

// timed runs f holding unit and adds its span to the timeline.
func (a *asyncEmu) timed(kind opKind, unit *sync.Mutex, f func()) {
	unit.Lock()
	start := time.Since(a.t0).Seconds()
	f()
	end := time.Since(a.t0).Seconds()
	unit.Unlock()
	a.mu.Lock()
	a.ops = append(a.ops, op{start, end, kind})
	a.mu.Unlock()
}

func (a *asyncEmu) wait(s int) error {
	a.busy[s].Wait()
	a.waits++
	return nil
}

func (a *asyncEmu) run(s int, ch chunk) error {
	if a.serial {
		a.busy[1-s].Wait()
	}
	a.runs++
	n := a.bs.N
	nin, nout := a.nb*n*ch.TX(), a.nb*n*ch.Len
	a.busy[s].Add(1)
	a.queue[s] <- func() {
		defer a.busy[s].Done()
		a.timed(opCopy, &a.copyEngine, func() { copy(a.din[s][:nin], a.hin[s][:nin]) })
		a.timed(opConv, &a.compute, func() {
			kernels.BSConv(kernels.DefaultGrid, a.planted, &kernels.BSConvArgs{
				Y: a.dout[s][:nout], X: a.din[s][:nin], Vals: a.bs.Vals, RowTiles: a.bs.RowTiles, TileCol: a.bs.TileCol, Size: a.bs.Size,
				N: n, B: a.bs.B, Taps: a.bs.Taps, NB: a.nb, TX: ch.TX(), T0: ch.Hist})
		})
		a.timed(opCopy, &a.copyEngine, func() { copy(a.hout[s][:nout], a.dout[s][:nout]) })
	}
	return nil
}

// TestPipelineOverlapsCopiesWithKernels routes through the asynchronous
// emulated device: the output must equal the CPU kernel method's, and the
// timeline must show copies of one slot running during the other slot's
// convolution. The same run through a serialised device (one stream) must
// show no overlap at all, which is what makes the first check able to fail.
func TestPipelineOverlapsCopiesWithKernels(t *testing.T) {
	ctx := context.Background()
	c := gputest.RandomCases(300, 1, 600, 29)[0]
	kr, err := diffroute.NewKernelRouter(ctx, c.Net, c.Opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := kr.Route(ctx, c.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	bs := kr.BlockSparse()
	idx, err := alignRows(c.Runoff, c.Net)
	if err != nil {
		t.Fatal(err)
	}
	xrow := make([]int, bs.N)
	for p, v := range bs.Order {
		xrow[p] = idx[v]
	}
	hist, tc := bs.Taps-1, 50
	cs := chunks(c.Runoff.T, tc, hist)
	run := func(serial bool) Timing {
		dev := newAsyncEmu(newEmuConv(bs, c.Runoff.B, hist, tc), serial)
		y := discharge(c.Runoff, c.Net)
		pack := func(dst []float32, ch chunk) { packChunk(dst, c.Runoff, xrow, ch) }
		unpack := func(src []float32, ch chunk) { unpackChunk(y, src, bs.Order, ch, 0) }
		host, err := pipeline(ctx, dev, cs, pack, unpack)
		dev.close()
		if err != nil {
			t.Fatal(err)
		}
		pr, _, err := gputest.RelErr(y, want)
		if err != nil {
			t.Fatal(err)
		}
		if pr > 1e-5 {
			t.Errorf("serial %v: emulated device differs from the CPU kernel method by %.3g of peak", serial, pr)
		}
		tm := timeOps(dev.ops)
		tm.HostSeconds = host
		t.Logf("serial %v, %d chunks: %s", serial, len(cs), tm)
		if len(dev.ops) != 3*len(cs) {
			t.Fatalf("serial %v: %d operations timed, want %d", serial, len(dev.ops), 3*len(cs))
		}
		return tm
	}
	// Two streams: the overlap depends on the OS scheduling the second
	// queue's thread during a kernel, so a loaded machine gets three tries.
	var tm Timing
	for range 3 {
		if tm = run(false); tm.OverlapSeconds > 0 {
			break
		}
	}
	if tm.OverlapSeconds <= 0 {
		t.Errorf("two streams: no copy ran during a kernel in %d chunks, three times (%s)", len(cs), tm)
	}
	if tm := run(true); tm.OverlapSeconds != 0 {
		t.Errorf("one stream: copies overlapped kernels for %.3g ms", tm.OverlapSeconds*1e3)
	}
}
