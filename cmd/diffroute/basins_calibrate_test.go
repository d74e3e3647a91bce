package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/diffroute-go/route/basins"
)

// calWorld generates three small basins for calibration (`generate
// --attributes --gauges 3`, 150 to 450 reaches, 60 days) with a prior
// 1.6 times too slow (k.csv scaled, observed discharge routed with the
// true k), and writes all their observations as one file, allObs.
func calWorld(t *testing.T) (world, allObs string) {
	t.Helper()
	world = filepath.Join(t.TempDir(), "calworld")
	var header []string
	var rows [][]string
	for s := 1; s <= 3; s++ {
		dir := filepath.Join(world, fmt.Sprintf("b%d", s))
		mustRun(t, "generate", "--out", dir, "--reaches", strconv.Itoa(150*s), "--days", "60", "--seed", strconv.Itoa(s), "--attributes", "--gauges", "3")
		k, err := os.ReadFile(filepath.Join(dir, "k.csv"))
		if err != nil {
			t.Fatal(err)
		}
		var slow strings.Builder
		for _, line := range strings.Fields(string(k)) {
			v, err := strconv.ParseFloat(line, 64)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&slow, "%.1f\n", 1.6*v)
		}
		if err := os.WriteFile(filepath.Join(dir, "k.csv"), []byte(slow.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "observed.csv"))
		if err != nil {
			t.Fatal(err)
		}
		obs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if header == nil {
			header, rows = []string{"time"}, make([][]string, len(obs)-1)
		}
		header = append(header, obs[0][1:]...)
		for k, r := range obs[1:] {
			if rows[k] == nil {
				rows[k] = []string{r[0]}
			}
			rows[k] = append(rows[k], r[1:]...)
		}
	}
	var all strings.Builder
	all.WriteString(strings.Join(header, ",") + "\n")
	for _, r := range rows {
		all.WriteString(strings.Join(r, ",") + "\n")
	}
	allObs = filepath.Join(filepath.Dir(world), "all_observed.csv")
	if err := os.WriteFile(allObs, []byte(all.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return world, allObs
}

// calArgs are the calibration flags of the basin-calibration tests.
var calArgs = []string{"--epochs", "8", "--substep", "3600", "--seed", "3"}

// sameFiles fails unless the named files of two folders are byte-equal.
func sameFiles(t *testing.T, a, b string, names ...string) {
	t.Helper()
	for _, n := range names {
		x, err := os.ReadFile(filepath.Join(a, n))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Fatalf("%s differs between %s and %s", n, a, b)
		}
	}
}

// TestCalibrateBasinsLocal calibrates three basins as a job with the local
// executor and checks each basin's k.csv, x.csv and report.csv against a
// direct `calibrate` of that basin (byte-equal: same seed, same workers),
// the summary against the reports (and that calibration improved the
// median NSE), each task's peak RSS against its planned request, that a
// rerun calibrates nothing, and that one observed file for all basins, cut
// by reach id, gives the same parameters.
func TestCalibrateBasinsLocal(t *testing.T) {
	t.Setenv("DIFFROUTE_TEST_AS_CLI", "1")
	w, allObs := calWorld(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "job")
	msg := mustRun(t, append([]string{"calibrate", "--basins", w, "--runoff", "runoff.nc", "--observed", "observed.csv", "--out", out}, calArgs...)...)
	t.Log(msg)
	job, err := basins.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if !job.IsCalibration() || len(job.Tasks) != 3 {
		t.Fatalf("job of kind %q with %d tasks, want 3 calibrations", job.Kind, len(job.Tasks))
	}
	gauges := 0
	for i, task := range job.Tasks {
		r, ok := job.Done(i, true)
		if !ok {
			t.Fatalf("%s not done", task.Name())
		}
		if r.PeakRSS <= 0 || r.PeakRSS > task.Request {
			t.Errorf("%s: peak RSS %d bytes, planned request %d", task.Name(), r.PeakRSS, task.Request)
		}
		if r.Gauges != 3 {
			t.Errorf("%s: %d gauges recorded, want 3", task.Name(), r.Gauges)
		}
		gauges += r.Gauges
		direct := filepath.Join(tmp, "direct", task.Basin)
		b := filepath.Join(w, task.Basin)
		mustRun(t, append([]string{"calibrate", "--rapid", b, "--runoff", filepath.Join(b, "runoff.nc"), "--observed", filepath.Join(b, "observed.csv"),
			"--out", direct, "--workers", "1", "--quiet"}, calArgs...)...)
		sameFiles(t, direct, filepath.Join(out, task.Basin), "k.csv", "x.csv", "report.csv")
	}
	before, after, n, err := job.CalibrationScores()
	if err != nil {
		t.Fatal(err)
	}
	if n != gauges || !(after > before) {
		t.Fatalf("summary: %d gauges (want %d), median NSE %.4f -> %.4f: calibration did not improve it", n, gauges, before, after)
	}
	summary, _ := os.ReadFile(filepath.Join(out, basins.SummaryFile))
	report, _ := os.ReadFile(filepath.Join(out, "b2", basins.ReportFile))
	for _, line := range strings.Split(strings.TrimSpace(string(report)), "\n")[1:] {
		if !strings.Contains(string(summary), "\nb2,"+line+"\n") {
			t.Fatalf("summary.csv lacks b2's report row %q", line)
		}
	}
	if msg := mustRun(t, append([]string{"calibrate", "--basins", w, "--runoff", "runoff.nc", "--observed", "observed.csv", "--out", out}, calArgs...)...); !strings.Contains(msg, "0 calibrated, 3 skipped") {
		t.Fatalf("a second run calibrated again:\n%s", msg)
	}
	st := mustRun(t, "jobs", "status", out)
	if !strings.Contains(st, "3 tasks: 3 done") || !strings.Contains(st, "3 gauges") {
		t.Fatalf("status:\n%s", st)
	}

	// One observed file for every basin, cut by reach id.
	shared := filepath.Join(tmp, "shared")
	mustRun(t, append([]string{"calibrate", "--basins", w, "--runoff", "runoff.nc", "--observed", allObs, "--out", shared, "--quiet"}, calArgs...)...)
	for _, task := range job.Tasks {
		sameFiles(t, filepath.Join(out, task.Basin), filepath.Join(shared, task.Basin), "k.csv", "x.csv", "report.csv")
	}
}

// TestCalibrateBasinsErrors: mistakes are one-line errors naming the flag,
// basin or gauge, before any calibration runs.
func TestCalibrateBasinsErrors(t *testing.T) {
	w, allObs := calWorld(t)
	tmp := t.TempDir()
	// A gauge in no basin of the job.
	b, _ := os.ReadFile(allObs)
	lines := strings.Split(string(b), "\n")
	lines[0] += ",999999999"
	for k := 1; k < len(lines); k++ {
		if lines[k] != "" {
			lines[k] += ",1"
		}
	}
	stray := filepath.Join(tmp, "stray.csv")
	os.WriteFile(stray, []byte(strings.Join(lines, "\n")), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--runoff", "runoff.nc", "--observed", "observed.csv"}, "--out"},
		{[]string{"--runoff", "runoff.nc", "--out", "o"}, "--observed are required"},
		{[]string{"--runoff", "runoff.nc", "--observed", "observed.csv", "--out", "o", "--rapid", "x"}, "--rapid does not apply"},
		{[]string{"--runoff", "runoff.nc", "--observed", "observed.csv", "--out", "o", "--executor", "pbs"}, "--executor"},
		{[]string{"--runoff", "runoff.nc", "--observed", "nothere.csv", "--out", filepath.Join(tmp, "o1")}, `observed discharge "nothere.csv" not found`},
		{[]string{"--runoff", "runoff.nc", "--observed", stray, "--out", filepath.Join(tmp, "o2")}, "gauge reach 999999999 lies in none of the basins"},
		{[]string{"--runoff", "runoff.nc", "--observed", "observed.csv", "--out", filepath.Join(tmp, "o3"), "--loss", "abs"}, "--loss abs"},
		{[]string{"--runoff", "runoff.nc", "--observed", "observed.csv", "--out", filepath.Join(tmp, "o4"), "--merge"}, "merge"},
	} {
		var out bytes.Buffer
		args := append([]string{"calibrate", "--basins", w}, c.args...)
		err := run(t.Context(), args, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a one-line error containing %q", strings.Join(args, " "), err, c.want)
		}
	}
}
