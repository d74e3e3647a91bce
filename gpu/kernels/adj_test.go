package kernels

import (
	"context"
	"math"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// emulateAdjoint applies the emulated dr_bsconv_adj to gy (network order):
// gy permuted into pre-order positions with Taps−1 zero steps of lookahead
// after the end, gx permuted back to network order.
func emulateAdjoint(t *testing.T, kr *diffroute.KernelRouter, gy *diffroute.DataTensor, g Grid, planted bool) *diffroute.DataTensor {
	t.Helper()
	bs := kr.BlockSparse()
	net := kr.Network()
	n, T, ahead := bs.N, gy.T, bs.Taps-1
	tx := T + ahead
	gyp := make([]float32, gy.B*n*tx)
	for b := 0; b < gy.B; b++ {
		for p, i := range bs.Order {
			copy(gyp[(b*n+p)*tx:], gy.Series(b, int(i)))
		}
	}
	down := make([]int32, n)
	for p, i := range bs.Order {
		down[p] = -1
		if d := net.Down(int(i)); d >= 0 {
			down[p] = int32(net.Pre(d))
		}
	}
	gxp := make([]float32, gy.B*n*T)
	for i := range gxp {
		gxp[i] = float32(math.NaN()) // every output must be written
	}
	BSConvAdj(g, planted, &BSConvAdjArgs{GX: gxp, GY: gyp, Vals: bs.Vals, RowTiles: bs.RowTiles, DownPos: down,
		N: n, B: bs.B, Taps: bs.Taps, NB: gy.B, TX: tx, Ahead: ahead})
	gx := diffroute.NewDataTensor(gy.B, net.IDs(), T)
	for b := 0; b < gy.B; b++ {
		for p, i := range bs.Order {
			copy(gx.Series(b, int(i)), gxp[(b*n+p)*T:(b*n+p+1)*T])
		}
	}
	return gx
}

func TestBSConvAdjMatchesPairLoop(t *testing.T) {
	ctx := context.Background()
	for j, c := range gputest.RandomCases(150, 2, 37, 3) {
		t.Run(c.Name, func(t *testing.T) {
			kr, err := c.KernelRouter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			gy := gputest.RandomGy(c.Net, c.Runoff.B, c.Runoff.T, uint64(j))
			want := gputest.AdjointRef(kr, gy)
			for _, g := range []Grid{DefaultGrid, {Blocks: 1, Threads: 1}, {Blocks: 1000, Threads: 64}} {
				got := emulateAdjoint(t, kr, gy, g, false)
				pr, er, err := gputest.RelErr(got, want)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("grid %d×%d: %d pairs: error %.2g of peak, %.2g elementwise", g.Blocks, g.Threads, kr.Stats().Pairs, pr, er)
				if pr > tol {
					t.Errorf("grid %d×%d: emulated adjoint differs from the pair loop: %.3g of peak, %.3g elementwise (tolerance %g)", g.Blocks, g.Threads, pr, er, tol)
				}
			}
		})
	}
}

// TestBSConvAdjIsTheTranspose checks ⟨gy, K x⟩ = ⟨Kᵀ gy, x⟩ with both
// emulated kernels: the adjoint is the forward kernel's transpose, whatever
// the reference loop says.
func TestBSConvAdjIsTheTranspose(t *testing.T) {
	ctx := context.Background()
	for j, c := range gputest.RandomCases(130, 2, 29, 17) {
		kr, err := c.KernelRouter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		x, err := c.Runoff.SelectIDs(c.Net.IDs()) // network order, like gx
		if err != nil {
			t.Fatal(err)
		}
		gy := gputest.RandomGy(c.Net, x.B, x.T, uint64(40+j))
		y := emulateRoute(t, kr, x, DefaultGrid, false)
		gx := emulateAdjoint(t, kr, gy, DefaultGrid, false)
		var lhs, rhs, scale float64
		for i := range y.Data {
			lhs += float64(gy.Data[i]) * float64(y.Data[i])
			rhs += float64(gx.Data[i]) * float64(x.Data[i])
			scale += math.Abs(float64(gy.Data[i]) * float64(y.Data[i]))
		}
		rel := math.Abs(lhs-rhs) / scale
		t.Logf("%s: <gy, Kx> = %.9g, <Kᵀgy, x> = %.9g: %.2g of Σ|terms|", c.Name, lhs, rhs, rel)
		if rel > 1e-6 {
			t.Errorf("%s: <gy, Kx> = %.9g but <Kᵀgy, x> = %.9g (%.3g relative)", c.Name, lhs, rhs, rel)
		}
	}
}

// TestBSConvAdjPlantedTaps checks that the comparison catches a kernel that
// reads the taps reversed.
func TestBSConvAdjPlantedTaps(t *testing.T) {
	ctx := context.Background()
	for _, c := range gputest.RandomCases(120, 1, 30, 9)[:2] {
		kr, err := c.KernelRouter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gy := gputest.RandomGy(c.Net, 1, c.Runoff.T, 5)
		got := emulateAdjoint(t, kr, gy, DefaultGrid, true)
		pr, er, err := gputest.RelErr(got, gputest.AdjointRef(kr, gy))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: planted reversed taps give error %.2g of peak, %.2g elementwise", c.Name, pr, er)
		if pr <= 100*tol {
			t.Errorf("%s: planted reversed taps not detected (error %.3g of peak)", c.Name, pr)
		}
	}
}

func TestBSConvAdjXX9(t *testing.T) {
	dir, err := gputest.XX9Dir()
	if err != nil {
		t.Skip(err)
	}
	c, _, err := gputest.XX9(dir)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := c.KernelRouter(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gy := gputest.RandomGy(c.Net, c.Runoff.B, c.Runoff.T, 9)
	got := emulateAdjoint(t, kr, gy, DefaultGrid, false)
	pr, er, err := gputest.RelErr(got, gputest.AdjointRef(kr, gy))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rapid_xx9: emulated adjoint vs pair loop %.2g of peak (%.2g elementwise)", pr, er)
	if pr > tol {
		t.Errorf("rapid_xx9: emulated adjoint vs pair loop %.3g of peak (tolerance %g)", pr, tol)
	}
}
