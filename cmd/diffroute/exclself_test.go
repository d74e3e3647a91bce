package main

import (
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
