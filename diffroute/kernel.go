package diffroute

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gonum.org/v1/gonum/dsp/fourier"
)

// kernelLogEps is the magnitude floor ε of the log spectra:
// L = log max(|H|, ε) + i·arg H.
const kernelLogEps = 1e-8

// kernelLogPrefix selects how path spectra are formed. true: exactly the log-prefix
// form (docs/design.md, kernel method) — float64 prefix sums P of the log spectra and exp(P[s] − P[down d])
// per pair, the form a GPU evaluates with every pair independent. false (the
// CPU default): walking down from each source, the spectrum of the next pair
// is the previous one times exp(L_{down d}), the same product without an exp
// and sincos per pair and frequency (≈ 30 % of the build); both agree to
// rounding (TestKernelLogPrefixAgrees).
var kernelLogPrefix = false

// kernelFold selects how the FFT build turns a pair's spectrum into taps:
// true, straight from the spectrum (foldCoarsener); false, through an
// inverse FFT and the fine kernel, as ReLU needs. Tests compare the two.
var kernelFold = true

// kernelZeroSum: under Normalize a path kernel whose taps sum to less than
// this in magnitude is an error — it is zero up to the FFT's rounding noise,
// and dividing by it would only amplify that noise.
const kernelZeroSum = 1e-12

// KernelRouter routes with DiffRoute's transitive-closure formulation: the
// discharge of reach d is Σ_s K_{d,s} ⊛ x_s over the upstream closure of d,
// each path kernel K_{d,s} the convolution of the IRFs on the path s → … → d
// brought back to the runoff step. The kernel is built once (NewKernelRouter)
// and stored block-sparse; Route applies it with one causal convolution.
//
// Path kernels are built in the time domain when every reach's IRF has an
// exact recursive form (IRF.Sections) and Compat is not "diffroute": walking
// down from each source, the fine path response (W = MaxDelay·f taps) is
// filtered in place by each reach's sections — an exact truncated linear
// convolution, with no FFT and no wrap-around, so FFTPad plays no part (see
// kernel_td.go). Otherwise (pure_lag, hayami, fractional Nash cascades, user
// IRFs without Sections, Compat "diffroute") they are built in the
// log-frequency domain (docs/design.md, two methods), and FFTPad sets the FFT length: per reach
// the fine-grid IRF h_i (its exact recursive response over M sub-steps when it
// has Sections, else its W = MaxDelay·f window zero-padded) is transformed
// with a real FFT of length M = FFTPad·W, L_i = log max(|H_i|, 1e-8) + i·arg H_i,
// and the path s → d is exp(P[s] − P[down d]) with float64 prefix sums
// P[i] = L_i + P[down i] (equivalently, on CPU, a running product of exp(L_i)
// walking down from s; see kernelLogPrefix). The source's own term depends on
// the options:
//
//   - lateral rule rapid, IRF with Sections: the log spectrum of the lateral
//     step response g_s (first section with B0+B1 and B1 = 0, then the others,
//     driven by a box of f ones), i.e. log Ĝ_s + P[down s] − P[down d]; the
//     fine kernel is then already a response to a whole runoff step;
//   - lateral rule lti, or a convolution-only IRF (where rapid = lti): h_s;
//   - ExcludeSelf: no source term (P[down s] − P[down d]); the self pair is a
//     unit impulse, so the runoff passes directly (DiffRoute's
//     include_index_diag = false). Under Compat "diffroute" DiffRoute's
//     P[s] − P[down d] is used for the other pairs.
//
// The inverse FFT gives the fine path kernel (end convention), which is
// delayed by one sub-step for `start` averaging and reduced to MaxDelay taps
// per runoff step: the box mean of the whole-step response (rapid), which for
// an impulse response equals DiffRoute's tri filter (lti); or for `sample`
// the last fine value of each step (for an impulse response, DiffRoute's box
// sum). ReLU acts on the fine kernel, Normalize on the taps. Without ReLU
// that reduction is linear, and the taps are folded straight from the
// pair's spectrum instead (foldCoarsener: same taps to rounding, 4–6× faster
// builds than an inverse FFT per pair).
//
// Memory: the build streams pair by pair; besides the block-sparse result the
// FFT build holds one N × (M/2+1) complex128 table and a few M-length buffers
// per worker, the time-domain build the reaches' sections and a few W-length
// buffers per worker (Stats().BuildPeakBytes).
//
// A KernelRouter is safe for concurrent use.
type KernelRouter struct {
	net  *Network
	opts Options
	tab  *irfTable
	td   *tdTable // recursive forms: time-domain build; nil: FFT build

	f, taps, w, m int // sub-steps, taps per pair, fine window W, FFT length M

	bs    *BlockSparseKernel
	stats KernelStats

	tmu       sync.Mutex
	grad      *gradEngine // recursive adjoint for parameter gradients
	transfers map[int]*transferKernel
	fineOuts  map[int]*fineOutKernel
}

// KernelStats describes a built kernel (or, from EstimateKernelBytes, one that
// would be built).
type KernelStats struct {
	Reaches   int
	Pairs     int64 // (d, s) pairs, self pairs included: Σ depth
	Tiles     int64 // non-empty B×B tiles of the block-sparse kernel
	BlockSize int
	Taps      int // MaxDelay: taps per pair
	SubSteps  int
	FFTLen    int // M = FFTPad·MaxDelay·SubSteps; 0 for a time-domain build

	COOBytes   int64 // coords [P,2] int32 + vals [P, Taps] float32
	BlockBytes int64 // tile values + tile index
	// BuildPeakBytes bounds the memory held while building: the block-sparse
	// values, the float64 prefix spectra (N × (M/2+1) complex128; the
	// sections table for a time-domain build), the per-pair truncation record
	// and the per-worker buffers.
	BuildPeakBytes int64

	// Truncated mass per pair, 1 − Σ_q K[q], before Normalize (after ReLU).
	// Meaningful for mass-conserving IRFs with `avg` sampling: it is the part
	// of the path response that falls beyond MaxDelay steps (or, on the FFT
	// path, was folded back by the FFT's circular wrap-around).
	TruncatedMassMax    float64
	TruncatedMassMedian float64
	// WorstPair is the (downstream, source) pair of ids with the largest
	// truncated mass.
	WorstPair [2]int64

	BuildTime time.Duration
}

// Fill is the share of block-sparse entries that are closure pairs.
func (s KernelStats) Fill() float64 {
	if s.Tiles == 0 {
		return 0
	}
	return float64(s.Pairs) / (float64(s.Tiles) * float64(s.BlockSize*s.BlockSize))
}

func (s KernelStats) String() string {
	build := "time-domain"
	if s.FFTLen > 0 {
		build = fmt.Sprintf("FFT %d", s.FFTLen)
	}
	return fmt.Sprintf("kernel: %d reaches, %d pairs, %d tiles (B=%d, fill %.0f%%), %d taps, f=%d, %s; COO %.1f MiB, block-sparse %.1f MiB, build peak %.1f MiB; truncated mass max %.3g (pair %d←%d), median %.3g; built in %v",
		s.Reaches, s.Pairs, s.Tiles, s.BlockSize, 100*s.Fill(), s.Taps, s.SubSteps, build,
		float64(s.COOBytes)/(1<<20), float64(s.BlockBytes)/(1<<20), float64(s.BuildPeakBytes)/(1<<20),
		s.TruncatedMassMax, s.WorstPair[0], s.WorstPair[1], s.TruncatedMassMedian, s.BuildTime.Round(time.Millisecond))
}

// BlockSparseKernel is the kernel in the layout a GPU backend uploads.
//
// Reaches are renumbered by position p in the network's PreOrder, so that
// kernel row p (downstream reach Order[p]) has its sources exactly at the
// contiguous positions [p, p+Size[p]). Rows and columns are cut into blocks of
// B positions; row block R holds the tiles RowTiles[R] .. RowTiles[R+1]−1,
// whose column blocks are TileCol[t] (contiguous: R, R+1, …). Tile t stores
// B×B entries of Taps float32 taps each, in causal order:
//
//	Vals[((t·B + r)·B + c)·Taps + k] = K[d, s, k],  d = Order[TileRow[t]·B + r], s = Order[TileCol[t]·B + c]
//
// Entries outside the closure (and padding beyond N) are zero. The discharge is
// y[b, d, t] = Σ_tiles Σ_k K[d, s, k]·x[b, s, t−k].
type BlockSparseKernel struct {
	N, B, Taps int
	Order      []int32 // position → network index (the network's PreOrder)
	Size       []int32 // by position: row p spans source positions [p, p+Size[p])
	RowTiles   []int64 // len ⌈N/B⌉+1
	TileRow    []int32
	TileCol    []int32
	Vals       []float32
}

// COOKernel is the kernel as a list of pairs.
type COOKernel struct {
	Taps   int
	Coords []int32   // [P,2]: (d, s) network indices, row-major
	Vals   []float32 // [P, Taps], causal order
}

// transferKernel is the polyphase kernel of one transfer target v: for each
// reach d on the path v → outlet, Kf[m], m < Taps·f, weights the fine inflow
// z[q·f + f − 1 − m] in the coarse output y_d[q].
type transferKernel struct {
	rows []int32   // network indices d, from v down to the outlet
	vals []float32 // [len(rows), Taps·f]
}

// tileLayout computes the tile structure of the block-sparse kernel.
func tileLayout(net *Network, b int) (rowTiles []int64, tileRow, tileCol []int32) {
	n := net.Len()
	nb := (n + b - 1) / b
	order := net.PreOrder()
	rowTiles = make([]int64, nb+1)
	cmax := make([]int32, nb)
	for r := 0; r < nb; r++ {
		c := int32(r)
		for p := r * b; p < min(n, (r+1)*b); p++ {
			end := p + net.Size(int(order[p])) - 1
			c = max(c, int32(end/b))
		}
		cmax[r] = c
		rowTiles[r+1] = rowTiles[r] + int64(c) - int64(r) + 1
	}
	nt := rowTiles[nb]
	tileRow = make([]int32, nt)
	tileCol = make([]int32, nt)
	for r := 0; r < nb; r++ {
		for t := rowTiles[r]; t < rowTiles[r+1]; t++ {
			tileRow[t] = int32(r)
			tileCol[t] = int32(r) + int32(t-rowTiles[r])
		}
	}
	return rowTiles, tileRow, tileCol
}

// EstimateKernelBytes predicts the size of the kernel for net and opts without
// building it (the planner's input). Truncation and timing fields are zero.
func EstimateKernelBytes(net *Network, opts Options) (KernelStats, error) {
	o, err := kernelOptions(opts)
	if err != nil {
		return KernelStats{}, err
	}
	o.BlockSize = tileSize(o.BlockSize, net)
	rowTiles, _, _ := tileLayout(net, o.BlockSize)
	// The time-domain build when the parameters show it applies; otherwise
	// (parameters missing or not for this network) the FFT build's larger
	// peak.
	var td *tdTable
	if irf, err := LookupIRF(o.IRF); err == nil {
		if tab, err := newIRFTable(irf, o.Params, net, o.SubSteps, o.MaxDelay*o.SubSteps); err == nil {
			td, _ = newTDTable(tab, net, o)
		}
	}
	return kernelSizes(net, o, rowTiles[len(rowTiles)-1], td), nil
}

func kernelSizes(net *Network, o Options, tiles int64, td *tdTable) KernelStats {
	f, taps, b := o.SubSteps, o.MaxDelay, o.BlockSize
	m := o.FFTPad * taps * f
	nf := int64(m/2 + 1)
	n := int64(net.Len())
	s := KernelStats{
		Reaches: net.Len(), Pairs: net.Pairs(), Tiles: tiles, BlockSize: b,
		Taps: taps, SubSteps: f, FFTLen: m,
	}
	s.COOBytes = s.Pairs * (8 + 4*int64(taps))
	nb := (n + int64(b) - 1) / int64(b)
	s.BlockBytes = tiles*int64(b*b*taps)*4 + tiles*8 + (nb+1)*8 + 2*n*4
	if td != nil {
		s.FFTLen = 0
		perWorker := 4*int64(taps*f)*8 + int64(taps)*8
		s.BuildPeakBytes = s.BlockBytes + td.bytes() + s.Pairs*4 + int64(o.Workers)*perWorker
		return s
	}
	perWorker := 2*nf*16 + 3*int64(m)*8 + int64(taps*f+taps)*8
	s.BuildPeakBytes = s.BlockBytes + n*nf*16 + s.Pairs*4 + int64(o.Workers)*perWorker
	return s
}

// tileSize is the block size used for net: tiles larger than the network
// would only add zero padding (B² entries per tile), so the block size is
// capped at the number of reaches. Results do not depend on it.
func tileSize(b int, net *Network) int {
	return max(1, min(b, net.Len()))
}

func kernelOptions(opts Options) (Options, error) {
	if opts.Method == "" || opts.Method == Recursive {
		opts.Method = Kernel
	}
	return opts.withDefaults()
}

// NewKernelRouter builds the kernel of net. Sources are processed in parallel
// over opts.Workers goroutines; ctx cancels the build.
func NewKernelRouter(ctx context.Context, net *Network, opts Options) (*KernelRouter, error) {
	kr, err := newKernelShell(net, opts)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := kr.build(ctx); err != nil {
		return nil, err
	}
	kr.stats.BuildTime = time.Since(start)
	return kr, nil
}

// newKernelShell validates the options and prepares everything of a kernel
// router but its kernel.
func newKernelShell(net *Network, opts Options) (*KernelRouter, error) {
	if net == nil {
		return nil, fmt.Errorf("diffroute: no network")
	}
	o, err := kernelOptions(opts)
	if err != nil {
		return nil, err
	}
	o.BlockSize = tileSize(o.BlockSize, net)
	irf, err := LookupIRF(o.IRF)
	if err != nil {
		return nil, err
	}
	f, taps := o.SubSteps, o.MaxDelay
	w := taps * f
	tab, err := newIRFTable(irf, o.Params, net, f, w)
	if err != nil {
		return nil, err
	}
	td, err := newTDTable(tab, net, o)
	if err != nil {
		return nil, err
	}
	return &KernelRouter{net: net, opts: o, tab: tab, td: td, f: f, taps: taps, w: w, m: o.FFTPad * w,
		transfers: map[int]*transferKernel{}}, nil
}

// Network returns the network the kernel was built for.
func (kr *KernelRouter) Network() *Network { return kr.net }

// Options returns the options in effect (defaults filled in).
func (kr *KernelRouter) Options() Options { return kr.opts }

// Stats describes the kernel.
func (kr *KernelRouter) Stats() KernelStats { return kr.stats }

// BlockSparse returns the kernel in its block-sparse layout. It is shared
// with the router and must not be modified.
func (kr *KernelRouter) BlockSparse() *BlockSparseKernel { return kr.bs }

// COO returns the kernel as a list of (d, s) pairs with their taps, rows in
// pre-order and sources in pre-order within a row. It is extracted from the
// block-sparse kernel (a new allocation of Stats().COOBytes).
func (kr *KernelRouter) COO() *COOKernel {
	bs := kr.bs
	c := &COOKernel{Taps: bs.Taps, Coords: make([]int32, 0, 2*kr.stats.Pairs), Vals: make([]float32, 0, kr.stats.Pairs*int64(bs.Taps))}
	for p := 0; p < bs.N; p++ {
		for q := p; q < p+int(bs.Size[p]); q++ {
			c.Coords = append(c.Coords, bs.Order[p], bs.Order[q])
			c.Vals = append(c.Vals, bs.entry(p, q)...)
		}
	}
	return c
}

// entry returns the taps of row position p, column position q.
func (bs *BlockSparseKernel) entry(p, q int) []float32 {
	o := bs.offset(p, q)
	return bs.Vals[o : o+int64(bs.Taps) : o+int64(bs.Taps)]
}

// offset is the index in Vals of the first tap of row position p, column
// position q.
func (bs *BlockSparseKernel) offset(p, q int) int64 {
	r, c := p/bs.B, q/bs.B
	t := bs.RowTiles[r] + int64(c-r)
	return ((t*int64(bs.B)+int64(p%bs.B))*int64(bs.B) + int64(q%bs.B)) * int64(bs.Taps)
}

// kernelWorker holds one goroutine's reusable buffers.
type kernelWorker struct {
	fft  *fourier.FFT
	h    []float64    // M: fine response
	spec []complex128 // M/2+1
	src  []complex128 // M/2+1: the source's log term A_s
	kb   []float64    // Taps·f: box-summed fine kernel
	e    []float64    // Taps·f: shifted kernel
	K    []float64    // Taps
	secs []Section
	// folds[boxed] reduce spectra to taps (made on first use).
	folds [2]*foldCoarsener
}

// fold returns the worker's fold coarsener for (boxed) kernels.
func (wk *kernelWorker) fold(kr *KernelRouter, boxed bool) *foldCoarsener {
	i := 0
	if boxed {
		i = 1
	}
	if wk.folds[i] == nil {
		wk.folds[i] = kr.newFoldCoarsener(boxed)
	}
	return wk.folds[i]
}

func (kr *KernelRouter) newWorker() *kernelWorker {
	nf := kr.m/2 + 1
	return &kernelWorker{
		fft: fourier.NewFFT(kr.m), h: make([]float64, kr.m),
		spec: make([]complex128, nf), src: make([]complex128, nf),
		kb: make([]float64, kr.w), e: make([]float64, kr.w), K: make([]float64, kr.taps),
	}
}

// sections returns reach i's exact recursive form, or nil when its IRF has
// none for these parameters.
func (kr *KernelRouter) sections(dst []Section, i int) ([]Section, error) {
	if kr.tab.irf.Sections == nil {
		return nil, nil
	}
	s, err := kr.tab.irf.Sections(dst[:0], kr.tab.params[i], kr.tab.r)
	if err != nil {
		return nil, reachIRFError(kr.net.ID(i), kr.tab.irf.Name, err)
	}
	return s, nil
}

// runSections filters h in place through a cascade of sections (zero state).
func runSections(h []float64, secs []Section) {
	for _, s := range secs {
		px, py := 0.0, 0.0
		for n, x := range h {
			y := s.B0*x + s.B1*px + s.A1*py
			px, py = x, y
			h[n] = y
		}
	}
}

// reachLog fills wk.spec with reach i's log spectrum L_i. With lateral set and
// a recursive form, it is the log spectrum of the rapid lateral step response
// g_i instead (first section's B1 folded into B0, driven by a box of f ones);
// boxed reports whether that happened.
func (kr *KernelRouter) reachLog(wk *kernelWorker, i int, lateral bool) (boxed bool, err error) {
	boxed, err = kr.reachSpec(wk, i, lateral)
	for j, c := range wk.spec {
		// log max(|c|, ε) as ½·log max(|c|², ε²): no square root; spectra
		// are at most Σ|h| ≈ 1, so |c|² cannot overflow, and where it
		// underflows the floor applies anyway.
		a2 := real(c)*real(c) + imag(c)*imag(c)
		wk.spec[j] = complex(0.5*math.Log(max(a2, kernelLogEps*kernelLogEps)), math.Atan2(imag(c), real(c)))
	}
	return boxed, err
}

// reachClamped fills wk.spec with exp(L_i) (see reachLog) without going
// through logs: the spectrum with its magnitude raised to at least ε.
func (kr *KernelRouter) reachClamped(wk *kernelWorker, i int, lateral bool) (boxed bool, err error) {
	boxed, err = kr.reachSpec(wk, i, lateral)
	for j, c := range wk.spec {
		switch a := math.Hypot(real(c), imag(c)); {
		case a == 0:
			wk.spec[j] = kernelLogEps // phase atan2(0, 0) = 0
		case a < kernelLogEps:
			wk.spec[j] = c * complex(kernelLogEps/a, 0)
		}
	}
	return boxed, err
}

// reachSpec fills wk.spec with the spectrum of reach i's fine response (see
// reachLog for lateral and boxed).
func (kr *KernelRouter) reachSpec(wk *kernelWorker, i int, lateral bool) (boxed bool, err error) {
	h := wk.h
	clear(h)
	secs, err := kr.sections(wk.secs, i)
	if err != nil {
		return false, err
	}
	wk.secs = secs
	switch {
	case secs != nil && lateral:
		for n := 0; n < kr.f; n++ {
			h[n] = 1
		}
		first := secs[0]
		secs[0] = Section{B0: first.B0 + first.B1, A1: first.A1}
		runSections(h, secs)
		secs[0] = first
		boxed = true
	case secs != nil:
		h[0] = 1
		runSections(h, secs)
	default:
		if err := kr.tab.impulse(h[:kr.w], i, kr.net); err != nil {
			return false, err
		}
	}
	wk.fft.Coefficients(wk.spec, h)
	return boxed, nil
}

// expSpec sets dst = exp(src) elementwise.
func expSpec(dst, src []complex128) {
	for j, c := range src {
		e := math.Exp(real(c))
		sn, cs := math.Sincos(imag(c))
		dst[j] = complex(e*cs, e*sn)
	}
}

// fineKernel turns the log spectrum in wk.spec into the fine path kernel wk.h
// (end convention, length M, causal).
func (kr *KernelRouter) fineKernel(wk *kernelWorker) {
	expSpec(wk.spec, wk.spec)
	kr.fineFromSpec(wk, wk.spec)
}

// fineFromSpec sets wk.h to the inverse real FFT of spec (not modified).
func (kr *KernelRouter) fineFromSpec(wk *kernelWorker, spec []complex128) {
	wk.fft.Sequence(wk.h, spec)
	inv := 1 / float64(kr.m)
	for n := range wk.h {
		wk.h[n] *= inv
	}
	if kr.opts.ReLU {
		for n, v := range wk.h {
			wk.h[n] = max(v, 0)
		}
	}
}

// shifted fills wk.e[n] = v(n − shift), n < Taps·f, where v is the fine kernel
// wk.h box-summed over f sub-steps (boxSum) or as is, zero outside [0, M).
// shift is one sub-step under `start` averaging.
func (kr *KernelRouter) shifted(wk *kernelWorker, boxSum bool) {
	k, kb, f, m := wk.h, wk.kb, kr.f, kr.m
	if boxSum {
		run := 0.0
		for i := range kb {
			if i < m {
				run += k[i]
			}
			if j := i - f; j >= 0 && j < m {
				run -= k[j]
			}
			kb[i] = run
		}
		if kr.opts.ReLU { // a sum of non-negative taps, up to rounding of the running difference
			for i, v := range kb {
				kb[i] = max(v, 0)
			}
		}
	} else {
		copy(kb, k[:min(m, len(kb))])
	}
	shift := 0
	if kr.opts.Average == AverageStart {
		shift = 1
	}
	e := wk.e
	for n := range e {
		if n-shift >= 0 {
			e[n] = kb[n-shift]
		} else {
			e[n] = 0
		}
	}
}

// coarsen reduces the fine path kernel in wk.h to wk.K, one tap per runoff
// step. boxed says wk.h already is the response to a whole step of unit
// runoff (rapid lateral rule); otherwise it is the response to one fine unit
// impulse and is box-summed first — the box mean of the box-summed kernel is
// DiffRoute's tri filter K[q] = Σ_u (f−|u|)/f·k[q·f+u]. `avg` takes the mean
// of the f fine values of each step, `sample` the last one.
func (kr *KernelRouter) coarsen(wk *kernelWorker, boxed bool) {
	kr.shifted(wk, !boxed)
	f, e := kr.f, wk.e
	for p := range wk.K {
		if kr.opts.Sampling == SampleLast {
			wk.K[p] = e[p*f+f-1]
			continue
		}
		s := 0.0
		for _, v := range e[p*f : p*f+f] {
			s += v
		}
		wk.K[p] = s / float64(f)
	}
}

// build computes every path kernel into the block-sparse storage.
func (kr *KernelRouter) build(ctx context.Context) error {
	net, o := kr.net, kr.opts
	n := net.Len()
	nf := kr.m/2 + 1
	rowTiles, tileRow, tileCol := tileLayout(net, o.BlockSize)
	nt := rowTiles[len(rowTiles)-1]
	bs := &BlockSparseKernel{
		N: n, B: o.BlockSize, Taps: kr.taps,
		Order: net.PreOrder(), Size: make([]int32, n),
		RowTiles: rowTiles, TileRow: tileRow, TileCol: tileCol,
		Vals: make([]float32, nt*int64(o.BlockSize*o.BlockSize*kr.taps)),
	}
	for p, v := range bs.Order {
		bs.Size[p] = int32(net.Size(int(v)))
	}
	kr.bs = bs
	kr.stats = kernelSizes(net, o, nt, kr.td)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := max(1, min(o.Workers, n))
	tr := &truncRecord{trunc: make([]float32, 0, net.Pairs()), worst: -math.MaxFloat64}
	if kr.td != nil {
		kr.buildTD(ctx, cancel, workers, tr)
		if err := context.Cause(ctx); err != nil {
			return err
		}
		tr.finish(&kr.stats)
		return nil
	}

	// Log spectra per reach. In log-prefix mode they become prefix sums to the
	// outlet over pre-order (parents come before their upstream reaches);
	// otherwise the clamped spectra exp(L_i) are kept for running products.
	P := make([]complex128, n*nf)
	parallelChunks(ctx, cancel, workers, n, 256, kr.newWorker, func(wk *kernelWorker, lo, hi int) error {
		for i := lo; i < hi; i++ {
			if kernelLogPrefix {
				if _, err := kr.reachLog(wk, i, false); err != nil {
					return err
				}
			} else if _, err := kr.reachClamped(wk, i, false); err != nil {
				return err
			}
			copy(P[i*nf:(i+1)*nf], wk.spec)
		}
		return nil
	})
	if err := context.Cause(ctx); err != nil {
		return err
	}
	if kernelLogPrefix {
		for _, v := range net.PreOrder() {
			if d := net.Down(int(v)); d >= 0 {
				pv, pd := P[int(v)*nf:int(v+1)*nf], P[d*nf:(d+1)*nf]
				for j := range pv {
					pv[j] += pd[j]
				}
			}
		}
	}
	prefix := func(i int) []complex128 {
		if i < 0 {
			return nil
		}
		return P[i*nf : (i+1)*nf]
	}

	// Path kernels, per source walking down to its outlet.
	exclude, compat := o.ExcludeSelf, o.Compat == CompatDiffRoute
	parallelChunks(ctx, cancel, workers, n, 32, kr.newWorker, func(wk *kernelWorker, lo, hi int) error {
		acc := newPairAcc()
		for ps := lo; ps < hi; ps++ {
			s := int(bs.Order[ps])
			boxed := false
			ds := net.Down(s)
			if kernelLogPrefix {
				// A_s: log spectrum from the source to the top of the shared path, so
				// that pair (d, s) is exp(A_s − P[down d]).
				switch {
				case exclude && !compat:
					copy(wk.src, zeroIfNil(prefix(ds), nf))
				case o.Lateral == LateralRAPID && !exclude:
					var err error
					if boxed, err = kr.reachLog(wk, s, true); err != nil {
						return err
					}
					if boxed {
						if pd := prefix(ds); pd != nil {
							for j := range wk.spec {
								wk.spec[j] += pd[j]
							}
						}
						copy(wk.src, wk.spec)
					} else {
						copy(wk.src, prefix(s))
					}
				default:
					copy(wk.src, prefix(s))
				}
			} else {
				// wk.src: the spectrum of pair (s, s), multiplied by exp(L) of each
				// reach on the way down.
				switch {
				case exclude && !compat:
					for j := range wk.src {
						wk.src[j] = 1
					}
				case o.Lateral == LateralRAPID && !exclude:
					var err error
					if boxed, err = kr.reachClamped(wk, s, true); err != nil {
						return err
					}
					if boxed {
						copy(wk.src, wk.spec)
					} else {
						copy(wk.src, prefix(s))
					}
				default:
					copy(wk.src, prefix(s))
				}
			}
			for d := s; d >= 0; d = net.Down(d) {
				var spec []complex128 // the pair's spectrum
				switch {
				case exclude && d == s:
					clear(wk.h) // own runoff added directly: a unit impulse
					wk.h[0] = 1
				case kernelLogPrefix:
					copy(wk.spec, wk.src)
					if pd := prefix(net.Down(d)); pd != nil {
						for j := range wk.spec {
							wk.spec[j] -= pd[j]
						}
					}
					expSpec(wk.spec, wk.spec)
					spec = wk.spec
				default:
					spec = wk.src
				}
				switch {
				case spec == nil:
					kr.coarsen(wk, boxed)
				case o.ReLU || !kernelFold: // ReLU is not linear: through the fine kernel
					kr.fineFromSpec(wk, spec)
					kr.coarsen(wk, boxed)
				default:
					wk.fold(kr, boxed).coarsen(wk.K, spec)
				}
				if e := prefix(net.Down(d)); e != nil && !kernelLogPrefix {
					for j, c := range e {
						wk.src[j] *= c
					}
				}
				if err := kr.storePair(&acc, wk.K, d, s, ps); err != nil {
					return err
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		tr.add(&acc)
		return nil
	})
	if err := context.Cause(ctx); err != nil {
		return err
	}
	tr.finish(&kr.stats)
	return nil
}

// pairAcc is one worker's share of the truncated-mass record.
type pairAcc struct {
	local []float32
	worst float64
	pair  [2]int64
}

func newPairAcc() pairAcc {
	return pairAcc{local: make([]float32, 0, 256), worst: -math.MaxFloat64}
}

// truncRecord gathers the truncated mass of every pair.
type truncRecord struct {
	mu    sync.Mutex
	trunc []float32
	worst float64
	pair  [2]int64
}

// add moves a worker's record in and resets it.
func (t *truncRecord) add(a *pairAcc) {
	t.mu.Lock()
	t.trunc = append(t.trunc, a.local...)
	if a.worst > t.worst {
		t.worst, t.pair = a.worst, a.pair
	}
	t.mu.Unlock()
	a.local = a.local[:0]
	a.worst = -math.MaxFloat64
}

func (t *truncRecord) finish(st *KernelStats) {
	if len(t.trunc) > 0 {
		st.TruncatedMassMax = t.worst
		st.WorstPair = t.pair
		st.TruncatedMassMedian = float64(nthFloat32(t.trunc, len(t.trunc)/2))
	}
}

// nthFloat32 reorders v so that v[k] is the element a full sort
// (slices.Sort: NaN first) would put there, and returns it: a quickselect,
// O(len(v)) on average where sorting millions of pairs would be the build's
// longest serial step.
func nthFloat32(v []float32, k int) float32 {
	lo, hi := 0, len(v)-1
	for hi-lo >= 16 {
		mid := lo + (hi-lo)/2
		a, b, c := v[lo], v[mid], v[hi]
		if cmp.Less(b, a) {
			a, b = b, a
		}
		if cmp.Less(c, b) {
			b = c
			if cmp.Less(b, a) {
				b = a
			}
		}
		pivot := b // median of three
		i, j := lo, hi
		for i <= j {
			for cmp.Less(v[i], pivot) {
				i++
			}
			for cmp.Less(pivot, v[j]) {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		// v[lo..j] ≤ pivot ≤ v[i..hi]; between them, elements equal to pivot.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	slices.Sort(v[lo : hi+1])
	return v[k]
}

// storePair records the truncated mass of pair (d, s) with taps K (source at
// pre-order position ps), normalises K under Normalize and stores it.
func (kr *KernelRouter) storePair(acc *pairAcc, K []float64, d, s, ps int) error {
	net := kr.net
	sum := 0.0
	for _, v := range K {
		sum += v
	}
	tm := 1 - sum
	acc.local = append(acc.local, float32(tm))
	if tm > acc.worst {
		acc.worst, acc.pair = tm, [2]int64{net.ID(d), net.ID(s)}
	}
	if kr.opts.Normalize {
		if math.Abs(sum) < kernelZeroSum {
			return fmt.Errorf("diffroute: path kernel from reach %d to reach %d sums to zero (%.3g) and cannot be normalised", net.ID(s), net.ID(d), sum)
		}
		for q := range K {
			K[q] /= sum
		}
	}
	dst := kr.bs.entry(net.Pre(d), ps)
	for q, v := range K {
		dst[q] = float32(v)
	}
	return nil
}

func zeroIfNil(s []complex128, n int) []complex128 {
	if s == nil {
		return make([]complex128, n)
	}
	return s
}

// parallelChunks runs fn over [0, n) in chunks of the given size on workers
// goroutines, each with its own state from newState. The first error cancels
// ctx through cancel with that error as the cause.
func parallelChunks[S any](ctx context.Context, cancel context.CancelCauseFunc, workers, n, chunk int, newState func() S, fn func(st S, lo, hi int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := newState()
			for ctx.Err() == nil {
				lo := int(next.Add(int64(chunk))) - chunk
				if lo >= n {
					return
				}
				if err := fn(st, lo, min(n, lo+chunk)); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// transfer returns (building on first use) the polyphase kernel of fine
// upstream inflow into reach v.
func (kr *KernelRouter) transfer(v int) (*transferKernel, error) {
	kr.tmu.Lock()
	defer kr.tmu.Unlock()
	if tk, ok := kr.transfers[v]; ok {
		return tk, nil
	}
	tk := &transferKernel{}
	err := kr.transferRows(v, func(d int, row []float64) error {
		tk.rows = append(tk.rows, int32(d))
		for _, x := range row {
			tk.vals = append(tk.vals, float32(x))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	kr.transfers[v] = tk
	return tk, nil
}

// transferRows computes the polyphase rows of fine upstream inflow into
// reach v in float64, for each reach d from v down to the outlet in order:
// fn gets d and the row (Taps·f values, valid during the call).
func (kr *KernelRouter) transferRows(v int, fn func(d int, row []float64) error) error {
	net := kr.net
	wf := kr.taps * kr.f
	buf := make([]float64, wf)
	// row forms the row of d from the fine path response v → d in wk.h.
	row := func(d int, wk *kernelWorker) error {
		// avg: the mean over the step of the fine responses = box sum / f;
		// sample: the fine response itself, at the last sub-step.
		avg := kr.opts.Sampling == SampleAvg
		kr.shifted(wk, avg)
		sum := 0.0
		for m, x := range wk.e[:wf] {
			if avg {
				x /= float64(kr.f)
			}
			buf[m] = x
			sum += x
		}
		if kr.opts.Normalize {
			if math.Abs(sum) < kernelZeroSum {
				return fmt.Errorf("diffroute: transfer kernel from reach %d to reach %d sums to zero (%.3g) and cannot be normalised", net.ID(v), net.ID(d), sum)
			}
			// Σ_m Kf[m] is the mass of the fine path response in both samplings.
			for m := range buf {
				buf[m] /= sum
			}
		}
		return fn(d, buf)
	}
	if kr.td != nil {
		return kr.transferTD(v, row)
	}
	wk := kr.newWorker()
	acc := make([]complex128, kr.m/2+1)
	for d := v; d >= 0; d = net.Down(d) {
		if _, err := kr.reachLog(wk, d, false); err != nil {
			return err
		}
		for j := range acc {
			acc[j] += wk.spec[j]
		}
		copy(wk.spec, acc)
		kr.fineKernel(wk)
		if err := row(d, wk); err != nil {
			return err
		}
	}
	return nil
}
