//go:build cudaemu

package main

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffroute-go/diffroute/data"
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
