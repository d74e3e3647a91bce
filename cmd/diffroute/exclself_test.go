package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// route --method kernel --exclude-self --max-paths (--max-nodes,
// --time-chunk) equals the unstaged --exclude-self run on rapid_xx9 where
// the max delay covers the series (16 steps, max delay 20): the transfers
// between clusters carry each source's own runoff unrouted, as the
// unstaged kernel adds it.
func TestRouteCLIStagedKernelExcludeSelf(t *testing.T) {
	runoff := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	base := []string{"route", "--quiet", "--rapid", xx9, "--runoff", runoff, "--step", "10800", "--substep", "900",
		"--method", "kernel", "--max-delay", "20", "--exclude-self"}
	for _, c := range []struct {
		name   string
		extra  []string
		stages [][]string
	}{
		{"muskingum", nil, [][]string{{"--max-paths", "4"}, {"--max-paths", "8", "--max-nodes", "3", "--time-chunk", "5"}}},
		{"muskingum-lti-end", []string{"--lateral", "lti", "--average", "end"}, [][]string{{"--max-paths", "4"}}},
		{"hayami", []string{"--irf", "hayami", "--param", "L=1", "--param", "D=0.2", "--param", "c=2", "--fft-pad", "4"}, [][]string{{"--max-paths", "4"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			run := func(name string, stage []string) string {
				out := filepath.Join(dir, name+".nc")
				args := append(append(append(append([]string(nil), base...), c.extra...), stage...), "--out", out)
				if msg, err := runCLI(t, args...); err != nil {
					t.Fatalf("%v: %v\n%s", stage, err, msg)
				}
				return out
			}
			want := readQ(t, run("plain", nil))
			for k, st := range c.stages {
				got := readQ(t, run("staged"+itoa(int64(k)), st))
				if got.N != want.N || got.T != want.T {
					t.Fatalf("%v: %d reaches × %d steps, the plain run %d × %d", st, got.N, got.T, want.N, want.T)
				}
				e := maxRelDiff(t, got, want)
				t.Logf("%s: max difference relative to peak %.3g", strings.Join(st, " "), e)
				if e > 1e-5 {
					t.Errorf("%v: the staged --exclude-self run differs from the plain one by %.3g of the peak", st, e)
				}
			}
		})
	}
}

// --exclude-self is the kernel method's: without --method it routes with
// that method (the same file as --method kernel), and with --method
// recursive it is refused in one line, writing nothing (it used to be
// ignored silently).
func TestRouteCLIExcludeSelfNeedsTheKernelMethod(t *testing.T) {
	runoff := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	dir := t.TempDir()
	base := []string{"route", "--quiet", "--rapid", xx9, "--runoff", runoff, "--step", "10800", "--substep", "900", "--exclude-self"}
	run := func(name string, extra ...string) (string, string, error) {
		out := filepath.Join(dir, name+".nc")
		msg, err := runCLI(t, append(append(append([]string(nil), base...), extra...), "--out", out)...)
		return out, msg, err
	}
	implied, msg, err := run("implied")
	if err != nil {
		t.Fatalf("--exclude-self without --method: %v\n%s", err, msg)
	}
	kernel, msg, err := run("kernel", "--method", "kernel")
	if err != nil {
		t.Fatalf("--method kernel --exclude-self: %v\n%s", err, msg)
	}
	if e := maxRelDiff(t, readQ(t, implied), readQ(t, kernel)); e != 0 {
		t.Errorf("--exclude-self alone differs from --method kernel --exclude-self by %.3g of the peak", e)
	}
	out, _, err := run("recursive", "--method", "recursive")
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "kernel method") {
		t.Fatalf("--method recursive --exclude-self: err %v, want a one-line refusal naming the kernel method", err)
	}
	if _, serr := os.Stat(out); serr == nil {
		t.Errorf("the refused run wrote %s", out)
	}
}
