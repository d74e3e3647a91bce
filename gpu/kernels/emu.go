package kernels

/*
#cgo CXXFLAGS: -O2 -std=c++17 -Wall -Wno-unused-function
#include <stdlib.h>
#include "emu_api.h"
*/
import "C"

import (
	"embed"
	"fmt"
	"unsafe"
)

// Sources holds the kernel sources. Embedding them also makes the Go build
// cache rebuild the emulator whenever a .cu or .h file changes (cgo alone
// does not track files that emu.cpp includes).
//
//go:embed *.cu *.h
var Sources embed.FS

// Grid is a 1-D launch configuration. Every kernel loops over its problem
// with a grid-stride loop, so any grid covers any problem size.
type Grid struct {
	Blocks, Threads int
}

// DefaultGrid is the launch the tests use: deliberately small and odd, so
// that grid-stride loops wrap many times.
var DefaultGrid = Grid{Blocks: 7, Threads: 32}

func (g Grid) check() {
	if g.Blocks < 1 || g.Threads < 1 {
		panic(fmt.Sprintf("kernels: bad grid %d×%d", g.Blocks, g.Threads))
	}
}

func need(name string, have, want int) {
	if have < want {
		panic(fmt.Sprintf("kernels: %s has %d values, the launch reads %d", name, have, want))
	}
}

func fptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func dptr(s []float64) *C.double {
	if len(s) == 0 {
		return nil
	}
	return (*C.double)(unsafe.Pointer(&s[0]))
}

func lptr(s []int64) *C.longlong {
	if len(s) == 0 {
		return nil
	}
	return (*C.longlong)(unsafe.Pointer(&s[0]))
}

func iptr(s []int32) *C.int {
	if len(s) == 0 {
		return nil
	}
	return (*C.int)(unsafe.Pointer(&s[0]))
}

// BSConvArgs are the arguments of dr_bsconv (bsconv.cu): y [NB][N][TX−T0] is
// overwritten with the convolution of the block-sparse kernel with x
// [NB][N][TX] (positions in pre-order, the first T0 ≥ Taps−1 steps history).
type BSConvArgs struct {
	Y, X, Vals             []float32
	RowTiles               []int64
	TileCol, Size          []int32
	N, B, Taps, NB, TX, T0 int
}

func (a *BSConvArgs) check() {
	need("y", len(a.Y), a.NB*a.N*(a.TX-a.T0))
	need("x", len(a.X), a.NB*a.N*a.TX)
	need("rowTiles", len(a.RowTiles), (a.N+a.B-1)/a.B+1)
	nt := int(a.RowTiles[(a.N+a.B-1)/a.B])
	need("tileCol", len(a.TileCol), nt)
	need("vals", len(a.Vals), nt*a.B*a.B*a.Taps)
	need("size", len(a.Size), a.N)
	if a.T0 < a.Taps-1 || a.T0 > a.TX {
		panic(fmt.Sprintf("kernels: history of %d steps for %d taps and %d steps", a.T0, a.Taps, a.TX))
	}
}

// BSConv runs dr_bsconv in the emulator. planted selects the variant with an
// off-by-one in the time index (x[t−k−1]), for tests of the tests.
func BSConv(g Grid, planted bool, a *BSConvArgs) {
	g.check()
	a.check()
	p := C.int(0)
	if planted {
		p = 1
	}
	C.emu_bsconv(p, C.longlong(g.Blocks), C.longlong(g.Threads), fptr(a.Y), fptr(a.X), fptr(a.Vals),
		lptr(a.RowTiles), iptr(a.TileCol), iptr(a.Size),
		C.longlong(a.N), C.longlong(a.B), C.longlong(a.Taps), C.longlong(a.NB), C.longlong(a.TX), C.longlong(a.T0))
}

// BSConvAdjArgs are the arguments of dr_bsconv_adj (bsconv_adj.cu): GX
// [NB][N][TX−Ahead] is overwritten with the adjoint of the block-sparse
// convolution applied to GY [NB][N][TX] (positions in pre-order, the last
// Ahead ≥ Taps−1 steps lookahead); DownPos is the next position towards the
// outlet, −1 past it.
type BSConvAdjArgs struct {
	GX, GY, Vals              []float32
	RowTiles                  []int64
	DownPos                   []int32
	N, B, Taps, NB, TX, Ahead int
}

func (a *BSConvAdjArgs) check() {
	need("gx", len(a.GX), a.NB*a.N*(a.TX-a.Ahead))
	need("gy", len(a.GY), a.NB*a.N*a.TX)
	nr := (a.N + a.B - 1) / a.B
	need("rowTiles", len(a.RowTiles), nr+1)
	need("vals", len(a.Vals), int(a.RowTiles[nr])*a.B*a.B*a.Taps)
	need("downPos", len(a.DownPos), a.N)
	for p, d := range a.DownPos[:a.N] {
		if d >= int32(p) || d < -1 {
			panic(fmt.Sprintf("kernels: position %d flows to %d (want a position before it, or -1)", p, d))
		}
	}
	if a.Ahead < a.Taps-1 || a.Ahead > a.TX {
		panic(fmt.Sprintf("kernels: lookahead of %d steps for %d taps and %d steps", a.Ahead, a.Taps, a.TX))
	}
}

// BSConvAdj runs dr_bsconv_adj in the emulator. planted selects the variant
// that reads the taps reversed, for tests of the tests.
func BSConvAdj(g Grid, planted bool, a *BSConvAdjArgs) {
	g.check()
	a.check()
	p := C.int(0)
	if planted {
		p = 1
	}
	C.emu_bsconv_adj(p, C.longlong(g.Blocks), C.longlong(g.Threads), fptr(a.GX), fptr(a.GY), fptr(a.Vals),
		lptr(a.RowTiles), iptr(a.DownPos),
		C.longlong(a.N), C.longlong(a.B), C.longlong(a.Taps), C.longlong(a.NB), C.longlong(a.TX), C.longlong(a.Ahead))
}

// TapGradArgs are the arguments of dr_tapgrad (tapgrad.cu): DK (the layout
// of the kernel's taps) gets Σ_b Σ_t X[b, q, t]·GY[b, p, t+k] added for
// every closure entry (p, q) and tap k; X is [NB][N][TL], GY [NB][N][TX]
// with TX − TL ≥ Taps−1 steps of lookahead.
type TapGradArgs struct {
	DK                     []float64
	X, GY                  []float32
	TileRow, TileCol, Size []int32
	N, B, Taps, NB, TL, TX int
}

func (a *TapGradArgs) check() {
	nt := len(a.TileRow)
	need("tileCol", len(a.TileCol), nt)
	need("dk", len(a.DK), nt*a.B*a.B*a.Taps)
	need("size", len(a.Size), a.N)
	need("x", len(a.X), a.NB*a.N*a.TL)
	need("gy", len(a.GY), a.NB*a.N*a.TX)
	if a.TX-a.TL < a.Taps-1 {
		panic(fmt.Sprintf("kernels: lookahead of %d steps for %d taps", a.TX-a.TL, a.Taps))
	}
	for t, r := range a.TileRow {
		if r < 0 || int(r)*a.B >= a.N || a.TileCol[t] < r {
			panic(fmt.Sprintf("kernels: tile %d at row block %d, column block %d of %d positions", t, r, a.TileCol[t], a.N))
		}
	}
}

// TapGrad runs dr_tapgrad in the emulator. planted selects the variant
// with an off-by-one lag, for tests of the tests.
func TapGrad(g Grid, planted bool, a *TapGradArgs) {
	g.check()
	a.check()
	p := C.int(0)
	if planted {
		p = 1
	}
	C.emu_tapgrad(p, C.longlong(g.Blocks), C.longlong(g.Threads), dptr(a.DK), fptr(a.X), fptr(a.GY),
		iptr(a.TileRow), iptr(a.TileCol), iptr(a.Size), C.longlong(len(a.TileRow)),
		C.longlong(a.N), C.longlong(a.B), C.longlong(a.Taps), C.longlong(a.NB), C.longlong(a.TL), C.longlong(a.TX))
}

// TransferArgs are the arguments of dr_transfer_add (transfer.cu).
type TransferArgs struct {
	Y, Z, Kf                       []float32
	GroupStart                     []int64
	GroupRow                       []int32
	TaskIn                         []int32
	TaskOff                        []int64
	NY, NB, TY, Q0, F, WF, NIn, TZ int
}

func (a *TransferArgs) check() {
	ng := len(a.GroupRow)
	need("groupStart", len(a.GroupStart), ng+1)
	nt := int(a.GroupStart[ng])
	need("taskIn", len(a.TaskIn), nt)
	need("taskOff", len(a.TaskOff), nt)
	need("y", len(a.Y), a.NB*a.NY*a.TY)
	need("z", len(a.Z), a.NIn*a.NB*a.TZ)
	if (a.Q0+a.TY)*a.F > a.TZ {
		panic(fmt.Sprintf("kernels: output steps up to %d need %d fine inflow values, have %d", a.Q0+a.TY, (a.Q0+a.TY)*a.F, a.TZ))
	}
	for j := 0; j < nt; j++ {
		need("kf", len(a.Kf), int(a.TaskOff[j])+a.WF)
		if a.TaskIn[j] < 0 || int(a.TaskIn[j]) >= a.NIn {
			panic(fmt.Sprintf("kernels: task %d reads inflow %d of %d", j, a.TaskIn[j], a.NIn))
		}
	}
	for g, r := range a.GroupRow {
		if r < 0 || int(r) >= a.NY {
			panic(fmt.Sprintf("kernels: group %d writes row %d of %d", g, r, a.NY))
		}
	}
}

// TransferAdd runs dr_transfer_add in the emulator.
func TransferAdd(g Grid, a *TransferArgs) {
	g.check()
	a.check()
	C.emu_transfer_add(C.longlong(g.Blocks), C.longlong(g.Threads), fptr(a.Y), fptr(a.Z), fptr(a.Kf),
		lptr(a.GroupStart), iptr(a.GroupRow), iptr(a.TaskIn), lptr(a.TaskOff),
		C.longlong(len(a.GroupRow)), C.longlong(a.NY), C.longlong(a.NB), C.longlong(a.TY), C.longlong(a.Q0),
		C.longlong(a.F), C.longlong(a.WF), C.longlong(a.NIn), C.longlong(a.TZ))
}

// InterpArgs are the arguments of dr_interp (interp.cu).
type InterpArgs struct {
	X, Pix          []float32
	WStart          []int64
	Pixel           []int32
	Weight          []float64
	N, NPix, NB, NT int
}

// needWeights checks a CSR weight table of n rivers over nPix pixels, as
// both interpolation kernels read it.
func needWeights(wStart []int64, pixel []int32, weight []float64, n, nPix int) {
	need("wStart", len(wStart), n+1)
	need("pixel", len(pixel), int(wStart[n]))
	need("weight", len(weight), int(wStart[n]))
	for w, p := range pixel[:wStart[n]] {
		if p < 0 || int(p) >= nPix {
			panic(fmt.Sprintf("kernels: weight %d names pixel %d of %d", w, p, nPix))
		}
	}
}

// Interp runs dr_interp in the emulator.
func Interp(g Grid, a *InterpArgs) {
	g.check()
	need("x", len(a.X), a.NB*a.N*a.NT)
	need("pix", len(a.Pix), a.NB*a.NPix*a.NT)
	needWeights(a.WStart, a.Pixel, a.Weight, a.N, a.NPix)
	C.emu_interp(C.longlong(g.Blocks), C.longlong(g.Threads), fptr(a.X), fptr(a.Pix), lptr(a.WStart), iptr(a.Pixel), dptr(a.Weight),
		C.longlong(a.N), C.longlong(a.NPix), C.longlong(a.NB), C.longlong(a.NT))
}

// PrefixJump runs one pointer-jumping step of dr_prefix_jump (prefix.cu) in
// the emulator.
func PrefixJump(g Grid, pout, pin []float64, nxtOut, nxtIn []int32, n, width int) {
	g.check()
	need("pout", len(pout), n*width)
	need("pin", len(pin), n*width)
	need("nxtOut", len(nxtOut), n)
	need("nxtIn", len(nxtIn), n)
	C.emu_prefix_jump(C.longlong(g.Blocks), C.longlong(g.Threads), dptr(pout), dptr(pin), iptr(nxtOut), iptr(nxtIn), C.longlong(n), C.longlong(width))
}

// PrefixSums computes P[i] = L[i] + P[down[i]] for rows of width doubles by
// pointer jumping, as the CUDA backend does: ⌈log2(maxDepth)⌉ launches of
// dr_prefix_jump with the buffers swapped between launches. It returns P and
// the number of launches.
func PrefixSums(g Grid, L []float64, down []int32, width, maxDepth int) ([]float64, int) {
	n := len(down)
	a := append([]float64(nil), L[:n*width]...)
	b := make([]float64, n*width)
	na := append([]int32(nil), down...)
	nb := make([]int32, n)
	steps := JumpSteps(maxDepth)
	for range steps {
		PrefixJump(g, b, a, nb, na, n, width)
		a, b = b, a
		na, nb = nb, na
	}
	return a, steps
}

// JumpSteps is the number of pointer-jumping steps that sum paths of up to
// maxDepth reaches: after s steps each reach has summed 2^s of them.
func JumpSteps(maxDepth int) int {
	s := 0
	for 1<<s < maxDepth {
		s++
	}
	return s
}

// InterpWindowArgs are the arguments of dr_interp_window (interp.cu): x
// [NB][N][TX] from the pixel matrix pix [NB][NPix][PNT], columns PS .. PS+TX−1
// (outside [0, PNT): zero).
type InterpWindowArgs struct {
	X, Pix                   []float32
	WStart                   []int64
	Pixel                    []int32
	Weight                   []float64
	N, NPix, NB, TX, PNT, PS int
}

// InterpWindow runs dr_interp_window in the emulator.
func InterpWindow(g Grid, a *InterpWindowArgs) {
	g.check()
	need("x", len(a.X), a.NB*a.N*a.TX)
	need("pix", len(a.Pix), a.NB*a.NPix*a.PNT)
	needWeights(a.WStart, a.Pixel, a.Weight, a.N, a.NPix)
	C.emu_interp_window(C.longlong(g.Blocks), C.longlong(g.Threads), fptr(a.X), fptr(a.Pix), lptr(a.WStart), iptr(a.Pixel), dptr(a.Weight),
		C.longlong(a.N), C.longlong(a.NPix), C.longlong(a.NB), C.longlong(a.TX), C.longlong(a.PNT), C.longlong(a.PS))
}

// PairEnum runs dr_pair_enum (pairs.cu) in the emulator: pairD/pairS get,
// from pairStart[s] on, the positions on source position s's way to the
// outlet (downPos: the next position, −1 past the outlet).
func PairEnum(g Grid, pairD, pairS []int32, pairStart []int64, downPos []int32) {
	g.check()
	n := len(downPos)
	need("pairStart", len(pairStart), n+1)
	need("pairD", len(pairD), int(pairStart[n]))
	need("pairS", len(pairS), int(pairStart[n]))
	C.emu_pair_enum(C.longlong(g.Blocks), C.longlong(g.Threads), iptr(pairD), iptr(pairS), lptr(pairStart), iptr(downPos), C.longlong(n))
}

// PairTables are the tables both pair-taps kernels read and write (see
// pairs.cu): taps and sums out; pairs, prefix log spectra, source spectra
// and flags, links and row index in.
type PairTables struct {
	Vals              []float32
	Sums              []float64
	PairD, PairS      []int32
	P, Src            []float64
	Boxed, DownPos    []int32
	RowTiles          []int64
	SelfTaps          []float64
	NF, Taps, B, Mode int
	Normalize         bool
}

// check panics unless the tables fit each other.
func (a *PairTables) check() {
	np := len(a.PairD)
	n := len(a.DownPos)
	need("pairS", len(a.PairS), np)
	need("sums", len(a.Sums), np)
	need("P", len(a.P), 2*n*a.NF)
	if a.Mode == 2 {
		need("src", len(a.Src), 2*n*a.NF)
		need("boxed", len(a.Boxed), n)
	}
	if a.SelfTaps != nil {
		need("selfTaps", len(a.SelfTaps), a.Taps)
	}
	for i := range np {
		if a.PairD[i] < 0 || int(a.PairD[i]) >= n || a.PairS[i] < a.PairD[i] || int(a.PairS[i]) >= n {
			panic(fmt.Sprintf("kernels: pair %d is (%d, %d) of %d positions", i, a.PairD[i], a.PairS[i], n))
		}
	}
	need("rowTiles", len(a.RowTiles), (n+a.B-1)/a.B+1)
	need("vals", len(a.Vals), int(a.RowTiles[(n+a.B-1)/a.B])*a.B*a.B*a.Taps)
}

// cbool is 1 for true, the kernels' flag convention.
func cbool(v bool) C.longlong {
	if v {
		return 1
	}
	return 0
}

// PairTapsArgs are the arguments of dr_pair_taps (pairs.cu): the tables,
// the fold tables, the FFT length and the folded bins.
type PairTapsArgs struct {
	PairTables
	Fold  []float64
	M, MP int
}

// MaxFold is dr_pair_taps' bound on the folded bins, MP/2+1.
const MaxFold = 160

// PairTaps runs dr_pair_taps in the emulator.
func PairTaps(g Grid, a *PairTapsArgs) {
	g.check()
	a.check()
	need("fold", len(a.Fold), 2*(4*a.NF+2*a.Taps*(a.MP/2+1)))
	if a.MP/2+1 > MaxFold || a.M%a.MP != 0 || a.NF != a.M/2+1 {
		panic(fmt.Sprintf("kernels: fold of M = %d onto %d bins (nf %d)", a.M, a.MP, a.NF))
	}
	C.emu_pair_taps(C.longlong(g.Blocks), C.longlong(g.Threads), fptr(a.Vals), dptr(a.Sums), iptr(a.PairD), iptr(a.PairS),
		dptr(a.P), dptr(a.Src), iptr(a.Boxed), iptr(a.DownPos), lptr(a.RowTiles), dptr(a.Fold), dptr(a.SelfTaps),
		C.longlong(len(a.PairD)), C.longlong(a.NF), C.longlong(a.M), C.longlong(a.MP), C.longlong(a.Taps), C.longlong(a.B),
		C.longlong(a.Mode), cbool(a.Normalize))
}

// PairTapsFineArgs are the arguments of dr_pair_taps_fine (pairs.cu): the
// tables, Trig (cos, sin of 2πj/M) in place of the fold tables, and the
// coarsening: sub-steps, delay, last value instead of the mean.
type PairTapsFineArgs struct {
	PairTables
	Trig   []float64
	M, F   int
	Shift  int
	Sample bool
}

// PairTapsFine runs dr_pair_taps_fine in the emulator, with the scratch the
// grid needs.
func PairTapsFine(g Grid, a *PairTapsFineArgs) {
	g.check()
	a.check()
	need("trig", len(a.Trig), 2*a.M)
	if a.NF != a.M/2+1 || a.Taps*a.F > a.M {
		panic(fmt.Sprintf("kernels: M = %d, nf %d, W = %d", a.M, a.NF, a.Taps*a.F))
	}
	scratch := make([]float64, g.Blocks*g.Threads*(2*a.NF+a.Taps*a.F+a.Taps))
	C.emu_pair_taps_fine(C.longlong(g.Blocks), C.longlong(g.Threads), fptr(a.Vals), dptr(a.Sums), iptr(a.PairD), iptr(a.PairS),
		dptr(a.P), dptr(a.Src), iptr(a.Boxed), iptr(a.DownPos), lptr(a.RowTiles), dptr(a.Trig), dptr(a.SelfTaps), dptr(scratch),
		C.longlong(len(a.PairD)), C.longlong(a.NF), C.longlong(a.M), C.longlong(a.F), C.longlong(a.Taps), C.longlong(a.B),
		C.longlong(a.Mode), cbool(a.Normalize), C.longlong(a.Shift), cbool(a.Sample))
}

// kernelArgs is the argument count of every kernel LaunchNamed knows.
var kernelArgs = map[string]int{
	"dr_bsconv": 12, "dr_bsconv_adj": 11, "dr_transfer_add": 16, "dr_interp": 9, "dr_interp_window": 11,
	"dr_prefix_jump": 6, "dr_pair_enum": 5, "dr_pair_taps": 19, "dr_pair_taps_fine": 22, "dr_tapgrad": 13,
}

// HasKernel reports whether LaunchNamed can run kernel name.
func HasKernel(name string) bool { _, ok := kernelArgs[name]; return ok }

// LaunchNamed runs kernel name on a blocks × threads grid with its
// arguments as 8-byte values, device pointers being addresses of host
// memory: how the emulated CUDA driver (package gpu/internal/cu, tag
// cudaemu) launches.
func LaunchNamed(name string, blocks, threads int, args []uint64) error {
	Grid{blocks, threads}.check()
	if want, ok := kernelArgs[name]; !ok || want != len(args) {
		return fmt.Errorf("kernels: no kernel %s taking %d arguments", name, len(args))
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var a *C.ulonglong
	if len(args) > 0 {
		a = (*C.ulonglong)(unsafe.Pointer(&args[0]))
	}
	if C.emu_launch_named(cname, C.longlong(blocks), C.longlong(threads), a, C.int(len(args))) != 0 {
		return fmt.Errorf("kernels: the emulator does not know kernel %s with %d arguments", name, len(args))
	}
	return nil
}

// Math evaluates dr_math.h's dr_exp and dr_sincos at x.
func Math(x []float64) (ex, sn, cs []float64) {
	n := len(x)
	ex, sn, cs = make([]float64, n), make([]float64, n), make([]float64, n)
	C.emu_math(dptr(x), dptr(ex), dptr(sn), dptr(cs), C.longlong(n))
	return ex, sn, cs
}
