package pipeline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

const demoBasin = "../testdata/demo_basin"

// worstRel is the largest relative difference between member m of ens and
// member 0 of one, value by value.
func worstRel(ens *diffroute.DataTensor, m int, one *diffroute.DataTensor) float64 {
	if ens.N != one.N || ens.T != one.T || m >= ens.B {
		return math.Inf(1)
	}
	worst := 0.0
	for i := 0; i < one.N; i++ {
		a, b := ens.Series(m, i), one.Series(0, i)
		for k := range a {
			worst = max(worst, math.Abs(float64(a[k]-b[k]))/max(1e-30, math.Abs(float64(b[k]))))
		}
	}
	return worst
}

// singleRuns routes each member file of dir alone.
func singleRuns(t *testing.T, cfg Config, dir string, members int) []*diffroute.DataTensor {
	t.Helper()
	var qs []*diffroute.DataTensor
	for m := 0; m < members; m++ {
		c := cfg
		c.Runoff, c.Out = filepath.Join(dir, fmt.Sprintf("member_%02d.nc", m)), ""
		one, err := Run(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, one.Discharge)
	}
	return qs
}

// checkMembers compares every member of the ensemble file (or tensor) with
// its single run.
func checkMembers(t *testing.T, name string, ens *diffroute.DataTensor, singles []*diffroute.DataTensor, tol float64) {
	t.Helper()
	if ens.B != len(singles) {
		t.Fatalf("%s: %d members, want %d", name, ens.B, len(singles))
	}
	for m, one := range singles {
		if d := worstRel(ens, m, one); d > tol {
			t.Errorf("%s: member %d differs from its single run by %.3g", name, m, d)
		}
	}
}

func readEnsemble(t *testing.T, path string) *diffroute.DataTensor {
	t.Helper()
	q, err := data.ReadRunoffNC(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// An ensemble given as a file pattern is routed in one run: each member
// equals its own single run, whether written to a file (member by member),
// kept in memory, streamed in time chunks or staged.
func TestEnsembleEqualsSingleRuns(t *testing.T) {
	dir := t.TempDir()
	const members = 8
	writeMembers(t, dir, members)
	cfg := Config{RAPID: demoBasin, SubStep: time.Hour}
	ctx := context.Background()
	singles := singleRuns(t, cfg, dir, members)
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"file", func(c *Config) { c.Out = filepath.Join(dir, "ens.nc") }},
		{"memory", func(c *Config) {}},
		{"time-chunked", func(c *Config) { c.TimeChunk, c.Out = 100, filepath.Join(dir, "chunked.nc4") }},
		{"staged", func(c *Config) { c.MaxNodes, c.Out = 600, filepath.Join(dir, "staged.nc") }},
	} {
		c := cfg
		c.Runoff = filepath.Join(dir, "member_*.nc")
		tc.mod(&c)
		res, err := Run(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ens := res.Discharge
		if tc.name == "file" && ens != nil {
			t.Errorf("%s: an ensemble written member by member is also kept in memory", tc.name)
		}
		if c.Out != "" {
			ens = readEnsemble(t, c.Out)
		}
		checkMembers(t, tc.name, ens, singles, 1e-6)
	}
	// Parquet and CSV have no member dimension: refused before routing.
	c := cfg
	c.Runoff, c.Out = filepath.Join(dir, "member_*.nc"), filepath.Join(dir, "ens.parquet")
	if _, err := Run(ctx, c); err == nil || !strings.Contains(err.Error(), "Qout(member, time, rivid)") {
		t.Errorf("an ensemble written as Parquet: %v", err)
	}
}

// runoff(member, time, rivid) in one file, classic or netCDF-4, routes as
// the same ensemble as one file per member.
func TestEnsembleMemberDimension(t *testing.T) {
	dir := t.TempDir()
	const members = 3
	writeMembers(t, dir, members)
	cfg := Config{RAPID: demoBasin, SubStep: 3 * time.Hour}
	singles := singleRuns(t, cfg, dir, members)
	var xs []*diffroute.DataTensor
	for m := 0; m < members; m++ {
		x, err := data.ReadRunoffNC(filepath.Join(dir, fmt.Sprintf("member_%02d.nc", m)), nil)
		if err != nil {
			t.Fatal(err)
		}
		xs = append(xs, x)
	}
	x, err := diffroute.StackBatch(xs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"runoff_ens.nc", "runoff_ens.nc4"} {
		in := filepath.Join(dir, name)
		w, err := data.NewEnsembleWriter(in, members, x.IDs, x.Times, x.Step, &data.QoutOptions{Var: "runoff", Units: x.Units, NetCDF4: strings.HasSuffix(name, "4")})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(x, 0); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for _, chunk := range []int{0, 50} {
			c := cfg
			c.Runoff, c.Out, c.TimeChunk = in, filepath.Join(dir, fmt.Sprintf("q_%d_%s", chunk, name)), chunk
			if _, err := Run(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			tol := 0.0 // the same router, member by member
			if chunk > 0 {
				tol = 1e-6 // staged: float32 rounding of the transfers
			}
			checkMembers(t, c.Out, readEnsemble(t, c.Out), singles, tol)
		}
	}
}

// An ensemble's restart: days 1–180 with --state-out (a state with a
// member dimension), then 181–365 from it, equal the uninterrupted run,
// plain and time-chunked; a state of another member count is refused.
func TestEnsembleRestart(t *testing.T) {
	dir := t.TempDir()
	const members = 3
	writeMembers(t, dir, members)
	ctx := context.Background()
	whole, err := Run(ctx, Config{RAPID: demoBasin, SubStep: 3 * time.Hour, Runoff: filepath.Join(dir, "member_*.nc")})
	if err != nil {
		t.Fatal(err)
	}
	// Each half as its own member files.
	for m := 0; m < members; m++ {
		x, err := data.ReadRunoffNC(filepath.Join(dir, fmt.Sprintf("member_%02d.nc", m)), nil)
		if err != nil {
			t.Fatal(err)
		}
		for h, part := range []*diffroute.DataTensor{x.SliceTime(0, 180), x.SliceTime(180, x.T)} {
			if err := data.WriteQoutNC(filepath.Join(dir, fmt.Sprintf("half%d_%02d.nc", h, m)), part, &data.QoutOptions{Var: "runoff", Units: x.Units}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, chunk := range []int{0, 40} {
		state := filepath.Join(dir, fmt.Sprintf("state%d.nc", chunk))
		c := Config{RAPID: demoBasin, SubStep: 3 * time.Hour, TimeChunk: chunk, Runoff: filepath.Join(dir, "half0_*.nc"),
			Out: filepath.Join(dir, fmt.Sprintf("a%d.nc", chunk)), StateOut: state}
		if _, err := Run(ctx, c); err != nil {
			t.Fatal(err)
		}
		c.Runoff, c.Out, c.StateOut, c.StateIn = filepath.Join(dir, "half1_*.nc"), filepath.Join(dir, fmt.Sprintf("b%d.nc", chunk)), "", state
		if _, err := Run(ctx, c); err != nil {
			t.Fatal(err)
		}
		a, b := readEnsemble(t, filepath.Join(dir, fmt.Sprintf("a%d.nc", chunk))), readEnsemble(t, c.Out)
		for m := 0; m < members; m++ {
			joined, err := diffroute.ConcatTime(a.Member(m), b.Member(m))
			if err != nil {
				t.Fatal(err)
			}
			if d := worstRel(whole.Discharge, m, joined); d > 1e-6 {
				t.Errorf("chunk %d: member %d resumed differs from the whole run by %.3g", chunk, m, d)
			}
		}
		one := c
		one.Runoff = filepath.Join(dir, "half1_00.nc")
		if _, err := Run(ctx, one); err == nil || !strings.Contains(err.Error(), "3 members") {
			t.Errorf("a 3-member state continued a single run: %v", err)
		}
	}
	c := Config{RAPID: demoBasin, Runoff: filepath.Join(dir, "member_*.nc"), Qfinal: filepath.Join(dir, "qfinal.csv")}
	if _, err := Run(ctx, c); err == nil || !strings.Contains(err.Error(), "--qfinal") {
		t.Errorf("--qfinal with an ensemble: %v", err)
	}
}

// --qfinal with the kernel method is refused before anything is routed or
// written, in one line that says how to continue a kernel run instead.
func TestQfinalKernelRefusedBeforeRouting(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "q.nc")
	c := Config{RAPID: demoBasin, Runoff: filepath.Join(demoBasin, "runoff.nc"), Out: out, Qfinal: filepath.Join(dir, "qfinal.csv"),
		Options: diffroute.Options{Method: diffroute.Kernel}}
	res, err := Run(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "--qfinal needs the recursive method") || !strings.Contains(err.Error(), "--state-out") || strings.Contains(err.Error(), "\n") || res != nil {
		t.Fatalf("--qfinal with the kernel method: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s written (or unknown) before the refusal: %v", out, err)
	}
	// The recursive method writes it.
	c.Options.Method = diffroute.Recursive
	if _, err := Run(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Qfinal); err != nil {
		t.Error(err)
	}
}
