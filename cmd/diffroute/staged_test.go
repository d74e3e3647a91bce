package main

import (
	"math"
	"os"
	"path/filepath"
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
		{"budget", []string{"--mem-budget", "40MiB"}},
		{"kernel-staged", []string{"--method", "kernel", "--max-delay", "80", "--max-nodes", "400"}},
		{"kernel-streamed", []string{"--method", "kernel", "--max-delay", "80", "--max-nodes", "700", "--time-chunk", "100"}},
		{"outputs", []string{"--outputs", gauges}},
		{"outputs-chunked", []string{"--outputs", gauges, "--time-chunk", "40"}},
		{"outputs-staged", []string{"--outputs", gauges, "--max-nodes", "150", "--max-paths", "3000"}},
		{"outputs-budget", []string{"--outputs", gauges, "--mem-budget", "20MiB"}},
		{"outputs-kernel-streamed", []string{"--outputs", gauges, "--method", "kernel", "--max-delay", "80", "--time-chunk", "100"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name+".nc")
			if _, err := runCLI(t, append(append(base, c.args...), "--out", out)...); err != nil {
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

func TestPlanCommand(t *testing.T) {
	out, err := runCLI(t, "plan", "--rapid", demoBasin, "--steps", "365", "--mem-budget", "64MiB")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2000 reaches") {
		t.Errorf("plan output lacks the network summary:\n%s", out)
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
