package gpu

import (
	"fmt"

	"github.com/diffroute-go/route/diffroute"
)

// The host side of the GPU backward pass (no CUDA): checking dL/dy,
// packing it in time chunks with lookahead, and the tensor of ∂L/∂runoff.
// The adjoint of the convolution runs over the same chunks and slots as
// Route: chunk c's output steps [T0, T0+Len) read dL/dy at steps
// [T0, T0+Len+Hist), Hist = Taps−1 steps of lookahead in place of history.

// checkGy checks that gy = dL/dy has the dims and row order of the
// discharge that Route returns for a runoff of b members and T steps, and
// no NaN or infinity.
func checkGy(gy *diffroute.DataTensor, net *diffroute.Network, b, T int) error {
	if gy == nil {
		return fmt.Errorf("gpu: no dL/dy")
	}
	if err := gy.Validate(); err != nil {
		return fmt.Errorf("gpu: dL/dy: %w", err)
	}
	if gy.B != b || gy.N != net.Len() || gy.T != T {
		return fmt.Errorf("gpu: dL/dy has dims (%d, %d, %d), the discharge (%d, %d, %d)", gy.B, gy.N, gy.T, b, net.Len(), T)
	}
	for i, id := range gy.IDs {
		if id != net.ID(i) {
			return fmt.Errorf("gpu: dL/dy row %d is reach %d, want %d (the discharge's network order)", i, id, net.ID(i))
		}
	}
	if err := gy.CheckFinite(); err != nil {
		return fmt.Errorf("gpu: dL/dy: %w", err)
	}
	return nil
}

// runoffGrad allocates ∂L/∂runoff: the runoff's dims, ids and labels, zero
// for rows the network does not route.
func runoffGrad(runoff *diffroute.DataTensor) *diffroute.DataTensor {
	dx := diffroute.NewDataTensor(runoff.B, runoff.IDs, runoff.T)
	dx.Times, dx.Step = runoff.Times, runoff.Step
	if runoff.Units != "" {
		dx.Units = "1/(" + runoff.Units + ")"
	}
	return dx
}

// packAhead writes gy's steps [c.T0, c.T0+c.Len+c.Hist) of every reach into
// dst as [B][N][c.TX()] in kernel position order (grow[p] is the row of
// position p), zeros past the end of the series.
func packAhead(dst []float32, gy *diffroute.DataTensor, grow []int, c chunk) {
	n, tx := len(grow), c.TX()
	hi := min(c.T0+tx, gy.T)
	for b := 0; b < gy.B; b++ {
		for p, row := range grow {
			d := dst[(b*n+p)*tx : (b*n+p+1)*tx]
			m := copy(d, gy.Series(b, row)[c.T0:hi])
			clear(d[m:])
		}
	}
}

// downPositions returns, per kernel position, the position of the reach
// downstream, −1 at outlets: the path a column of the kernel follows.
func downPositions(bs *diffroute.BlockSparseKernel, net *diffroute.Network) []int32 {
	down := make([]int32, bs.N)
	for p, i := range bs.Order {
		down[p] = -1
		if d := net.Down(int(i)); d >= 0 {
			down[p] = int32(net.Pre(d))
		}
	}
	return down
}
