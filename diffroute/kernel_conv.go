package diffroute

import (
	"context"
	"fmt"
	"slices"
)

// FineInflow is upstream inflow into one reach on the fine grid of sub-steps,
// such as the outflow of a reach cut off into another cluster (a transfer in
// staged routing). It enters Reach like the outflow of an upstream reach: it
// is routed through the reach's own IRF and every reach downstream.
//
// Q holds B·T·f values in m³/s, batch-major: Q[b·T·f + n] is the inflow at the
// end of sub-step n (RAPID's I(n+1)), n = 0..T·f−1, for batch member b, where B
// and T are the runoff's. Several entries may name the same reach; they add.
type FineInflow struct {
	Reach int // network index of the receiving reach
	Q     []float32
}

// Route returns the discharge of every reach of the network (network order)
// for the runoff, aligned to the network by reach id.
func (kr *KernelRouter) Route(ctx context.Context, runoff *DataTensor) (*DataTensor, error) {
	return kr.RouteWith(ctx, runoff, nil, 0)
}

// RouteWarm routes runoff whose first warmup steps are history only: the
// output holds steps [warmup, T). With warmup ≥ MaxDelay−1 a time chunk
// [t0, t1) routed from runoff steps [t0−warmup, t1) equals the same steps of
// one run over the whole series.
func (kr *KernelRouter) RouteWarm(ctx context.Context, runoff *DataTensor, warmup int) (*DataTensor, error) {
	return kr.RouteWith(ctx, runoff, nil, warmup)
}

// RouteInflow routes runoff plus fine-grid upstream inflow (see FineInflow).
//
// Each inflow into v reaches every d on the path v → outlet through the
// polyphase kernel Kf_{d,v}[m], m < MaxDelay·f (fine input, coarse output):
//
//	y_d[q] += Σ_m Kf[m]·z[q·f + f − 1 − m]
//
// where, with k the fine path response h_v ⊛ … ⊛ h_d (end convention, built
// in the log-frequency domain like the runoff kernels) and shift one sub-step
// under `start` averaging, Kf[m] = (1/f)·Σ_{u<f} k[m − shift − u] for `avg` and
// Kf[m] = k[m − shift] for `sample`. It follows from y_d at fine step n being
// Σ_n' k[n − n']·z[n'] and the coarse output being the mean (or the last) of
// the f fine values of the step.
func (kr *KernelRouter) RouteInflow(ctx context.Context, runoff *DataTensor, inflow []FineInflow) (*DataTensor, error) {
	return kr.RouteWith(ctx, runoff, inflow, 0)
}

// RouteWith is Route with fine upstream inflow and a warm-up: the output
// holds steps [warmup, T). Inflow series cover all T·f sub-steps, warm-up
// included.
func (kr *KernelRouter) RouteWith(ctx context.Context, runoff *DataTensor, inflow []FineInflow, warmup int) (*DataTensor, error) {
	return kr.routeWith(ctx, nil, runoff, inflow, warmup)
}

// RouteTo is Route writing into dst, which must have runoff's batch and time
// dims and the network's reach ids in network order (as Route returns them);
// its values are overwritten. The kernel method keeps no state between calls.
func (kr *KernelRouter) RouteTo(ctx context.Context, dst, runoff *DataTensor) error {
	if err := checkDst(dst, runoff, kr.net); err != nil {
		return err
	}
	clear(dst.Data)
	_, err := kr.routeWith(ctx, dst, runoff, nil, 0)
	return err
}

// Reset does nothing: each call of the kernel method starts from a zero
// state (chunks continue a series through RouteWarm's warm-up instead).
func (kr *KernelRouter) Reset() {}

// routeWith routes into out, zeroed, or a new tensor when out is nil.
func (kr *KernelRouter) routeWith(ctx context.Context, out, runoff *DataTensor, inflow []FineInflow, warmup int) (*DataTensor, error) {
	net := kr.net
	idx, err := alignRunoff(runoff, net)
	if err != nil {
		return nil, err
	}
	T, B := runoff.T, runoff.B
	if warmup < 0 || warmup > T {
		return nil, fmt.Errorf("diffroute: warm-up of %d steps outside [0, %d]", warmup, T)
	}
	if err := kr.checkInflow(inflow, B, T); err != nil {
		return nil, err
	}
	if out == nil {
		head := &DataTensor{B: B, T: T - warmup, Step: runoff.Step}
		if len(runoff.Times) == T {
			head.Times = runoff.Times[warmup:]
		}
		out = newDischarge(head, net)
	}

	bs := kr.bs
	xrow := make([]int, bs.N) // runoff row of each position
	for p, v := range bs.Order {
		xrow[p] = idx[v]
	}
	nb := len(bs.RowTiles) - 1
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := max(1, min(kr.opts.Workers, nb))
	parallelChunks(ctx, cancel, workers, nb, 1, func() struct{} { return struct{}{} }, func(_ struct{}, lo, hi int) error {
		for r := lo; r < hi; r++ {
			kr.convRowBlock(ctx.Done(), runoff, out, xrow, r, warmup)
		}
		return ctx.Err()
	})
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	if len(inflow) > 0 {
		if err := kr.addInflow(ctx, out, inflow, T, warmup); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// convRowBlock computes the discharge of the reaches in row block r.
// It returns early, leaving y partial, once done is closed: the row of an
// outlet holds every pair of its basin, so a row block can take seconds on
// long series, and cancellation is checked every 16 pairs.
func (kr *KernelRouter) convRowBlock(done <-chan struct{}, x, y *DataTensor, xrow []int, r, t0 int) {
	bs := kr.bs
	B := bs.B
	T := x.T
	for p := r * B; p < min(bs.N, (r+1)*B); p++ {
		d := int(bs.Order[p])
		end := p + int(bs.Size[p])
		for b := 0; b < x.B; b++ {
			yd := y.Series(b, d)
			for q := p; q < end; q++ {
				if (q-p)%16 == 0 {
					select {
					case <-done:
						return
					default:
					}
				}
				xs := x.Data[(b*x.N+xrow[q])*T : (b*x.N+xrow[q]+1)*T]
				convPair(yd, xs, bs.entry(p, q), t0)
			}
		}
	}
}

// convPair adds Σ_k K[k]·x[t−k] to y[t−t0] for t in [t0, len(x)). Taps are
// taken four at a time; for t ≥ t0 ≥ len(K)−1 (a warmed-up chunk) every
// output goes through the same four-tap path, so that chunked runs reproduce
// the whole run bit for bit.
func convPair(y, x, K []float32, t0 int) {
	T := len(x)
	nk := len(K)
	k := 0
	for ; k+4 <= nk; k += 4 {
		a0, a1, a2, a3 := K[k], K[k+1], K[k+2], K[k+3]
		if a0 == 0 && a1 == 0 && a2 == 0 && a3 == 0 {
			continue
		}
		lo := max(t0, k+3)
		// Head: outputs that see only some of the four taps.
		for t := max(t0, k); t < min(lo, T); t++ {
			for j := 0; j < 4 && t-k-j >= 0; j++ {
				y[t-t0] += K[k+j] * x[t-k-j]
			}
		}
		if lo >= T {
			continue
		}
		yy := y[lo-t0 : T-t0]
		x0 := x[lo-k : T-k]
		x1 := x[lo-k-1 : T-k-1]
		x2 := x[lo-k-2 : T-k-2]
		x3 := x[lo-k-3 : T-k-3]
		x0, x1, x2, x3 = x0[:len(yy)], x1[:len(yy)], x2[:len(yy)], x3[:len(yy)]
		for i := range yy {
			yy[i] += a0*x0[i] + a1*x1[i] + a2*x2[i] + a3*x3[i]
		}
	}
	for ; k < nk; k++ {
		a := K[k]
		if a == 0 {
			continue
		}
		lo := max(t0, k)
		if lo >= T {
			continue
		}
		yy := y[lo-t0 : T-t0]
		xx := x[lo-k : T-k]
		xx = xx[:len(yy)]
		for i := range yy {
			yy[i] += a * xx[i]
		}
	}
}

// RouteCOO applies the kernel in COO form (one pair at a time). It gives the
// same discharge as Route; it exists to check the block-sparse layout and as
// the reference a GPU backend's COO path can be compared with.
func (c *COOKernel) Route(net *Network, runoff *DataTensor) (*DataTensor, error) {
	idx, err := alignRunoff(runoff, net)
	if err != nil {
		return nil, err
	}
	out := newDischarge(runoff, net)
	T := runoff.T
	for pi := 0; pi < len(c.Coords)/2; pi++ {
		d, s := int(c.Coords[2*pi]), int(c.Coords[2*pi+1])
		K := c.Vals[pi*c.Taps : (pi+1)*c.Taps]
		for b := 0; b < runoff.B; b++ {
			xs := runoff.Data[(b*runoff.N+idx[s])*T : (b*runoff.N+idx[s]+1)*T]
			convPair(out.Series(b, d), xs, K, 0)
		}
	}
	return out, nil
}

// addInflow adds the polyphase contributions of fine inflow, parallel over
// output reaches.
func (kr *KernelRouter) addInflow(ctx context.Context, out *DataTensor, inflow []FineInflow, T, t0 int) error {
	type task struct {
		d   int32
		in  int // inflow entry
		row []float32
	}
	var tasks []task
	for j, in := range inflow {
		tk, err := kr.transfer(in.Reach)
		if err != nil {
			return err
		}
		wf := kr.taps * kr.f
		for r, d := range tk.rows {
			tasks = append(tasks, task{d, j, tk.vals[r*wf : (r+1)*wf]})
		}
	}
	slices.SortStableFunc(tasks, func(a, b task) int { return int(a.d) - int(b.d) })
	// Groups of tasks with the same output reach go to one worker.
	var starts []int
	for i := range tasks {
		if i == 0 || tasks[i].d != tasks[i-1].d {
			starts = append(starts, i)
		}
	}
	starts = append(starts, len(tasks))
	ng := len(starts) - 1
	f := kr.f
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	parallelChunks(ctx, cancel, max(1, min(kr.opts.Workers, ng)), ng, 1, func() struct{} { return struct{}{} }, func(_ struct{}, lo, hi int) error {
		for g := lo; g < hi; g++ {
			for _, tk := range tasks[starts[g]:starts[g+1]] {
				for b := 0; b < out.B; b++ {
					z := inflow[tk.in].Q[b*T*f : (b+1)*T*f]
					y := out.Series(b, int(tk.d))
					for q := t0; q < T; q++ {
						// y[q] += Σ_m Kf[m]·z[q·f + f − 1 − m], m ≤ q·f + f − 1.
						top := q*f + f - 1
						n := min(len(tk.row), top+1)
						s := float32(0)
						for m, a := range tk.row[:n] {
							s += a * z[top-m]
						}
						y[q-t0] += s
					}
				}
			}
		}
		return ctx.Err()
	})
	return context.Cause(ctx)
}
