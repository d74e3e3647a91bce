//go:build !cuda

package gpu

import (
	"context"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
	"github.com/diffroute-go/route/gpu/kernels"
)

// emuConv is the pipeline's device with the kernel emulator in place of
// CUDA: the same chunks, history, slots and buffer reuse as the CUDA
// backend, with the copies being plain copies.
type emuConv struct {
	bs          *diffroute.BlockSparseKernel
	nb          int
	planted     bool
	hin, hout   [2][]float32
	din, dout   [2][]float32
	runs, waits int
}

func newEmuConv(bs *diffroute.BlockSparseKernel, nb, hist, tc int) *emuConv {
	c := &emuConv{bs: bs, nb: nb}
	for s := range 2 {
		c.hin[s] = make([]float32, nb*bs.N*(hist+tc))
		c.hout[s] = make([]float32, nb*bs.N*tc)
		c.din[s] = make([]float32, len(c.hin[s]))
		c.dout[s] = make([]float32, len(c.hout[s]))
	}
	return c
}

func (c *emuConv) hostIn(s int) []float32  { return c.hin[s] }
func (c *emuConv) hostOut(s int) []float32 { return c.hout[s] }
func (c *emuConv) wait(s int) error        { c.waits++; return nil }

func (c *emuConv) run(s int, ch chunk) error {
	c.runs++
	n := c.bs.N
	nin, nout := c.nb*n*ch.TX(), c.nb*n*ch.Len
	copy(c.din[s][:nin], c.hin[s][:nin])
	kernels.BSConv(kernels.DefaultGrid, c.planted, &kernels.BSConvArgs{
		Y: c.dout[s][:nout], X: c.din[s][:nin], Vals: c.bs.Vals, RowTiles: c.bs.RowTiles, TileCol: c.bs.TileCol, Size: c.bs.Size,
		N: n, B: c.bs.B, Taps: c.bs.Taps, NB: c.nb, TX: ch.TX(), T0: ch.Hist})
	copy(c.hout[s][:nout], c.dout[s][:nout])
	return nil
}

// emuRoute routes like the CUDA Router, with chunks of tc steps.
func emuRoute(t *testing.T, kr *diffroute.KernelRouter, x *diffroute.DataTensor, tc int, planted bool) (*diffroute.DataTensor, *emuConv) {
	t.Helper()
	net := kr.Network()
	idx, err := alignRows(x, net)
	if err != nil {
		t.Fatal(err)
	}
	bs := kr.BlockSparse()
	xrow := make([]int, bs.N)
	for p, v := range bs.Order {
		xrow[p] = idx[v]
	}
	hist := bs.Taps - 1
	c := newEmuConv(bs, x.B, hist, tc)
	c.planted = planted
	y := discharge(x, net)
	pack := func(dst []float32, ch chunk) { packChunk(dst, x, xrow, ch) }
	unpack := func(src []float32, ch chunk) { unpackChunk(y, src, bs.Order, ch, 0) }
	if _, err := pipeline(context.Background(), c, chunks(x.T, tc, hist), pack, unpack); err != nil {
		t.Fatal(err)
	}
	return y, c
}

func TestEmulatedPipelineMatchesCPU(t *testing.T) {
	ctx := context.Background()
	for _, cs := range gputest.RandomCases(140, 2, 41, 21) {
		t.Run(cs.Name, func(t *testing.T) {
			kr, err := cs.KernelRouter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// A shuffled copy of the runoff: rows are matched by id.
			x := cs.Runoff
			ids := append([]int64(nil), x.IDs...)
			for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
				ids[i], ids[j] = ids[j], ids[i]
			}
			xs, err := x.SelectIDs(ids)
			if err != nil {
				t.Fatal(err)
			}
			want, err := kr.Route(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []int{1, 6, 40, 41, 100} {
				got, c := emuRoute(t, kr, xs, tc, false)
				pr, er, err := gputest.RelErr(got, want)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("chunks of %d steps (%d launches): error %.2g of peak, %.2g elementwise", tc, c.runs, pr, er)
				if pr > 1e-5 {
					t.Errorf("chunks of %d steps: emulated GPU pipeline differs from the CPU kernel method by %.3g of peak", tc, pr)
				}
			}
			got, _ := emuRoute(t, kr, xs, 7, true)
			if pr, _, _ := gputest.RelErr(got, want); pr < 1e-3 {
				t.Errorf("planted off-by-one through the pipeline not detected (%.3g)", pr)
			}
		})
	}
}

func TestChunkSteps(t *testing.T) {
	tc, err := chunkSteps(1<<20, 1, 100, 9, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if need := int64(2*(9+2*tc)) * 100 * 4; need > 1<<20 {
		t.Errorf("chunk of %d steps needs %d bytes > budget", tc, need)
	}
	if _, err := chunkSteps(1000, 1, 100, 9, 1000); err == nil {
		t.Error("no error when not even one step fits")
	} else {
		t.Log(err)
	}
	if tc, _ := chunkSteps(1<<40, 2, 10, 3, 17); tc != 17 {
		t.Errorf("chunk of %d steps, want all 17", tc)
	}
}
