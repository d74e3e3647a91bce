//go:build !cuda

package gpu

import (
	"context"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
	"github.com/diffroute-go/route/gpu/kernels"
)

// emuAdj is the pipeline's device for the backward pass with the kernel
// emulator in place of CUDA (as emuConv is for Route).
type emuAdj struct {
	*emuConv
	down []int32
}

func (c *emuAdj) run(s int, ch chunk) error {
	c.runs++
	n := c.bs.N
	nin, nout := c.nb*n*ch.TX(), c.nb*n*ch.Len
	copy(c.din[s][:nin], c.hin[s][:nin])
	kernels.BSConvAdj(kernels.DefaultGrid, c.planted, &kernels.BSConvAdjArgs{
		GX: c.dout[s][:nout], GY: c.din[s][:nin], Vals: c.bs.Vals, RowTiles: c.bs.RowTiles, DownPos: c.down,
		N: n, B: c.bs.B, Taps: c.bs.Taps, NB: c.nb, TX: ch.TX(), Ahead: ch.Hist})
	copy(c.hout[s][:nout], c.dout[s][:nout])
	return nil
}

// emuBackward computes ∂L/∂runoff like Router.BackwardRunoff, with chunks
// of tc steps.
func emuBackward(t *testing.T, kr *diffroute.KernelRouter, x, gy *diffroute.DataTensor, tc int, planted bool) *diffroute.DataTensor {
	t.Helper()
	net := kr.Network()
	idx, err := alignRows(x, net)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkGy(gy, net, x.B, x.T); err != nil {
		t.Fatal(err)
	}
	bs := kr.BlockSparse()
	grow, xrow := make([]int, bs.N), make([]int32, bs.N)
	for p, v := range bs.Order {
		grow[p], xrow[p] = int(v), int32(idx[v])
	}
	ahead := bs.Taps - 1
	c := &emuAdj{emuConv: newEmuConv(bs, x.B, ahead, tc), down: downPositions(bs, net)}
	c.planted = planted
	dx := runoffGrad(x)
	pack := func(dst []float32, ch chunk) { packAhead(dst, gy, grow, ch) }
	unpack := func(src []float32, ch chunk) { unpackChunk(dx, src, xrow, ch, 0) }
	if _, err := pipeline(context.Background(), c, chunks(x.T, tc, ahead), pack, unpack); err != nil {
		t.Fatal(err)
	}
	return dx
}

func TestEmulatedBackwardMatchesPairLoop(t *testing.T) {
	ctx := context.Background()
	for j, cs := range gputest.RandomCases(140, 2, 41, 29) {
		t.Run(cs.Name, func(t *testing.T) {
			kr, err := cs.KernelRouter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			x := gputest.Shuffled(cs.Runoff)
			gy := gputest.RandomGy(cs.Net, x.B, x.T, uint64(j))
			want := gputest.AdjointRef(kr, gy)
			for _, tc := range []int{1, 6, 40, 41, 100} {
				got, err := emuBackward(t, kr, x, gy, tc, false).SelectIDs(cs.Net.IDs())
				if err != nil {
					t.Fatal(err)
				}
				pr, er, err := gputest.RelErr(got, want)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("chunks of %d steps: error %.2g of peak, %.2g elementwise", tc, pr, er)
				if pr > 1e-5 {
					t.Errorf("chunks of %d steps: emulated backward pipeline differs from the pair loop by %.3g of peak", tc, pr)
				}
			}
			got, _ := emuBackward(t, kr, x, gy, 7, true).SelectIDs(cs.Net.IDs())
			if pr, _, _ := gputest.RelErr(got, want); pr < 1e-3 {
				t.Errorf("planted reversed taps through the pipeline not detected (%.3g)", pr)
			}
		})
	}
}
