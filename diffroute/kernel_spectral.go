package diffroute

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrNotSpectral is returned by NewSpectralKernel for options whose kernel
// is not built from spectra: IRFs with a recursive form are built in the
// time domain.
var ErrNotSpectral = errors.New("diffroute: this kernel is not built from spectra")

// SpectralKernel is an FFT-path kernel (IRFs without a recursive form, or
// Compat "diffroute") prepared for a build elsewhere — on a GPU — in the
// log-prefix form of the kernel method (docs/design.md), with every pair independent:
//
//  1. P = prefix sums of L to the outlet (P[p] = L[p] + P[DownPos[p]]);
//  2. the pairs of source position s are s, DownPos[s], … (PairStart[s] on);
//  3. pair (d, s) has the spectrum S = exp(A_s − P[DownPos[d]]), A_s by Mode
//     (0: P[s]; 1: P[DownPos[s]]; 2: Src[s] + P[DownPos[s]] where Boxed[s],
//     else P[s]); with SelfTaps the pair (s, s) is those taps instead;
//  4. its taps are S folded (Fold[Boxed[s] in mode 2, else 0]: G, wrap and
//     twiddles, see foldCoarsener), divided by their sum under Normalize,
//     stored at Layout's entry (d, s). Under ReLU the fine kernel
//     h = max(IDFT(S), 0) at the first Taps·F sub-steps (Trig) is box-summed
//     over F sub-steps unless the source is boxed, clipped at 0 again,
//     delayed by Shift and reduced per step (mean, or last value with
//     Sample), as KernelRouter's coarsening does.
//
// Tables are by pre-order position; complex values are (re, im) float64
// pairs, NF per row. Finish turns the taps and their sums back into a
// KernelRouter equal to NewKernelRouter's up to rounding.
type SpectralKernel struct {
	// Layout is the block-sparse structure (Vals nil).
	Layout *BlockSparseKernel
	// M is the FFT length, NF = M/2+1 its bins, FoldBins = M/f the bins the
	// fold keeps (FoldBins/2+1 of them are stored), Taps the taps per pair.
	M, NF, FoldBins, Taps int
	DownPos               []int32
	MaxDepth              int
	PairStart             []int64 // len N+1, by source position
	L, Src                []float64
	Boxed                 []int32
	Mode                  int
	SelfTaps              []float64
	Fold                  []float64 // 2 tables of FoldLen values
	Normalize             bool
	// ReLU: the taps come from the fine kernel (see below), not the fold.
	ReLU bool
	// For ReLU: sub-steps, the delay of `start` averaging (0 or 1), last
	// value instead of the step mean, and cos, sin of 2πj/M for j < M.
	F, Shift int
	Sample   bool
	Trig     []float64

	kr    *KernelRouter
	start time.Time
}

// FoldLen is the length of one of the two fold tables: G and wrap (NF
// complex each) and the twiddles (Taps × (FoldBins/2+1) complex).
func (sk *SpectralKernel) FoldLen() int { return 4*sk.NF + 2*sk.Taps*(sk.FoldBins/2+1) }

// Pairs is the number of (d, s) pairs.
func (sk *SpectralKernel) Pairs() int64 { return sk.PairStart[len(sk.PairStart)-1] }

// NewSpectralKernel computes the reach spectra and tables of net's kernel
// for opts. It returns ErrNotSpectral when NewKernelRouter would build the
// kernel in the time domain.
func NewSpectralKernel(ctx context.Context, net *Network, opts Options) (*SpectralKernel, error) {
	start := time.Now()
	kr, err := newKernelShell(net, opts)
	if err != nil {
		return nil, err
	}
	o := kr.opts
	if kr.td != nil {
		return nil, ErrNotSpectral
	}
	n, nf := net.Len(), kr.m/2+1
	rowTiles, tileRow, tileCol := tileLayout(net, o.BlockSize)
	bs := &BlockSparseKernel{
		N: n, B: o.BlockSize, Taps: kr.taps,
		Order: net.PreOrder(), Size: make([]int32, n),
		RowTiles: rowTiles, TileRow: tileRow, TileCol: tileCol,
	}
	sk := &SpectralKernel{Layout: bs, M: kr.m, NF: nf, FoldBins: kr.m / kr.f, Taps: kr.taps,
		DownPos: make([]int32, n), PairStart: make([]int64, n+1), L: make([]float64, 2*n*nf),
		Normalize: o.Normalize, ReLU: o.ReLU, F: kr.f, Sample: o.Sampling == SampleLast, kr: kr, start: start}
	if o.Average == AverageStart {
		sk.Shift = 1
	}
	if o.ReLU {
		sk.Trig = make([]float64, 2*kr.m)
		for j := range kr.m {
			sk.Trig[2*j], sk.Trig[2*j+1] = math.Cos(2*math.Pi*float64(j)/float64(kr.m)), math.Sin(2*math.Pi*float64(j)/float64(kr.m))
		}
	}
	for p, v := range bs.Order {
		i := int(v)
		bs.Size[p] = int32(net.Size(i))
		sk.DownPos[p] = -1
		if d := net.Down(i); d >= 0 {
			sk.DownPos[p] = int32(net.Pre(d))
		}
		sk.PairStart[p+1] = sk.PairStart[p] + int64(net.Depth(i))
		sk.MaxDepth = max(sk.MaxDepth, net.Depth(i))
	}
	exclude, compat := o.ExcludeSelf, o.Compat == CompatDiffRoute
	switch {
	case exclude && !compat:
		sk.Mode = 1
	case o.Lateral == LateralRAPID && !exclude:
		sk.Mode = 2
		sk.Src = make([]float64, 2*n*nf)
		sk.Boxed = make([]int32, n)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := max(1, min(o.Workers, n))
	parallelChunks(ctx, cancel, workers, n, 256, kr.newWorker, func(wk *kernelWorker, lo, hi int) error {
		for p := lo; p < hi; p++ {
			i := int(bs.Order[p])
			if _, err := kr.reachLog(wk, i, false); err != nil {
				return err
			}
			putComplex(sk.L[2*p*nf:2*(p+1)*nf], wk.spec)
			if sk.Mode == 2 {
				boxed, err := kr.reachLog(wk, i, true)
				if err != nil {
					return err
				}
				if boxed {
					sk.Boxed[p] = 1
					putComplex(sk.Src[2*p*nf:2*(p+1)*nf], wk.spec)
				}
			}
		}
		return nil
	})
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	wk := kr.newWorker()
	if exclude {
		clear(wk.h) // the self pair: a unit impulse, coarsened
		wk.h[0] = 1
		kr.coarsen(wk, false)
		sk.SelfTaps = slices.Clone(wk.K)
	}
	for _, boxed := range []bool{false, true} {
		if o.ReLU {
			break
		}
		c := kr.newFoldCoarsener(boxed)
		sk.Fold = appendComplex(sk.Fold, c.a)
		sk.Fold = appendComplex(sk.Fold, c.wrap)
		sk.Fold = appendComplex(sk.Fold, c.tw)
	}
	return sk, nil
}

func putComplex(dst []float64, src []complex128) {
	for k, c := range src {
		dst[2*k], dst[2*k+1] = real(c), imag(c)
	}
}

func appendComplex(dst []float64, src []complex128) []float64 {
	for _, c := range src {
		dst = append(dst, real(c), imag(c))
	}
	return dst
}

// Finish makes the kernel router from the built taps: vals in Layout's
// block-sparse order (len: tiles·B·B·Taps, zero outside the closure) and
// sums, the sum of every pair's taps before normalisation, in pair order.
// It checks the sums (a pair that cannot be normalised is an error naming
// its reaches) and records the truncated mass as NewKernelRouter does.
// Call it once: the router it returns is the SpectralKernel's own.
func (sk *SpectralKernel) Finish(vals []float32, sums []float64) (*KernelRouter, error) {
	kr, bs := sk.kr, *sk.Layout
	nt := bs.RowTiles[len(bs.RowTiles)-1]
	if want := nt * int64(bs.B*bs.B*bs.Taps); int64(len(vals)) != want {
		return nil, fmt.Errorf("diffroute: spectral kernel: %d tap values, want %d", len(vals), want)
	}
	if int64(len(sums)) != sk.Pairs() {
		return nil, fmt.Errorf("diffroute: spectral kernel: %d pair sums, want %d", len(sums), sk.Pairs())
	}
	// pair returns the network indices (d, s) of pair g.
	pair := func(g int) (d, s int) {
		ps, _ := slices.BinarySearch(sk.PairStart, int64(g)+1)
		ps--
		p := ps
		for range int64(g) - sk.PairStart[ps] {
			p = int(sk.DownPos[p])
		}
		return int(bs.Order[p]), int(bs.Order[ps])
	}
	tr := &truncRecord{trunc: make([]float32, len(sums)), worst: -math.MaxFloat64}
	worst := -1
	for g, sum := range sums {
		if sk.Normalize && !(math.Abs(sum) >= kernelZeroSum) {
			d, s := pair(g)
			return nil, fmt.Errorf("diffroute: path kernel from reach %d to reach %d sums to zero (%.3g) and cannot be normalised", kr.net.ID(s), kr.net.ID(d), sum)
		}
		tm := 1 - sum
		tr.trunc[g] = float32(tm)
		if tm > tr.worst {
			tr.worst, worst = tm, g
		}
	}
	if worst >= 0 {
		d, s := pair(worst)
		tr.pair = [2]int64{kr.net.ID(d), kr.net.ID(s)}
	}
	bs.Vals = vals
	kr.bs = &bs
	kr.stats = kernelSizes(kr.net, kr.opts, nt, nil)
	tr.finish(&kr.stats)
	kr.stats.BuildTime = time.Since(sk.start)
	return kr, nil
}
