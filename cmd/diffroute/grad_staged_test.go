package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	scaleCSV(t, q, obs, 1.3)
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
	// What the staged gradient cannot do is refused in one line.
	out, err := runCLI(t, append([]string{"grad", "--out", filepath.Join(t.TempDir(), "g.csv"), "--max-nodes", "3", "--method", "kernel"},
		"--rapid", xx9, "--runoff", runoff, "--observed", obs)...)
	if err == nil || !strings.Contains(err.Error(), "recursive method") {
		t.Errorf("--max-nodes with --method kernel: %v\n%s", err, out)
	}
}

// scaleCSV writes the first three reaches of a route --out CSV, times by
// scale, as an observed-discharge file.
func scaleCSV(t *testing.T, src, dst string, scale float64) {
	t.Helper()
	q, err := data.ReadCSVTableFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("time")
	for g := 0; g < 3; g++ {
		fmt.Fprintf(&sb, ",%d", q.IDs[g])
	}
	sb.WriteByte('\n')
	for k, label := range q.Times {
		sb.WriteString(label)
		for g := 0; g < 3; g++ {
			fmt.Fprintf(&sb, ",%g", float64(q.At(0, g, k))*scale)
		}
		sb.WriteByte('\n')
	}
	if err := os.WriteFile(dst, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
