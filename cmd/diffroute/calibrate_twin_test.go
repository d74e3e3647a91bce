package main

import (
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

// TestTwinExperiment is the benchmark of BENCHMARKS.md, off by default:
//
//	DIFFROUTE_TWIN=1 go test ./cmd/diffroute -run TestTwinExperiment -v -timeout 2h
//
// A 3,000-reach basin (DIFFROUTE_TWIN_REACHES), 2 years daily routed
// hourly, 20 gauges with 5 % noise; calibrate from a constant prior with the
// flags in DIFFROUTE_TWIN_ARGS (default: L-BFGS, 150 iterations), then
// report validation NSE per gauge and the error of calibrated k for the
// reaches upstream of gauges.
func TestTwinExperiment(t *testing.T) {
	if os.Getenv("DIFFROUTE_TWIN") == "" {
		t.Skip("set DIFFROUTE_TWIN=1 to run the twin experiment (minutes)")
	}
	reaches := 3000
	if v := os.Getenv("DIFFROUTE_TWIN_REACHES"); v != "" {
		reaches, _ = strconv.Atoi(v)
	}
	dir := os.Getenv("DIFFROUTE_TWIN_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	basin, out := filepath.Join(dir, "basin"), filepath.Join(dir, "cal")
	if _, err := os.Stat(filepath.Join(basin, "observed.csv")); err != nil {
		if _, err := runCLI(t, "generate", "--out", basin, "--reaches", strconv.Itoa(reaches), "--days", "730", "--seed", "7",
			"--attributes", "--gauges", "20", "--obs-noise", "0.05"); err != nil {
			t.Fatal(err)
		}
	}
	extra := strings.Fields(os.Getenv("DIFFROUTE_TWIN_ARGS"))
	if len(extra) == 0 {
		extra = []string{"--optimizer", "lbfgs", "--epochs", "150", "--valid-every", "10"}
	}
	args := append([]string{"calibrate", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"), "--observed", filepath.Join(basin, "observed.csv"),
		"--substep", "3600", "--param", "k=0.25", "--param", "x=0.2", "--train-until", "2001-01-01", "--out", out}, extra...)
	t0 := time.Now()
	text, err := runCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s\ncalibrate took %v", text, time.Since(t0).Round(time.Second))
	r := readReport(t, filepath.Join(out, "report.csv"))
	t.Logf("validation NSE before: min %.4f median %.4f", minOf(r["nse_valid_before"]), median(r["nse_valid_before"]))
	t.Logf("validation NSE after:  min %.4f median %.4f  all: %.4f", minOf(r["nse_valid_after"]), median(r["nse_valid_after"]), r["nse_valid_after"])
	// k error upstream of gauges.
	cfg, err := data.ReadRAPID(basin)
	if err != nil {
		t.Fatal(err)
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
	truth, cal := kv(filepath.Join(basin, "k.csv")), kv(filepath.Join(out, "k.csv"))
	obs, err := data.ReadCSVTableFile(filepath.Join(basin, "observed.csv"))
	if err != nil {
		t.Fatal(err)
	}
	up, err := cfg.Network.UpstreamClosure(obs.IDs)
	if err != nil {
		t.Fatal(err)
	}
	row := map[int64]int{}
	for c, id := range cfg.ConnectIDs {
		row[id] = c
	}
	var rel, relPrior []float64
	for _, i := range up {
		c := row[cfg.Network.ID(int(i))]
		rel = append(rel, math.Abs(cal[c]-truth[c])/truth[c])
		relPrior = append(relPrior, math.Abs(0.25*86400-truth[c])/truth[c])
	}
	t.Logf("k relative error over the %d reaches upstream of gauges: median %.3f (prior %.3f), 90th percentile %.3f",
		len(rel), median(rel), median(relPrior), quantile(rel, 0.9))
}

func quantile(v []float64, q float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
