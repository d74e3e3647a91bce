package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/diffroute-go/route/data"
)

// readGradCSV reads diffroute grad's rivid,dL_d<name>,… file: per column,
// the values by reach id.
func readGradCSV(t *testing.T, path string) map[string]map[string]float64 {
	t.Helper()
	rows := readLinesOf(t, path)
	head := strings.Split(rows[0], ",")
	cols := map[string]map[string]float64{}
	for _, name := range head[1:] {
		cols[name] = map[string]float64{}
	}
	for _, r := range rows[1:] {
		f := strings.Split(r, ",")
		for j, name := range head[1:] {
			v, err := strconv.ParseFloat(f[j+1], 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, r, err)
			}
			cols[name][f[0]] = v
		}
	}
	return cols
}

// gradCSVDiff is the largest difference between two gradient files, per
// column, relative to the column's largest magnitude.
func gradCSVDiff(got, want map[string]map[string]float64) float64 {
	worst := 0.0
	if len(got) != len(want) {
		return math.Inf(1)
	}
	for name, w := range want {
		g := got[name]
		if len(g) != len(w) {
			return math.Inf(1)
		}
		peak := 1e-300
		for _, v := range w {
			peak = max(peak, math.Abs(v))
		}
		for id, v := range w {
			gv, ok := g[id]
			if !ok {
				return math.Inf(1)
			}
			worst = max(worst, math.Abs(gv-v)/peak)
		}
	}
	return worst
}

// diffroute grad --max-nodes (and --max-paths) routes the gradient cluster
// by cluster and writes the same files as the unstaged gradient.
func TestGradCLIStagedEqualsPlain(t *testing.T) {
	runoff := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	qinit := filepath.Join(xx9, "qinit_erai_t511_3hr_20030121to20030122.csv")
	gen := t.TempDir()
	if _, err := runCLI(t, "generate", "--out", gen, "--reaches", "300", "--days", "20", "--gauges", "4"); err != nil {
		t.Fatal(err)
	}
	// Observed at xx9's first three reaches: its routed discharge, scaled.
	obs := filepath.Join(t.TempDir(), "obs.csv")
	q := filepath.Join(t.TempDir(), "q.csv")
	if _, err := runCLI(t, "route", "--rapid", xx9, "--runoff", runoff, "--step", "10800", "--substep", "900", "--quiet", "--out", q); err != nil {
		t.Fatal(err)
	}
	scaleCSV(t, q, obs, 1.3, 3)
	for _, c := range []struct {
		name   string
		base   []string
		stages [][]string
	}{
		{"rapid_xx9", []string{"--rapid", xx9, "--runoff", runoff, "--step", "10800", "--substep", "900", "--qinit", qinit, "--observed", obs},
			[][]string{{"--max-paths", "4"}, {"--max-paths", "8", "--max-nodes", "3"}}},
		{"generated", []string{"--rapid", gen, "--runoff", filepath.Join(gen, "runoff.nc"), "--substep", "3600", "--observed", filepath.Join(gen, "observed.csv")},
			[][]string{{"--max-paths", "150"}, {"--max-paths", "300", "--max-nodes", "40", "--checkpoint-steps", "7"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := func(extra []string) (string, string, string) {
				dir := t.TempDir()
				g, dx, dq0 := filepath.Join(dir, "g.csv"), filepath.Join(dir, "dx.nc"), filepath.Join(dir, "dq0.csv")
				args := append([]string{"grad", "--loss", "sse", "--out", g, "--runoff-grad", dx, "--q0-grad", dq0}, c.base...)
				out, err := runCLI(t, append(args, extra...)...)
				if err != nil {
					t.Fatalf("%v: %v\n%s", extra, err, out)
				}
				// Staged runs say so, with several clusters and transfers.
				var nc, ntr int
				if i := strings.Index(out, "Clusters: "); i >= 0 {
					fmt.Sscanf(out[i:], "Clusters: %d clusters", &nc)
					if j := strings.Index(out[i:], " transfers"); j >= 0 {
						f := strings.Fields(out[i : i+j])
						ntr, _ = strconv.Atoi(f[len(f)-1])
					}
				}
				if (extra != nil) != (nc > 1 && ntr > 0) {
					t.Fatalf("%v: %d clusters, %d transfers:\n%s", extra, nc, ntr, out)
				}
				if extra != nil {
					t.Logf("%v: %d clusters, %d transfers", extra, nc, ntr)
				}
				return g, dx, dq0
			}
			pg, pdx, pq0 := run(nil)
			plain, plainQ0 := readGradCSV(t, pg), readGradCSV(t, pq0)
			nonzero := 0
			for _, v := range plain["dL_dk"] {
				if v != 0 {
					nonzero++
				}
			}
			if nonzero == 0 || len(plain["dL_dx"]) == 0 {
				t.Fatalf("no parameter gradients in %s", pg)
			}
			for _, st := range c.stages {
				sg, sdx, sq0 := run(st)
				staged := readGradCSV(t, sg)
				e1 := gradCSVDiff(staged, plain)
				e2 := maxRelDiff(t, readQ(t, sdx), readQ(t, pdx))
				e3 := gradCSVDiff(readGradCSV(t, sq0), plainQ0)
				t.Logf("%v: dL/dθ %.2g, dL/drunoff %.2g, dL/dq0 %.2g (relative)", st, e1, e2, e3)
				if e1 > 1e-6 || e2 > 1e-6 || e3 > 1e-6 {
					t.Errorf("%v: staged gradient differs from the plain one: dL/dθ %.2g, dL/drunoff %.2g, dL/dq0 %.2g", st, e1, e2, e3)
				}
				// A planted error in one reach's dL/dk is caught.
				for id, v := range staged["dL_dk"] {
					staged["dL_dk"][id] = v + 1e-5*math.Abs(v) + 1e-5
					break
				}
				if e := gradCSVDiff(staged, plain); e <= 1e-6 {
					t.Errorf("a planted error in dL/dk is not seen (difference %.2g)", e)
				}
			}
		})
	}
	// Without a CUDA build, the staged gradient on --device cuda is
	// refused in one line (TestGradDeviceCUDAEmulated runs it).
	if !cudaEmulated {
		out, err := runCLI(t, append([]string{"grad", "--out", filepath.Join(t.TempDir(), "g.csv"), "--max-nodes", "3", "--method", "kernel", "--device", "cuda"},
			"--rapid", xx9, "--runoff", runoff, "--observed", obs)...)
		if err == nil || !strings.Contains(err.Error(), "without CUDA support") || strings.Contains(err.Error(), "\n") {
			t.Errorf("--max-nodes with --device cuda: %v\n%s", err, out)
		}
	}
}

// diffroute grad --method kernel --max-paths differentiates the staged
// kernel run; where MaxDelay covers the series, staging does not change
// that run and the staged gradient files equal the unstaged ones (the
// staged kernel run against differences of route itself, and with
// --compat diffroute's coarse transfers, is checked in
// TestGradCLIMatchesRouteDifferences).
func TestGradCLIStagedKernelEqualsPlain(t *testing.T) {
	runoff := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	gen := t.TempDir()
	if _, err := runCLI(t, "generate", "--out", gen, "--reaches", "300", "--days", "20", "--gauges", "4"); err != nil {
		t.Fatal(err)
	}
	obs := filepath.Join(t.TempDir(), "obs.csv")
	q := filepath.Join(t.TempDir(), "q.csv")
	if _, err := runCLI(t, "route", "--rapid", xx9, "--runoff", runoff, "--step", "10800", "--substep", "900", "--quiet", "--out", q); err != nil {
		t.Fatal(err)
	}
	scaleCSV(t, q, obs, 1.3, 3)
	// the generated basin observed at every reach: transfers carry
	// adjoints from every cluster
	gobs := filepath.Join(t.TempDir(), "gobs.csv")
	if _, err := runCLI(t, "route", "--rapid", gen, "--runoff", filepath.Join(gen, "runoff.nc"), "--substep", "3600", "--quiet", "--out", q); err != nil {
		t.Fatal(err)
	}
	scaleCSV(t, q, gobs, 1.3, -1)
	for _, c := range []struct {
		name   string
		base   []string
		stages [][]string
	}{
		// 16 steps, max delay 20
		{"rapid_xx9", []string{"--rapid", xx9, "--runoff", runoff, "--step", "10800", "--substep", "900", "--max-delay", "20", "--observed", obs},
			[][]string{{"--max-paths", "4"}, {"--max-paths", "8", "--max-nodes", "3"}}},
		// a reach's own runoff unrouted: the transfers carry it as it is
		{"rapid_xx9_exclude_self", []string{"--rapid", xx9, "--runoff", runoff, "--step", "10800", "--substep", "900", "--max-delay", "20", "--observed", obs, "--exclude-self"},
			[][]string{{"--max-paths", "4"}}},
		// 20 days, max delay 24: a convolution IRF (FFT build) and Muskingum
		{"generated_hayami", []string{"--rapid", gen, "--runoff", filepath.Join(gen, "runoff.nc"), "--substep", "21600", "--max-delay", "24",
			"--irf", "hayami", "--param", "L=1", "--param", "D=0.2", "--param", "c=2", "--observed", gobs},
			[][]string{{"--max-paths", "300", "--max-nodes", "40"}}},
		{"generated", []string{"--rapid", gen, "--runoff", filepath.Join(gen, "runoff.nc"), "--substep", "3600", "--max-delay", "24", "--observed", gobs},
			[][]string{{"--max-paths", "150"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := func(extra []string) (string, string) {
				dir := t.TempDir()
				g, dx := filepath.Join(dir, "g.csv"), filepath.Join(dir, "dx.nc")
				args := append([]string{"grad", "--method", "kernel", "--loss", "sse", "--out", g, "--runoff-grad", dx}, c.base...)
				out, err := runCLI(t, append(args, extra...)...)
				if err != nil {
					t.Fatalf("%v: %v\n%s", extra, err, out)
				}
				if extra != nil && !strings.Contains(out, "Clusters: ") {
					t.Fatalf("%v: not staged:\n%s", extra, out)
				}
				return g, dx
			}
			pg, pdx := run(nil)
			plain := readGradCSV(t, pg)
			for name, col := range plain {
				nonzero := 0
				for _, v := range col {
					if v != 0 {
						nonzero++
					}
				}
				if nonzero == 0 {
					t.Fatalf("no %s in %s", name, pg)
				}
			}
			for _, st := range c.stages {
				sg, sdx := run(st)
				e1 := gradCSVDiff(readGradCSV(t, sg), plain)
				e2 := maxRelDiff(t, readQ(t, sdx), readQ(t, pdx))
				t.Logf("%v: dL/dθ %.2g, dL/drunoff %.2g (relative)", st, e1, e2)
				// The kernel runs are float32: staged and plain discharge
				// agree to about 1e-6 of the peak (generated: 9.9e-7), and
				// ∂L/∂y = 2(y − obs) carries that into both gradients.
				if e1 > 1e-5 || e2 > 1e-5 {
					t.Errorf("%v: staged kernel gradient differs from the plain one: dL/dθ %.2g, dL/drunoff %.2g", st, e1, e2)
				}
			}
		})
	}
}

// scaleCSV writes the first n reaches (all: n < 0) of a route --out CSV,
// times by scale, as an observed-discharge file.
func scaleCSV(t *testing.T, src, dst string, scale float64, n int) {
	t.Helper()
	q, err := data.ReadCSVTableFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if n < 0 || n > len(q.IDs) {
		n = len(q.IDs)
	}
	var sb strings.Builder
	sb.WriteString("time")
	for g := 0; g < n; g++ {
		fmt.Fprintf(&sb, ",%d", q.IDs[g])
	}
	sb.WriteByte('\n')
	for k, label := range q.Times {
		sb.WriteString(label)
		for g := 0; g < n; g++ {
			fmt.Fprintf(&sb, ",%g", float64(q.At(0, g, k))*scale)
		}
		sb.WriteByte('\n')
	}
	if err := os.WriteFile(dst, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Under a --mem-budget that no checkpoint block fits, the planner stages
// the gradient: its prediction covers the whole process's measured peak,
// the gradient equals the unstaged one, and a budget that fits neither way
// is refused in one line naming a budget that fits and the staging.
func TestGradCLIPlanStaged(t *testing.T) {
	gen, exe := planBasin(t, "runs child processes of a few hundred MB", "40000", "60", "5")
	// A convolution IRF: the unstaged gradient holds every reach's series in
	// float64 (about 235 MiB here), the staged one a cluster's.
	grad := func(out string, extra ...string) (string, float64, error) {
		args := append([]string{"grad", "--rapid", gen, "--runoff", filepath.Join(gen, "runoff.nc"), "--observed", filepath.Join(gen, "observed.csv"),
			"--irf", "nash_gamma", "--param", "tau=1.5", "--max-delay", "8", "--loss", "sse", "--out", out}, extra...)
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), "DIFFROUTE_TEST_AS_CLI=1")
		b, err := cmd.CombinedOutput()
		peak := 0.0
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peak = float64(ru.Maxrss) * 1024 // kB on Linux
		}
		return string(b), peak, err
	}
	plain := filepath.Join(t.TempDir(), "plain.csv")
	if out, _, err := grad(plain, "--quiet"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	staged := filepath.Join(t.TempDir(), "staged.csv")
	out, peak, err := grad(staged, "--mem-budget", "200MiB")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var predicted float64
	for _, line := range strings.Split(out, "\n") {
		if _, after, ok := strings.Cut(line, "predicted peak "); ok {
			var unit string
			if _, err := fmt.Sscanf(after, "%f %s", &predicted, &unit); err != nil || unit != "MiB" {
				t.Fatalf("plan line %q", line)
			}
			predicted *= 1 << 20
		}
	}
	if !strings.Contains(out, "staged over") || !strings.Contains(out, "whole process:") || predicted == 0 || peak == 0 {
		t.Fatalf("no staged whole-process plan:\n%s", out)
	}
	ratio := predicted / peak
	t.Logf("staged: predicted %.1f MiB, measured %.1f MiB (ratio %.2f)", predicted/(1<<20), peak/(1<<20), ratio)
	if ratio < 0.8 || ratio > 1.2 {
		t.Errorf("staged: predicted %.1f MiB, measured peak %.1f MiB (ratio %.2f)\n%s", predicted/(1<<20), peak/(1<<20), ratio, out)
	}
	if e := gradCSVDiff(readGradCSV(t, staged), readGradCSV(t, plain)); e > 1e-6 {
		t.Errorf("the planned staged gradient differs from the plain one by %.2g (relative)", e)
	}
	// Too small for any plan: one line, a budget and the staging to use.
	out, _, err = grad(filepath.Join(t.TempDir(), "g.csv"), "--mem-budget", "60MiB", "--quiet")
	msg := strings.TrimSpace(out)
	if err == nil || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "needs a budget of") || !strings.Contains(msg, "--max-paths") || strings.Contains(msg, "StagedGrad") {
		t.Errorf("gradient over budget: %v\n%s", err, out)
	} else {
		t.Logf("refused: %s", msg)
	}
}

// Under a --mem-budget that the kernel method's whole gradient does not
// fit, the planner stages it: the prediction covers the whole process's
// measured peak, and the run is the one --max-paths with the plan's
// max_paths gives; a budget nothing fits is refused in one line.
func TestGradCLIPlanStagedKernel(t *testing.T) {
	gen, exe := planBasin(t, "runs child processes of about 150 MB", "4000", "365", "5")
	grad := func(out string, extra ...string) (string, float64, error) {
		args := append([]string{"grad", "--rapid", gen, "--runoff", filepath.Join(gen, "runoff.nc"), "--observed", filepath.Join(gen, "observed.csv"),
			"--method", "kernel", "--loss", "sse", "--out", out}, extra...)
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), "DIFFROUTE_TEST_AS_CLI=1")
		b, err := cmd.CombinedOutput()
		peak := 0.0
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peak = float64(ru.Maxrss) * 1024 // kB on Linux
		}
		return string(b), peak, err
	}
	// The whole gradient needs about 155 MiB (its kernel alone 60 MiB).
	staged := filepath.Join(t.TempDir(), "staged.csv")
	out, peak, err := grad(staged, "--mem-budget", "150MiB")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var predicted float64
	var maxPaths int64
	for _, line := range strings.Split(out, "\n") {
		if _, after, ok := strings.Cut(line, "predicted peak "); ok {
			var unit string
			if _, err := fmt.Sscanf(after, "%f %s", &predicted, &unit); err != nil || unit != "MiB" {
				t.Fatalf("plan line %q", line)
			}
			predicted *= 1 << 20
		}
		if _, after, ok := strings.Cut(line, "(max_paths "); ok {
			fmt.Sscanf(after, "%d", &maxPaths)
		}
	}
	if !strings.Contains(out, "kernel-method gradient") || !strings.Contains(out, "staged over") || !strings.Contains(out, "whole process:") || predicted == 0 || peak == 0 || maxPaths == 0 {
		t.Fatalf("no staged whole-process kernel plan:\n%s", out)
	}
	ratio := predicted / peak
	t.Logf("staged kernel gradient (max_paths %d): predicted %.1f MiB, measured %.1f MiB (ratio %.2f)", maxPaths, predicted/(1<<20), peak/(1<<20), ratio)
	if ratio < 0.75 || ratio > 1.25 {
		t.Errorf("staged kernel: predicted %.1f MiB, measured peak %.1f MiB (ratio %.2f)\n%s", predicted/(1<<20), peak/(1<<20), ratio, out)
	}
	explicit := filepath.Join(t.TempDir(), "explicit.csv")
	if out, _, err := grad(explicit, "--max-paths", strconv.FormatInt(maxPaths, 10), "--quiet"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if e := gradCSVDiff(readGradCSV(t, staged), readGradCSV(t, explicit)); e > 1e-6 {
		t.Errorf("the planned staged kernel gradient differs from --max-paths %d's by %.2g (relative)", maxPaths, e)
	}
	// Too small for any plan: one line, a budget and the staging tried.
	out, _, err = grad(filepath.Join(t.TempDir(), "g.csv"), "--mem-budget", "60MiB", "--quiet")
	msg := strings.TrimSpace(out)
	if err == nil || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "needs a budget of") || !strings.Contains(msg, "--max-paths") {
		t.Errorf("kernel gradient over budget: %v\n%s", err, out)
	} else {
		t.Logf("refused: %s", msg)
	}
}
