package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/data"
)

// TestTwinExperiment is the twin experiment of BENCHMARKS.md, off by
// default (minutes per calibration):
//
//	DIFFROUTE_TWIN=loglinear,refine,refine-ridge,subbasin,reach go test ./cmd/diffroute -run TestTwinExperiment -v -timeout 3h
//
// A 3,000-reach basin (DIFFROUTE_TWIN_REACHES), 2 years daily routed
// hourly, 20 gauges with 5 % noise, true k and x from the generator's
// attribute law (DIFFROUTE_TWIN_NOISE scatters them around it). Every
// calibration starts from the constant prior k = 6 h, x = 0.2 (or from an
// earlier calibration's result, for refine) and never sees the truth; it
// trains on 2000 and validates on 2001. Experiments:
//
//   - reach: one k and x per reach (L-BFGS, 150 iterations);
//   - loglinear: log k and x linear in the standardised log attributes
//     (8 free variables, L-BFGS, 60 iterations);
//   - subbasin: one k and x per sub-basin, the reaches whose first gauge
//     downstream is the same (group map, 21 groups);
//   - refine: per reach, starting from loglinear's result (L-BFGS, 60);
//   - refine-ridge: the same with --ridge DIFFROUTE_TWIN_RIDGE (default
//     0.1): a prior term that keeps each reach near the learned law unless
//     the gauges ask otherwise.
//
// Each logs validation NSE per gauge and the error of calibrated k for the
// reaches upstream of gauges.
func TestTwinExperiment(t *testing.T) {
	which := os.Getenv("DIFFROUTE_TWIN")
	if which == "" {
		t.Skip("set DIFFROUTE_TWIN=loglinear,refine,… to run the twin experiment (minutes)")
	}
	if which == "1" {
		which = "reach"
	}
	reaches := 3000
	if v := os.Getenv("DIFFROUTE_TWIN_REACHES"); v != "" {
		reaches, _ = strconv.Atoi(v)
	}
	noise := os.Getenv("DIFFROUTE_TWIN_NOISE")
	ridge := os.Getenv("DIFFROUTE_TWIN_RIDGE")
	if ridge == "" {
		ridge = "0.1"
	}
	dir := os.Getenv("DIFFROUTE_TWIN_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	basin := filepath.Join(dir, "basin")
	if _, err := os.Stat(filepath.Join(basin, "observed.csv")); err != nil {
		args := []string{"generate", "--out", basin, "--reaches", strconv.Itoa(reaches), "--days", "730", "--seed", "7",
			"--attributes", "--gauges", "20", "--obs-noise", "0.05"}
		if noise != "" {
			args = append(args, "--noise", noise)
		}
		if _, err := runCLI(t, args...); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := data.ReadRAPID(basin)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := data.ReadCSVTableFile(filepath.Join(basin, "observed.csv"))
	if err != nil {
		t.Fatal(err)
	}
	net := cfg.Network
	base := []string{"calibrate", "--runoff", filepath.Join(basin, "runoff.nc"), "--observed", filepath.Join(basin, "observed.csv"),
		"--substep", "3600", "--train-until", "2001-01-01", "--valid-every", "10"}
	constant := []string{"--rapid", basin, "--param", "k=0.25", "--param", "x=0.2"}
	logBounds := []string{"--bounds", "k=1800:inf,x=0:0.5"}
	// refineFrom makes a RAPID folder whose k.csv and x.csv (the prior)
	// are an earlier calibration's.
	refineFrom := func(name, from string) []string {
		d := filepath.Join(dir, name+"-prior")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"rapid_connect.csv", "riv_bas_id.csv", "k.csv", "x.csv"} {
			src := filepath.Join(basin, f)
			if f == "k.csv" || f == "x.csv" {
				src = filepath.Join(dir, from, f)
			}
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return []string{"--rapid", d}
	}
	experiments := map[string]func() []string{
		"reach": func() []string {
			return append(constant, "--optimizer", "lbfgs", "--epochs", "150")
		},
		"loglinear": func() []string {
			return slices.Concat(constant, logBounds, []string{"--map", "loglinear:" + filepath.Join(basin, "attributes.csv"), "--optimizer", "lbfgs", "--epochs", "60"})
		},
		"subbasin": func() []string {
			path := filepath.Join(dir, "subbasins.csv")
			if err := os.WriteFile(path, []byte(subBasins(t, cfg.ConnectIDs, net, obs.IDs)), 0o644); err != nil {
				t.Fatal(err)
			}
			return append(constant, "--map", "group:"+path, "--optimizer", "lbfgs", "--epochs", "60")
		},
		"refine": func() []string {
			return slices.Concat(refineFrom("refine", "loglinear"), logBounds, []string{"--optimizer", "lbfgs", "--epochs", "60"})
		},
		"refine-ridge": func() []string {
			return slices.Concat(refineFrom("refine-ridge", "loglinear"), logBounds, []string{"--ridge", ridge, "--optimizer", "lbfgs", "--epochs", "60"})
		},
	}
	kv := func(path string) []float64 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		v, _, err := data.ParseValues(f, path)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	truth := kv(filepath.Join(basin, "k.csv"))
	up, err := net.UpstreamClosure(obs.IDs)
	if err != nil {
		t.Fatal(err)
	}
	row := map[int64]int{}
	for c, id := range cfg.ConnectIDs {
		row[id] = c
	}
	kErr := func(k func(c int) float64) []float64 {
		var rel []float64
		for _, i := range up {
			c := row[net.ID(int(i))]
			rel = append(rel, math.Abs(k(c)-truth[c])/truth[c])
		}
		return rel
	}
	prior := kErr(func(int) float64 { return 0.25 * 86400 })
	t.Logf("%d reaches upstream of the %d gauges; prior k = 6 h: k error median %.3f", len(up), len(obs.IDs), median(prior))
	for _, name := range strings.Split(which, ",") {
		exp, ok := experiments[name]
		if !ok {
			t.Fatalf("DIFFROUTE_TWIN: no experiment %q", name)
		}
		out := filepath.Join(dir, name)
		args := slices.Concat(base, exp(), []string{"--out", out}, strings.Fields(os.Getenv("DIFFROUTE_TWIN_ARGS")))
		t0 := time.Now()
		text, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := readReport(t, filepath.Join(out, "report.csv"))
		cal := kv(filepath.Join(out, "k.csv"))
		rel := kErr(func(c int) float64 { return cal[c] })
		t.Logf("%s\n%s: %s (%v)\n  validation NSE before: min %.4f median %.4f; after: min %.4f median %.4f\n  k error upstream of gauges: median %.3f, 90th percentile %.3f",
			text, name, strings.Join(args[1:], " "), time.Since(t0).Round(time.Second),
			minOf(r["nse_valid_before"]), median(r["nse_valid_before"]), minOf(r["nse_valid_after"]), median(r["nse_valid_after"]),
			median(rel), quantile(rel, 0.9))
	}
}

// subBasins writes rivid,group with each reach's group the first gauge
// downstream of it (its own reach included), "none" below every gauge.
func subBasins(t *testing.T, ids []int64, net interface {
	Index(int64) (int, bool)
	Down(int) int
	ID(int) int64
}, gauges []int64) string {
	t.Helper()
	isGauge := map[int64]bool{}
	for _, id := range gauges {
		isGauge[id] = true
	}
	var b strings.Builder
	b.WriteString("rivid,group\n")
	for _, id := range ids {
		i, ok := net.Index(id)
		if !ok {
			continue
		}
		g := "none"
		for j := i; j >= 0; j = net.Down(j) {
			if isGauge[net.ID(j)] {
				g = fmt.Sprint(net.ID(j))
				break
			}
		}
		fmt.Fprintf(&b, "%d,%s\n", id, g)
	}
	return b.String()
}

func quantile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
