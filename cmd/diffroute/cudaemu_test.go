//go:build cudaemu

package main

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/diffroute-go/route/data"
)

// cudaEmulated: built with the emulated CUDA device (package
// gpu/internal/cu, tag cudaemu), so `--device cuda` runs the CUDA backend's
// host code with the kernels emulated on the CPU.
const cudaEmulated = true

// TestDeviceCUDAEmulated routes rapid_xx9 through `--device cuda` — plain,
// staged, streamed, and with a kernel built on the device (Hayami) — and
// compares each run with the same command on the CPU.
func TestDeviceCUDAEmulated(t *testing.T) {
	xx9 := "../../testdata/rapid_xx9"
	csv := filepath.Join(xx9, "m3_riv.csv")
	base := []string{"route", "--rapid", xx9, "--runoff", csv, "--runoff-units", "m3", "--step", "10800", "--substep", "900", "--method", "kernel", "--max-delay", "16"}
	for _, c := range []struct {
		name  string
		extra []string
	}{
		{"plain", nil},
		{"staged", []string{"--max-nodes", "4"}},
		{"streamed", []string{"--time-chunk", "5", "--max-nodes", "4"}},
		{"hayami built on the device", []string{"--irf", "hayami", "--param", "L=1", "--param", "D=0.2", "--param", "c=2"}},
		{"diffroute compatibility", []string{"--compat", "diffroute"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var q [2][]float32
			for k, dev := range []string{"cpu", "cuda"} {
				out := filepath.Join(dir, dev+".nc")
				args := append(append(append([]string{}, base...), c.extra...), "--device", dev, "--out", out)
				s, err := runCLI(t, args...)
				if err != nil {
					t.Fatal(err)
				}
				if dev == "cuda" && !strings.Contains(s, "emulated device") {
					t.Errorf("no device timing in the report:\\n%s", s)
				}
				if c.name == "hayami built on the device" && dev == "cuda" && !strings.Contains(s, "kernel built on the device") {
					t.Errorf("the Hayami kernel was not built on the device:\\n%s", s)
				}
				x, err := data.ReadRunoffNC(out, nil)
				if err != nil {
					t.Fatal(err)
				}
				q[k] = x.Data
			}
			peak, worst := 0.0, 0.0
			for i := range q[0] {
				peak = max(peak, math.Abs(float64(q[0][i])))
				worst = max(worst, math.Abs(float64(q[0][i]-q[1][i])))
			}
			t.Logf("cuda (emulated) vs cpu: %.2g of peak", worst/peak)
			if !(worst <= 1e-5*peak) {
				t.Errorf("cuda (emulated) differs from cpu by %.3g of peak", worst/peak)
			}
		})
	}
}

// TestGradDeviceCUDAEmulated: `diffroute grad --device cuda --method
// kernel` (∂L/∂runoff and the per-tap correlations on the emulated device,
// the rest of the parameter gradients on the CPU) writes the same
// gradients as `--device cpu`, on a generated basin: unstaged, and staged
// (each cluster's forward and transposed convolution and tap correlations
// on the device, the transfers' adjoints on the CPU) with Muskingum, Hayami
// and --compat diffroute.
func TestGradDeviceCUDAEmulated(t *testing.T) {
	gen := t.TempDir()
	if _, err := runCLI(t, "generate", "--out", gen, "--reaches", "150", "--days", "10", "--gauges", "3", "--obs-noise", "0.1"); err != nil {
		t.Fatal(err)
	}
	// observed at every reach, so that every cluster's transfers carry adjoints
	obs := filepath.Join(t.TempDir(), "obs.csv")
	q := filepath.Join(t.TempDir(), "q.csv")
	if _, err := runCLI(t, "route", "--rapid", gen, "--runoff", filepath.Join(gen, "runoff.nc"), "--substep", "3600", "--quiet", "--out", q); err != nil {
		t.Fatal(err)
	}
	scaleCSV(t, q, obs, 1.3, -1)
	for _, c := range []struct {
		name  string
		extra []string
	}{
		{"plain", []string{"--observed", filepath.Join(gen, "observed.csv")}},
		{"staged", []string{"--observed", obs, "--max-paths", "60"}},
		{"staged hayami", []string{"--observed", obs, "--max-paths", "60", "--irf", "hayami", "--param", "L=1", "--param", "D=0.2", "--param", "c=2"}},
		{"staged diffroute compatibility", []string{"--observed", obs, "--max-paths", "60", "--compat", "diffroute"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var params [2][]string
			var dx [2][]float32
			for k, dev := range []string{"cpu", "cuda"} {
				out, rg := filepath.Join(dir, dev+".csv"), filepath.Join(dir, dev+".nc")
				args := append([]string{"grad", "--rapid", gen, "--runoff", filepath.Join(gen, "runoff.nc"),
					"--substep", "3600", "--method", "kernel", "--max-delay", "24", "--loss", "sse", "--device", dev, "--out", out, "--runoff-grad", rg}, c.extra...)
				s, err := runCLI(t, args...)
				if err != nil {
					t.Fatal(err)
				}
				if staged := strings.Contains(s, "Clusters: "); staged != (c.name != "plain") {
					t.Fatalf("staged %v:\n%s", staged, s)
				}
				params[k] = readLinesOf(t, out)
				x, err := data.ReadRunoffNC(rg, &data.NCOptions{Var: "dL_drunoff"})
				if err != nil {
					t.Fatal(err)
				}
				dx[k] = x.Data
			}
			peak, worst := 0.0, 0.0
			for i := range dx[0] {
				peak = max(peak, math.Abs(float64(dx[0][i])))
				worst = max(worst, math.Abs(float64(dx[0][i]-dx[1][i])))
			}
			ppeak, pworst := 0.0, 0.0
			if len(params[0]) != len(params[1]) || params[0][0] != params[1][0] {
				t.Fatalf("parameter gradient files differ in shape: %q vs %q", params[0][0], params[1][0])
			}
			for i := 1; i < len(params[0]); i++ {
				a, b := strings.Split(params[0][i], ","), strings.Split(params[1][i], ",")
				if a[0] != b[0] {
					t.Fatalf("line %d: reach %s vs %s", i, a[0], b[0])
				}
				for j := 1; j < len(a); j++ {
					va, _ := strconv.ParseFloat(a[j], 64)
					vb, _ := strconv.ParseFloat(b[j], 64)
					ppeak, pworst = max(ppeak, math.Abs(va)), max(pworst, math.Abs(va-vb))
				}
			}
			t.Logf("grad --device cuda (emulated) vs cpu: dL/drunoff %.2g of peak, parameter gradients %.2g of the largest (%d reaches)", worst/peak, pworst/ppeak, len(params[0])-1)
			if !(peak > 0 && worst <= 1e-5*peak) || !(ppeak > 0 && pworst <= 1e-5*ppeak) {
				t.Errorf("grad --device cuda vs cpu: dL/drunoff %.3g of peak, parameters %.3g of the largest", worst/peak, pworst/ppeak)
			}
		})
	}
}

// TestRestartCUDAEmulated: an unstaged `--device cuda` run restarts exactly
// (its kernel method keeps a runoff history on the host): days 1–180 with
// --state-out then 181–365 with --state-in equal the whole run, and the
// state continues on the CPU alike.
func TestRestartCUDAEmulated(t *testing.T) {
	dir := t.TempDir()
	runoff := filepath.Join(demoBasin, "runoff.nc")
	x, err := data.ReadRunoffNC(runoff, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, second := filepath.Join(dir, "first.nc"), filepath.Join(dir, "second.nc")
	writeRunoffPart(t, x, 0, 180, first)
	writeRunoffPart(t, x, 180, 365, second)
	base := []string{"route", "--quiet", "--rapid", demoBasin, "--method", "kernel", "--max-delay", "40", "--substep", "43200"}
	whole, a, b, cpu, st := filepath.Join(dir, "whole.nc"), filepath.Join(dir, "a.nc"), filepath.Join(dir, "b.nc"), filepath.Join(dir, "cpu.nc"), filepath.Join(dir, "state.nc")
	for _, args := range [][]string{
		{"--device", "cuda", "--runoff", runoff, "--out", whole},
		{"--device", "cuda", "--runoff", first, "--out", a, "--state-out", st, "--state-every", "60"},
		{"--device", "cuda", "--runoff", second, "--out", b, "--state-in", st},
		{"--device", "cpu", "--runoff", second, "--out", cpu, "--state-in", st},
	} {
		if _, err := runCLI(t, append(append([]string{}, base...), args...)...); err != nil {
			t.Fatal(err)
		}
	}
	want := readQ(t, whole)
	if d := maxRelDiff(t, readQ(t, a), want.SliceTime(0, 180)); d > 1e-6 {
		t.Errorf("days 1-180 differ from the whole run by %.3g", d)
	}
	if d := maxRelDiff(t, readQ(t, b), want.SliceTime(180, 365)); d > 1e-6 {
		t.Errorf("days 181-365 after a restart differ from the whole run by %.3g", d)
	}
	// On the CPU: the same state, the device's float32 rounding apart (as
	// TestDeviceCUDAEmulated allows).
	if d := maxRelDiff(t, readQ(t, cpu), want.SliceTime(180, 365)); d > 1e-4 {
		t.Errorf("days 181-365 continued on the CPU differ from the device's whole run by %.3g", d)
	}
}
