package kernels

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// tol bounds the error relative to the peak of each series (batch member,
// reach). Elementwise errors are logged only: both the CPU and the GPU sum in
// float32, and where a small value is the difference of large terms (negative
// Muskingum taps) each is 1e-5…1e-4 away from the exact sum on its own.
const tol = 1e-5

// emulateRoute routes c's runoff with the emulated dr_bsconv over the CPU
// kernel's block-sparse storage: runoff permuted into pre-order positions
// with Taps−1 zero steps of history, output permuted back.
func emulateRoute(t *testing.T, kr *diffroute.KernelRouter, x *diffroute.DataTensor, g Grid, planted bool) *diffroute.DataTensor {
	t.Helper()
	bs := kr.BlockSparse()
	net := kr.Network()
	n, T, hist := bs.N, x.T, bs.Taps-1
	row := map[int64]int{}
	for j, id := range x.IDs {
		row[id] = j
	}
	tx := hist + T
	xp := make([]float32, x.B*n*tx)
	for b := 0; b < x.B; b++ {
		for p, i := range bs.Order {
			copy(xp[(b*n+p)*tx+hist:(b*n+p+1)*tx], x.Series(b, row[net.ID(int(i))]))
		}
	}
	yp := make([]float32, x.B*n*T)
	for i := range yp {
		yp[i] = float32(math.NaN()) // every output must be written
	}
	BSConv(g, planted, &BSConvArgs{Y: yp, X: xp, Vals: bs.Vals, RowTiles: bs.RowTiles, TileCol: bs.TileCol, Size: bs.Size,
		N: n, B: bs.B, Taps: bs.Taps, NB: x.B, TX: tx, T0: hist})
	y := diffroute.NewDataTensor(x.B, net.IDs(), T)
	for b := 0; b < x.B; b++ {
		for p, i := range bs.Order {
			copy(y.Series(b, int(i)), yp[(b*n+p)*T:(b*n+p+1)*T])
		}
	}
	return y
}

func TestBSConvMatchesKernelRouter(t *testing.T) {
	ctx := context.Background()
	for _, c := range gputest.RandomCases(150, 2, 37, 1) {
		t.Run(c.Name, func(t *testing.T) {
			kr, err := c.KernelRouter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want, err := kr.Route(ctx, c.Runoff)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range []Grid{DefaultGrid, {Blocks: 1, Threads: 1}, {Blocks: 1000, Threads: 64}} {
				got := emulateRoute(t, kr, c.Runoff, g, false)
				pr, er, err := gputest.RelErr(got, want)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("grid %d×%d: %d pairs, %d tiles: error %.2g of peak, %.2g elementwise", g.Blocks, g.Threads, kr.Stats().Pairs, kr.Stats().Tiles, pr, er)
				if pr > tol {
					t.Errorf("grid %d×%d: emulated kernel differs from the CPU kernel method: %.3g of peak, %.3g elementwise (tolerance %g)", g.Blocks, g.Threads, pr, er, tol)
				}
			}
		})
	}
}

// TestBSConvPlantedOffByOne checks that the comparison catches a kernel that
// reads x[t−k−1] instead of x[t−k].
func TestBSConvPlantedOffByOne(t *testing.T) {
	ctx := context.Background()
	for _, c := range gputest.RandomCases(120, 1, 30, 9)[:2] {
		kr, err := c.KernelRouter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want, err := kr.Route(ctx, c.Runoff)
		if err != nil {
			t.Fatal(err)
		}
		got := emulateRoute(t, kr, c.Runoff, DefaultGrid, true)
		pr, er, err := gputest.RelErr(got, want)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: planted off-by-one gives error %.2g of peak, %.2g elementwise", c.Name, pr, er)
		if pr <= 100*tol {
			t.Errorf("%s: planted off-by-one not detected (error %.3g of peak)", c.Name, pr)
		}
	}
}

func TestBSConvXX9(t *testing.T) {
	dir, err := gputest.XX9Dir()
	if err != nil {
		t.Skip(err)
	}
	c, qout, err := gputest.XX9(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kr, err := c.KernelRouter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := kr.Route(ctx, c.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	got := emulateRoute(t, kr, c.Runoff, DefaultGrid, false)
	pr, er, err := gputest.RelErr(got, want)
	if err != nil {
		t.Fatal(err)
	}
	rapid := 0.0
	for i, id := range got.IDs {
		q := qout[id]
		peak := 1e-30
		for _, v := range q {
			peak = max(peak, math.Abs(v))
		}
		for tt, v := range q {
			rapid = max(rapid, math.Abs(float64(got.At(0, i, tt))-v)/peak)
		}
	}
	t.Logf("rapid_xx9: emulated vs CPU kernel %.2g of peak (%.2g elementwise); vs RAPID's Qout %.2g of peak", pr, er, rapid)
	if pr > tol || rapid > tol {
		t.Errorf("rapid_xx9: error vs CPU %.3g / %.3g, vs RAPID %.3g (tolerance %g)", pr, er, rapid, tol)
	}
}

// kfOf extracts the polyphase transfer kernels Kf_{d,v} of inflow into v for
// every d on the path v → outlet through the CPU router's public API: with
// zero runoff, batch member b carrying a unit fine impulse at sub-step f−1−b
// of step 0 gives y_d[q] = Kf[q·f + b].
func kfOf(t *testing.T, kr *diffroute.KernelRouter, v int) map[int][]float32 {
	t.Helper()
	net := kr.Network()
	f, taps := kr.Options().SubSteps, kr.Options().MaxDelay
	x := diffroute.NewDataTensor(f, net.IDs(), taps)
	q := make([]float32, f*taps*f)
	for b := 0; b < f; b++ {
		q[b*taps*f+f-1-b] = 1
	}
	y, err := kr.RouteInflow(context.Background(), x, []diffroute.FineInflow{{Reach: v, Q: q}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]float32{}
	for d := v; d >= 0; d = net.Down(d) {
		row := make([]float32, taps*f)
		for b := 0; b < f; b++ {
			for qq := 0; qq < taps; qq++ {
				row[qq*f+b] = y.At(b, d, qq)
			}
		}
		out[d] = row
	}
	return out
}

func TestTransferAddMatchesRouteInflow(t *testing.T) {
	ctx := context.Background()
	for _, c := range gputest.RandomCases(90, 2, 23, 5)[:4] {
		t.Run(c.Name, func(t *testing.T) {
			kr, err := c.KernelRouter(ctx)
			if err != nil {
				t.Fatal(err)
			}
			net := kr.Network()
			f, taps := kr.Options().SubSteps, kr.Options().MaxDelay
			wf := taps * f
			B, T := c.Runoff.B, c.Runoff.T
			rng := rand.New(rand.NewPCG(3, 4))
			// Inflows: random reaches, one of them twice.
			var inflow []diffroute.FineInflow
			for j := 0; j < 5; j++ {
				v := rng.IntN(net.Len())
				if j == 4 {
					v = inflow[0].Reach
				}
				z := make([]float32, B*T*f)
				for i := range z {
					z[i] = float32(rng.Float64() * 3)
				}
				inflow = append(inflow, diffroute.FineInflow{Reach: v, Q: z})
			}
			for _, warm := range []int{0, 5} {
				zero := diffroute.NewDataTensor(B, net.IDs(), T)
				want, err := kr.RouteWith(ctx, zero, inflow, warm)
				if err != nil {
					t.Fatal(err)
				}
				// Tasks grouped by output reach.
				byRow := map[int][]int{} // d → task indices
				var kf []float32
				var taskIn []int32
				var taskOff []int64
				for j, in := range inflow {
					for d, row := range kfOf(t, kr, in.Reach) {
						byRow[d] = append(byRow[d], len(taskIn))
						taskIn = append(taskIn, int32(j))
						taskOff = append(taskOff, int64(len(kf)))
						kf = append(kf, row...)
					}
				}
				a := &TransferArgs{Kf: kf, NY: net.Len(), NB: B, TY: T - warm, Q0: warm, F: f, WF: wf, NIn: len(inflow), TZ: T * f}
				a.GroupStart = []int64{0}
				var tin []int32
				var toff []int64
				for d := 0; d < net.Len(); d++ {
					if len(byRow[d]) == 0 {
						continue
					}
					for _, j := range byRow[d] {
						tin, toff = append(tin, taskIn[j]), append(toff, taskOff[j])
					}
					a.GroupRow = append(a.GroupRow, int32(d))
					a.GroupStart = append(a.GroupStart, int64(len(tin)))
				}
				a.TaskIn, a.TaskOff = tin, toff
				for _, in := range inflow {
					a.Z = append(a.Z, in.Q...)
				}
				if peak := slices.Max(want.Data); !(peak > 0) {
					t.Fatalf("warm-up %d: the reference discharge is all zero (peak %v): nothing is tested", warm, peak)
				}
				got := diffroute.NewDataTensor(B, net.IDs(), T-warm)
				a.Y = got.Data
				TransferAdd(DefaultGrid, a)
				pr, er, err := gputest.RelErr(got, want)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("warm-up %d: %d groups, %d tasks: error %.2g of peak, %.2g elementwise", warm, len(a.GroupRow), len(tin), pr, er)
				if pr > tol {
					t.Errorf("warm-up %d: emulated transfer add differs from RouteWith: %.3g of peak, %.3g elementwise", warm, pr, er)
				}
			}
		})
	}
}

func TestInterp(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n, npix, nb, nt = 53, 31, 2, 19
	a := &InterpArgs{N: n, NPix: npix, NB: nb, NT: nt, WStart: []int64{0}}
	for i := 0; i < n; i++ {
		for k := rng.IntN(5) + 1; k > 0; k-- {
			a.Pixel = append(a.Pixel, int32(rng.IntN(npix)))
			a.Weight = append(a.Weight, rng.Float64()*1e7/86400)
		}
		a.WStart = append(a.WStart, int64(len(a.Pixel)))
	}
	a.Pix = make([]float32, nb*npix*nt)
	for i := range a.Pix {
		a.Pix[i] = float32(rng.Float64() * 0.01)
	}
	a.X = make([]float32, nb*n*nt)
	Interp(DefaultGrid, a)
	worst := 0.0
	for b := 0; b < nb; b++ {
		for i := 0; i < n; i++ {
			for tt := 0; tt < nt; tt++ {
				s := 0.0
				for w := a.WStart[i]; w < a.WStart[i+1]; w++ {
					s += a.Weight[w] * float64(a.Pix[(b*npix+int(a.Pixel[w]))*nt+tt])
				}
				got := float64(a.X[(b*n+i)*nt+tt])
				worst = max(worst, math.Abs(got-s)/max(math.Abs(s), 1e-30))
			}
		}
	}
	t.Logf("interpolation: max relative error %.2g", worst)
	if worst > 1e-6 {
		t.Errorf("interpolation: max relative error %.3g", worst)
	}
}

func TestPrefixSums(t *testing.T) {
	net := diffroute.SyntheticNetwork(700, 3)
	n, width := net.Len(), 2*17
	rng := rand.New(rand.NewPCG(1, 2))
	L := make([]float64, n*width)
	for i := range L {
		L[i] = rng.NormFloat64()
	}
	down := make([]int32, n)
	for i := range down {
		down[i] = int32(net.Down(i))
	}
	// Reference: one pass in pre-order (parents before their upstream reaches).
	want := append([]float64(nil), L...)
	for _, v := range net.PreOrder() {
		if d := net.Down(int(v)); d >= 0 {
			for j := 0; j < width; j++ {
				want[int(v)*width+j] += want[d*width+j]
			}
		}
	}
	got, steps := PrefixSums(DefaultGrid, L, down, width, net.MaxDepth())
	worst := 0.0
	for i := range want {
		worst = max(worst, math.Abs(got[i]-want[i])/max(1, math.Abs(want[i])))
	}
	t.Logf("prefix sums: %d reaches, max depth %d, %d jumps: max error %.2g", n, net.MaxDepth(), steps, worst)
	if worst > 1e-12 {
		t.Errorf("pointer jumping differs from the sequential prefix sums by %.3g", worst)
	}
	// One step short leaves the deepest paths unfinished.
	short, _ := PrefixSums(DefaultGrid, L, down, width, 1<<(steps-1))
	diff := 0.0
	for i := range want {
		diff = max(diff, math.Abs(short[i]-want[i]))
	}
	if diff == 0 {
		t.Errorf("one jump fewer gives the same sums: the step count is not tested")
	}
}
