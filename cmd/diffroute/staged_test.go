package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

const demoBasin = "../../testdata/demo_basin"

func readQ(t *testing.T, path string) *diffroute.DataTensor {
	t.Helper()
	q, err := data.ReadRunoffNC(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func maxRelDiff(t *testing.T, got, want *diffroute.DataTensor) float64 {
	t.Helper()
	w, err := want.SelectIDs(got.IDs)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := 0; i < got.N; i++ {
		peak := 1e-30
		for _, v := range w.Series(0, i) {
			peak = max(peak, math.Abs(float64(v)))
		}
		for q, v := range w.Series(0, i) {
			worst = max(worst, math.Abs(float64(got.At(0, i, q)-v))/peak)
		}
	}
	return worst
}

// Staged, time-chunked (streamed), planned and selected runs of the CLI equal
// the plain run.
func TestRouteMemoryManagement(t *testing.T) {
	dir := t.TempDir()
	base := []string{"route", "--quiet", "--rapid", demoBasin, "--runoff", filepath.Join(demoBasin, "runoff.nc"), "--substep", "3600"}
	plain := filepath.Join(dir, "plain.nc")
	if _, err := runCLI(t, append(base, "--out", plain)...); err != nil {
		t.Fatal(err)
	}
	want := readQ(t, plain)
	gauges := filepath.Join(dir, "gauges.txt")
	os.WriteFile(gauges, []byte(strings.Join([]string{
		itoa(want.IDs[0]), itoa(want.IDs[17]), "# a comment", itoa(want.IDs[1999])}, "\n")), 0o644)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"staged", []string{"--max-nodes", "300", "--max-paths", "5000"}},
		{"chunked", []string{"--time-chunk", "50"}},
		{"staged-chunked", []string{"--max-nodes", "200", "--time-chunk", "37"}},
		{"budget", []string{"--mem-budget", namedBudget}},
		{"kernel-staged", []string{"--method", "kernel", "--max-delay", "80", "--max-nodes", "400"}},
		{"kernel-streamed", []string{"--method", "kernel", "--max-delay", "80", "--max-nodes", "700", "--time-chunk", "100"}},
		{"outputs", []string{"--outputs", gauges}},
		{"outputs-chunked", []string{"--outputs", gauges, "--time-chunk", "40"}},
		{"outputs-staged", []string{"--outputs", gauges, "--max-nodes", "150", "--max-paths", "3000"}},
		{"outputs-budget", []string{"--outputs", gauges, "--mem-budget", namedBudget}},
		{"outputs-kernel-streamed", []string{"--outputs", gauges, "--method", "kernel", "--max-delay", "80", "--time-chunk", "100"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name+".nc")
			args := append(append(slices.Clone(base), c.args...), "--out", out)
			if slices.Contains(c.args, namedBudget) {
				// --mem-budget bounds the whole process, which a test
				// binary is not: run a child at the smallest budget that
				// fits (the one a refusal names), which streams.
				args[len(args)-3] = budgetNamed(t, args...)
				if _, _, err := runChildCLI(t, args...); err != nil {
					t.Fatal(err)
				}
			} else if _, err := runCLI(t, args...); err != nil {
				t.Fatal(err)
			}
			got := readQ(t, out)
			if sel := strings.HasPrefix(c.name, "outputs"); sel && got.N != 3 {
				t.Fatalf("outputs run wrote %d reaches, want the 3 listed", got.N)
			} else if !sel && got.N != want.N {
				t.Fatalf("wrote %d reaches, want %d", got.N, want.N)
			}
			e := maxRelDiff(t, got, want)
			t.Logf("%s: max difference relative to peak %.3g", c.name, e)
			// The kernel run's max-delay (80 days) covers the basin's response.
			if e > 1e-5 {
				t.Errorf("%s differs from the plain run by %.3g", c.name, e)
			}
		})
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// namedBudget in a test's arguments stands for the budget a refusal names.
const namedBudget = "NAMED"

// budgetNamed runs the route command of args (its --mem-budget value just
// before --out and its file) in a child process at a budget of 1 MiB and
// returns the budget its refusal names.
func budgetNamed(t *testing.T, args ...string) string {
	t.Helper()
	args = slices.Clone(args)
	args[len(args)-3] = "1MiB"
	_, _, err := runChildCLI(t, args...)
	var mib float64
	if err == nil {
		t.Fatalf("%v: a 1 MiB budget was taken", args)
	}
	_, after, ok := strings.Cut(err.Error(), "needs a budget of ")
	if _, serr := fmt.Sscanf(after, "%f MiB", &mib); !ok || serr != nil {
		t.Fatalf("no budget named in %v", err)
	}
	// The whole process's memory varies a little from run to run.
	return fmt.Sprintf("%.0fMiB", math.Ceil(mib*1.05))
}

// runChildCLI runs the command in a child process (this test binary as
// diffroute) and returns its standard output and peak resident memory; an
// error carries its standard error.
func runChildCLI(t *testing.T, args ...string) (string, int64, error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "DIFFROUTE_TEST_AS_CLI=1", "DIFFROUTE_TEST_HWM=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err != nil {
		return stdout.String(), 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var rss int64
	for _, line := range strings.Split(stderr.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "VMHWM "); ok {
			rss, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return stdout.String(), rss, nil
}

// route --mem-budget bounds the whole process, as grad's does: the plan
// counts what the process holds when it plans (the mapped binary and
// libraries, some 50 MB, which the run's own prediction left out: a 40 MiB
// budget was taken and the process peaked near 60 MiB). The predicted peak
// is within 20 % of a child process's peak resident memory, unstaged and
// streamed, and the streamed run stays within the budget it was given.
func TestRoutePlanCoversWholeProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status: the plan cannot measure the process")
	}
	base := []string{"route", "--rapid", demoBasin, "--runoff", filepath.Join(demoBasin, "runoff.nc"), "--substep", "3600", "--workers", "1"}
	out := filepath.Join(t.TempDir(), "q.nc")
	named := budgetNamed(t, append(slices.Clone(base), "--mem-budget", namedBudget, "--out", out)...)
	for _, budget := range []string{"1GiB", named} {
		stdout, rss, err := runChildCLI(t, append(slices.Clone(base), "--mem-budget", budget, "--out", out)...)
		if err != nil {
			t.Fatalf("--mem-budget %s: %v", budget, err)
		}
		if !strings.Contains(stdout, "whole process:") {
			t.Fatalf("--mem-budget %s: the plan does not count the process:\n%s", budget, stdout)
		}
		// The last predicted peak printed: the streamed run's adds its
		// chunk buffers.
		var predicted float64
		for _, line := range strings.Split(stdout, "\n") {
			if _, after, ok := strings.Cut(line, "predicted peak "); ok {
				var unit string
				if _, err := fmt.Sscanf(after, "%f %s", &predicted, &unit); err != nil || unit != "MiB" {
					t.Fatalf("plan line %q", line)
				}
			}
		}
		ratio := predicted * (1 << 20) / float64(rss)
		t.Logf("--mem-budget %s: predicted %.1f MiB, measured %.1f MiB (ratio %.2f)", budget, predicted, float64(rss)/(1<<20), ratio)
		if ratio < 0.8 || ratio > 1.2 {
			t.Errorf("--mem-budget %s: predicted %.1f MiB, measured peak %.1f MiB (ratio %.2f)\n%s", budget, predicted, float64(rss)/(1<<20), ratio, stdout)
		}
		if b, _ := parseBudget(budget); rss > b {
			t.Errorf("--mem-budget %s: the process peaked at %.1f MiB", budget, float64(rss)/(1<<20))
		}
	}
}

// diffroute plan counts the whole process as route's --mem-budget does
// (so it runs as a process of its own here): a budget route takes, plan
// takes, and one route refuses, plan refuses. Near the edge they may
// differ: route also holds the opened runoff file (a few MiB, so 64 MiB,
// which plan takes, is route's edge for the demo basin).
func TestPlanCommand(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status: the plan cannot measure the process")
	}
	out, _, err := runChildCLI(t, "plan", "--rapid", demoBasin, "--steps", "365", "--mem-budget", "64MiB")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2000 reaches") || !strings.Contains(out, "whole process:") {
		t.Errorf("plan output lacks the network summary or the process:\n%s", out)
	}
	route := []string{"route", "--rapid", demoBasin, "--runoff", filepath.Join(demoBasin, "runoff.nc"), "--quiet", "--out", filepath.Join(t.TempDir(), "q.nc")}
	for _, budget := range []string{"40MiB", "128MiB"} {
		_, _, perr := runChildCLI(t, "plan", "--rapid", demoBasin, "--steps", "365", "--mem-budget", budget)
		_, _, rerr := runChildCLI(t, append(route, "--mem-budget", budget)...)
		if (perr == nil) != (rerr == nil) {
			t.Errorf("--mem-budget %s: plan says %v, route says %v", budget, perr, rerr)
		}
	}
	if _, err := runCLI(t, "plan", "--rapid", demoBasin, "--steps", "365", "--mem-budget", "lots"); err == nil {
		t.Error("bad budget accepted")
	}
	// With --gpu-memory the device's part follows; a device too small for
	// one step is an error naming what it needs.
	out, err = runCLI(t, "plan", "--rapid", demoBasin, "--steps", "365", "--mem-budget", "64MiB", "--gpu-memory", "256MiB")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Device (GPU kernel method): budget 256.0 MiB") || !strings.Contains(out, "2 × discharge chunk") {
		t.Errorf("plan --gpu-memory lacks the device part:\n%s", out)
	}
	if _, err := runCLI(t, "plan", "--rapid", demoBasin, "--steps", "365", "--mem-budget", "64MiB", "--gpu-memory", "16KiB"); err == nil || !strings.Contains(err.Error(), "cannot hold the largest cluster") {
		t.Errorf("a 16 KiB device: %v", err)
	}
}

// Without --mem-budget, a run whose runoff and discharge exceed half the
// available memory is planned for that half, and still equals the plain run.
func TestRouteAutoBudget(t *testing.T) {
	dir := t.TempDir()
	if err := generateBasin(dir, basinSpec{reaches: 1500, days: 3000, seed: 5}); err != nil {
		t.Fatal(err)
	}
	base := []string{"route", "--rapid", dir, "--runoff", filepath.Join(dir, "runoff.nc")}
	plain := filepath.Join(dir, "plain.nc")
	if _, err := runCLI(t, append(base, "--quiet", "--out", plain)...); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIFFROUTE_MEM_AVAILABLE", "60MiB") // 36 MB of runoff and discharge > 30 MiB
	auto := filepath.Join(dir, "auto.nc")
	out, err := runCLI(t, append(base, "--out", auto)...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "planning for 30 MiB") || !strings.Contains(out, "streaming") {
		t.Errorf("the run was not planned for half the available memory:\n%s", out)
	}
	if e := maxRelDiff(t, readQ(t, auto), readQ(t, plain)); e > 1e-6 {
		t.Errorf("auto-planned run differs from the plain run by %.3g", e)
	}
}
