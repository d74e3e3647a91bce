package kernels

import (
	"context"
	"math"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// emulateTapGrad runs the emulated dr_tapgrad over time chunks of chunk
// steps (x and gy in network order): each chunk's runoff and its ∂L/∂y with
// Taps−1 steps of lookahead, permuted into pre-order positions; the chunks
// add up in dK.
func emulateTapGrad(t *testing.T, kr *diffroute.KernelRouter, x, gy *diffroute.DataTensor, g Grid, planted bool, chunk int) []float64 {
	t.Helper()
	bs := kr.BlockSparse()
	n, T, ahead := bs.N, gy.T, bs.Taps-1
	dk := make([]float64, len(bs.Vals))
	for t0 := 0; t0 < T; t0 += chunk {
		tl := min(chunk, T-t0)
		tx := tl + ahead
		xp := make([]float32, x.B*n*tl)
		gp := make([]float32, gy.B*n*tx)
		for b := 0; b < gy.B; b++ {
			for p, i := range bs.Order {
				copy(xp[(b*n+p)*tl:(b*n+p+1)*tl], x.Series(b, int(i))[t0:t0+tl])
				copy(gp[(b*n+p)*tx:(b*n+p+1)*tx], gy.Series(b, int(i))[t0:])
			}
		}
		TapGrad(g, planted, &TapGradArgs{DK: dk, X: xp, GY: gp, TileRow: bs.TileRow, TileCol: bs.TileCol, Size: bs.Size,
			N: n, B: bs.B, Taps: bs.Taps, NB: gy.B, TL: tl, TX: tx})
	}
	return dk
}

// peakErr is max |got − want| over max |want|.
func peakErr(got, want []float64) float64 {
	worst, peak := 0.0, 1e-300
	for i, w := range want {
		worst = max(worst, math.Abs(got[i]-w))
		peak = max(peak, math.Abs(w))
	}
	return worst / peak
}

// The emulated dr_tapgrad (∂L/∂ taps, the heavy part of the kernel
// method's parameter gradients) against the CPU's KernelTapGrad, whole and
// in time chunks, for every random case and grid.
func TestTapGradMatchesCPU(t *testing.T) {
	ctx := context.Background()
	for j, c := range append(gputest.RandomCases(120, 2, 31, 21), gputest.SpectralCases(90, 2, 23, 5)[:4]...) {
		t.Run(c.Name, func(t *testing.T) {
			kr, err := c.KernelRouter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			x, err := c.Runoff.SelectIDs(c.Net.IDs())
			if err != nil {
				t.Fatal(err)
			}
			gy := gputest.RandomGy(c.Net, x.B, x.T, uint64(60+j))
			want, err := kr.KernelTapGrad(ctx, x, gy)
			if err != nil {
				t.Fatal(err)
			}
			for _, run := range []struct {
				g     Grid
				chunk int
			}{{DefaultGrid, x.T}, {Grid{Blocks: 1, Threads: 1}, 7}, {Grid{Blocks: 500, Threads: 64}, 12}} {
				got := emulateTapGrad(t, kr, x, gy, run.g, false, run.chunk)
				if e := peakErr(got, want); e > tol {
					t.Errorf("grid %d×%d, chunks of %d steps: emulated ∂L/∂K differs from the CPU by %.3g of peak (tolerance %g)", run.g.Blocks, run.g.Threads, run.chunk, e, tol)
				} else {
					t.Logf("grid %d×%d, chunks of %d: %.2g of peak", run.g.Blocks, run.g.Threads, run.chunk, e)
				}
			}
			if j < 2 {
				if e := peakErr(emulateTapGrad(t, kr, x, gy, DefaultGrid, true, x.T), want); e <= 100*tol {
					t.Errorf("planted off-by-one lag not detected (%.3g of peak)", e)
				}
			}
		})
	}
}
