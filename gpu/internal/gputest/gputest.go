// Package gputest holds what the GPU tests (emulated and on a device) share:
// random kernel-method cases on synthetic networks, the rapid_xx9 basin, and
// the error measures.
package gputest

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diffroute-go/route/diffroute"
)

// Case is a kernel-method routing problem.
type Case struct {
	Name   string
	Net    *diffroute.Network
	Opts   diffroute.Options
	Runoff *diffroute.DataTensor
}

// RandomParams draws IRF parameters (in runoff steps) for n reaches.
func RandomParams(rng *rand.Rand, irf string, n int) diffroute.Params {
	u := func(lo, hi float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = lo + (hi-lo)*rng.Float64()
		}
		return v
	}
	switch irf {
	case "muskingum":
		return diffroute.Params{"k": u(0.05, 0.6), "x": u(0, 0.45)}
	case "linear_storage":
		return diffroute.Params{"tau": u(0.05, 0.5)}
	case "pure_lag":
		return diffroute.Params{"delay": u(0, 1.5)}
	case "hayami":
		return diffroute.Params{"L": u(0.5, 1.5), "D": u(0.05, 0.3), "c": u(1, 3)}
	case "nash_cascade": // fractional n: no recursive form
		return diffroute.Params{"tau": u(0.03, 0.2), "n": u(1.5, 3.5)}
	case "nash_gamma": // the continuous cascade: a convolution IRF
		return diffroute.Params{"tau": u(0.03, 0.2), "n": u(0.7, 3.5)}
	}
	panic("gputest: no random parameters for IRF " + irf)
}

// RandomCases returns kernel-method cases on synthetic networks of about n
// reaches: several IRFs, block sizes, sub-steps, tap counts and the
// DiffRoute compatibility mode.
func RandomCases(n, batch, steps int, seed uint64) []Case {
	type cfg struct {
		irf             string
		f, taps, bsz    int
		compat, exclude bool
	}
	cfgs := []cfg{
		{"muskingum", 1, 8, 16, false, false},
		{"muskingum", 4, 13, 5, false, false},
		{"linear_storage", 3, 10, 16, false, true},
		{"pure_lag", 2, 9, 7, false, false},
		{"muskingum", 6, 12, 16, true, false},
	}
	var cs []Case
	for j, c := range cfgs {
		s := seed + uint64(j)
		rng := rand.New(rand.NewPCG(s, 11))
		net := diffroute.SyntheticNetwork(n+j*7, s)
		o := diffroute.Options{IRF: c.irf, Params: RandomParams(rng, c.irf, net.Len()), SubSteps: c.f,
			Method: diffroute.Kernel, MaxDelay: c.taps, BlockSize: c.bsz, ExcludeSelf: c.exclude}
		if c.compat {
			o.Compat = diffroute.CompatDiffRoute
		}
		cs = append(cs, Case{
			Name: fmt.Sprintf("%s/n%d/f%d/taps%d/B%d/compat=%v/exclude=%v", c.irf, net.Len(), c.f, c.taps, c.bsz, c.compat, c.exclude),
			Net:  net, Opts: o, Runoff: diffroute.SyntheticRunoff(net, batch, steps, s+100),
		})
	}
	return cs
}

// SpectralCases returns kernel-method cases whose kernels are built from
// spectra (no recursive form, or DiffRoute compatibility): Hayami, pure lag
// and fractional Nash cascades under every source rule (own IRF, lateral
// step response under rapid, ExcludeSelf), averaging and
// sampling variants, Normalize, odd sub-steps and FFT paddings, and ReLU
// (DiffRoute compatibility, where Muskingum too is built from spectra).
func SpectralCases(n, batch, steps int, seed uint64) []Case {
	type cfg struct {
		irf     string
		f, taps int
		o       diffroute.Options
	}
	cfgs := []cfg{
		{"hayami", 4, 12, diffroute.Options{}},
		{"hayami", 3, 16, diffroute.Options{Average: diffroute.AverageEnd, Sampling: diffroute.SampleLast, Normalize: true}},
		{"hayami", 5, 8, diffroute.Options{ExcludeSelf: true, Lateral: diffroute.LateralLTI}},
		{"pure_lag", 2, 9, diffroute.Options{ExcludeSelf: true, FFTPad: 3}},
		{"nash_cascade", 6, 10, diffroute.Options{Lateral: diffroute.LateralLTI, FFTPad: 1}},
		{"hayami", 4, 10, diffroute.Options{Lateral: diffroute.LateralRAPID, ExcludeSelf: true, Normalize: true}},
		// Integer n has a recursive form: under rapid those sources enter
		// as lateral step responses (boxed), the others as their IRF.
		{"nash_mixed", 3, 10, diffroute.Options{Lateral: diffroute.LateralRAPID}},
		{"nash_mixed", 4, 9, diffroute.Options{Lateral: diffroute.LateralRAPID, Average: diffroute.AverageEnd, Sampling: diffroute.SampleLast}},
		// DiffRoute compatibility: ReLU on the fine kernel, renormalised.
		{"hayami", 4, 12, diffroute.Options{Compat: diffroute.CompatDiffRoute}},
		{"muskingum", 3, 10, diffroute.Options{Compat: diffroute.CompatDiffRoute, ExcludeSelf: true}},
		{"hayami", 2, 8, diffroute.Options{Compat: diffroute.CompatDiffRoute, Sampling: diffroute.SampleLast}},
		{"nash_mixed", 3, 8, diffroute.Options{ReLU: true, Lateral: diffroute.LateralRAPID, Average: diffroute.AverageStart}},
		{"nash_gamma", 3, 10, diffroute.Options{Compat: diffroute.CompatDiffRoute}},
	}
	var cs []Case
	for j, c := range cfgs {
		s := seed + uint64(j)
		rng := rand.New(rand.NewPCG(s, 13))
		net := diffroute.SyntheticNetwork(n+j*5, s)
		o := c.o
		irf := c.irf
		if irf == "nash_mixed" {
			irf = "nash_cascade"
		}
		o.IRF, o.Params, o.SubSteps, o.MaxDelay, o.Method = irf, RandomParams(rng, irf, net.Len()), c.f, c.taps, diffroute.Kernel
		if c.irf == "nash_mixed" {
			for i := range o.Params["n"] {
				if i%2 == 0 {
					o.Params["n"][i] = float64(2 + i%4/2)
				}
			}
		}
		o.BlockSize = []int{16, 5, 8}[j%3]
		cs = append(cs, Case{
			Name: fmt.Sprintf("%s/n%d/f%d/taps%d/%s/%s/compat=%q/exclude=%v/normalize=%v/pad%d/lateral=%s",
				c.irf, net.Len(), c.f, c.taps, o.Average, o.Sampling, o.Compat, o.ExcludeSelf, o.Normalize, o.FFTPad, o.Lateral),
			Net: net, Opts: o, Runoff: diffroute.SyntheticRunoff(net, batch, steps, s+200),
		})
	}
	return cs
}

// XX9Dir finds the bundled rapid_xx9 basin: $DIFFROUTE_XX9, or testdata/
// seen from the repository root or a package directory.
func XX9Dir() (string, error) {
	if d := os.Getenv("DIFFROUTE_XX9"); d != "" {
		return d, nil
	}
	for _, d := range []string{"testdata/rapid_xx9", "../testdata/rapid_xx9", "../../testdata/rapid_xx9", "../../../testdata/rapid_xx9", "/work/shared/data/rapid_xx9"} {
		if _, err := os.Stat(filepath.Join(d, "rapid_connect.csv")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("gputest: rapid_xx9 not found")
}

func readRows(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			rows = append(rows, strings.Split(line, ","))
		}
	}
	return rows, sc.Err()
}

func num(s string) float64 {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		panic(fmt.Sprintf("gputest: bad number %q", s))
	}
	return v
}

// XX9 reads the rapid_xx9 basin: network, RAPID's conventions (12 sub-steps
// of 900 s per 3-hour step, Muskingum k in steps), runoff in m³/s and RAPID's
// own Qout by reach id.
func XX9(dir string) (Case, map[int64][]float64, error) {
	const delta = 10800.0
	conn, err := readRows(filepath.Join(dir, "rapid_connect.csv"))
	if err != nil {
		return Case{}, nil, err
	}
	kk, err := readRows(filepath.Join(dir, "k.csv"))
	if err != nil {
		return Case{}, nil, err
	}
	xx, err := readRows(filepath.Join(dir, "x.csv"))
	if err != nil {
		return Case{}, nil, err
	}
	ids := make([]int64, len(conn))
	downs := make([]int64, len(conn))
	p := diffroute.Params{"k": make([]float64, len(conn)), "x": make([]float64, len(conn))}
	for i, row := range conn {
		ids[i], downs[i] = int64(num(row[0])), int64(num(row[1]))
		p["k"][i] = num(kk[i][0]) / delta
		p["x"][i] = num(xx[i][0])
	}
	net, err := diffroute.NewNetwork(ids, downs)
	if err != nil {
		return Case{}, nil, err
	}
	table := func(name string, scale float64) ([]int64, [][]float32, error) {
		rows, err := readRows(filepath.Join(dir, name))
		if err != nil {
			return nil, nil, err
		}
		var rids []int64
		for _, s := range rows[0][1:] {
			rids = append(rids, int64(num(s)))
		}
		var vals [][]float32
		for _, row := range rows[1:] {
			r := make([]float32, 0, len(row)-1)
			for _, s := range row[1:] {
				r = append(r, float32(num(s)*scale))
			}
			vals = append(vals, r)
		}
		return rids, vals, nil
	}
	rids, m3, err := table("m3_riv.csv", 1/delta)
	if err != nil {
		return Case{}, nil, err
	}
	x, err := diffroute.FromTimeMajor(rids, m3)
	if err != nil {
		return Case{}, nil, err
	}
	qids, qrows, err := table("qout_rapid.csv", 1)
	if err != nil {
		return Case{}, nil, err
	}
	qout := map[int64][]float64{}
	for j, id := range qids {
		for _, r := range qrows {
			qout[id] = append(qout[id], float64(r[j]))
		}
	}
	o := diffroute.Options{Params: p, SubSteps: 12, Method: diffroute.Kernel, MaxDelay: 32}
	return Case{Name: "rapid_xx9", Net: net, Opts: o, Runoff: x}, qout, nil
}

// KernelRouter builds the CPU kernel method for a case.
func (c Case) KernelRouter(ctx context.Context) (*diffroute.KernelRouter, error) {
	return diffroute.NewKernelRouter(ctx, c.Net, c.Opts)
}

// RelErr compares two tensors with the same reach ids and dims: the largest
// difference relative to the peak magnitude of its own series (batch member
// and reach), and the largest elementwise relative difference where the
// reference is at least 1e-3 of that peak.
func RelErr(got, want *diffroute.DataTensor) (peakRel, elemRel float64, err error) {
	if got.B != want.B || got.N != want.N || got.T != want.T {
		return 0, 0, fmt.Errorf("gputest: dims (%d,%d,%d) vs (%d,%d,%d)", got.B, got.N, got.T, want.B, want.N, want.T)
	}
	for i := range got.IDs {
		if got.IDs[i] != want.IDs[i] {
			return 0, 0, fmt.Errorf("gputest: row %d is reach %d, want %d", i, got.IDs[i], want.IDs[i])
		}
	}
	for b := 0; b < got.B; b++ {
		for i := 0; i < got.N; i++ {
			g, w := got.Series(b, i), want.Series(b, i)
			peak := 1e-30
			for _, v := range w {
				peak = max(peak, math.Abs(float64(v)))
			}
			for t := range w {
				d := math.Abs(float64(g[t]) - float64(w[t]))
				if math.IsNaN(d) {
					return math.Inf(1), math.Inf(1), nil
				}
				peakRel = max(peakRel, d/peak)
				if a := math.Abs(float64(w[t])); a >= 1e-3*peak {
					elemRel = max(elemRel, d/a)
				}
			}
		}
	}
	return peakRel, elemRel, nil
}

// NewRand returns a seeded generator for RandomParams.
func NewRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }
