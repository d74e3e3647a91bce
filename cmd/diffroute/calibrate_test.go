package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/diffroute-go/route/data"
)

// genBasin writes a generated basin with attributes and observed discharge
// at gauges (hourly routing of daily runoff) for the calibrate tests.
func genBasin(t *testing.T, dir string, reaches, days, gauges int, seed uint64) {
	t.Helper()
	if _, err := runCLI(t, "generate", "--out", dir, "--reaches", strconv.Itoa(reaches), "--days", strconv.Itoa(days),
		"--seed", strconv.FormatUint(seed, 10), "--attributes", "--gauges", strconv.Itoa(gauges)); err != nil {
		t.Fatal(err)
	}
}

// readReport reads report.csv into column → values.
func readReport(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	head := strings.Split(lines[0], ",")
	out := map[string][]float64{}
	for _, l := range lines[1:] {
		for k, f := range strings.Split(l, ",") {
			v := math.NaN()
			if f != "" {
				v, _ = strconv.ParseFloat(f, 64)
			}
			out[head[k]] = append(out[head[k]], v)
		}
	}
	return out
}

func minOf(v []float64) float64 {
	m := math.Inf(1)
	for _, x := range v {
		m = math.Min(m, x)
	}
	return m
}

// A twin experiment through the CLI: observed discharge is the routed
// truth, the prior is a constant k and x; calibration must bring every
// gauge's validation NSE close to 1 from well below, and route
// --params-from must route with what calibrate wrote (its discharge at the
// gauges reproduces the report's validation NSE).
func TestCalibrateTwinCLI(t *testing.T) {
	dir := t.TempDir()
	basin, out := filepath.Join(dir, "basin"), filepath.Join(dir, "cal")
	genBasin(t, basin, 150, 240, 6, 21)
	if _, err := runCLI(t, "calibrate", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"),
		"--observed", filepath.Join(basin, "observed.csv"), "--substep", "3600", "--param", "k=0.3", "--param", "x=0.2",
		"--train-until", "2000-06-01", "--optimizer", "lbfgs", "--epochs", "60", "--quiet", "--out", out); err != nil {
		t.Fatal(err)
	}
	r := readReport(t, filepath.Join(out, "report.csv"))
	t.Logf("validation NSE before %v\nafter %v", r["nse_valid_before"], r["nse_valid_after"])
	if minOf(r["nse_valid_after"]) < 0.995 || minOf(r["nse_valid_before"]) > 0.95 {
		t.Errorf("validation NSE before %v, after %v", r["nse_valid_before"], r["nse_valid_after"])
	}
	for _, f := range []string{"k.csv", "x.csv", "history.csv", "calibration.html"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// Route with the calibrated parameters and score the gauges again.
	q := filepath.Join(dir, "q.nc")
	if _, err := runCLI(t, "route", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"), "--substep", "3600",
		"--params-from", out, "--quiet", "--out", q); err != nil {
		t.Fatal(err)
	}
	routed, err := data.ReadRunoffNC(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := data.ReadCSVTableFile(filepath.Join(basin, "observed.csv"))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := routed.SelectIDs(obs.IDs)
	if err != nil {
		t.Fatal(err)
	}
	split := 152 // 2000-06-01 is day 152 of a leap year
	for k := range obs.IDs {
		var num, den, mean float64
		o := obs.Series(0, k)[split:]
		for _, v := range o {
			mean += float64(v) / float64(len(o))
		}
		for t, v := range sel.Series(0, k)[split:] {
			d := float64(v) - float64(o[t])
			num += d * d
			den += (float64(o[t]) - mean) * (float64(o[t]) - mean)
		}
		if nse := 1 - num/den; math.Abs(nse-r["nse_valid_after"][k]) > 1e-4 {
			t.Errorf("gauge %d: route --params-from gives NSE %v, the report %v", obs.IDs[k], nse, r["nse_valid_after"][k])
		}
	}
}

// Learning: a log-linear map from attributes trained on one basin,
// validated on another generated with the same law, and an MLP; map.json
// and the other basin's parameters are written.
func TestCalibrateLearnCLI(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	genBasin(t, a, 120, 150, 6, 31)
	genBasin(t, b, 120, 150, 6, 32)
	for _, kind := range []string{"loglinear", "mlp"} {
		out := filepath.Join(dir, kind)
		args := []string{"calibrate", "--rapid", a, "--runoff", filepath.Join(a, "runoff.nc"), "--observed", filepath.Join(a, "observed.csv"),
			"--substep", "3600", "--param", "k=0.3", "--param", "x=0.2", "--map", kind + ":" + filepath.Join(a, "attributes.csv"),
			"--bounds", "k=1800:inf,x=0:0.5", "--optimizer", "adam", "--lr", "0.05", "--epochs", "60", "--hidden", "4",
			"--valid-rapid", b, "--valid-runoff", filepath.Join(b, "runoff.nc"), "--valid-observed", filepath.Join(b, "observed.csv"),
			"--valid-attributes", filepath.Join(b, "attributes.csv"), "--quiet", "--out", out}
		if _, err := runCLI(t, args...); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		ra := readReport(t, filepath.Join(out, "report.csv"))
		rb := readReport(t, filepath.Join(out, "valid", "report.csv"))
		t.Logf("%s: basin A training NSE %v; basin B %v -> %v", kind, ra["nse_train_after"], rb["nse_train_before"], rb["nse_train_after"])
		if minOf(rb["nse_train_after"]) < 0.97 || minOf(rb["nse_train_after"]) <= minOf(rb["nse_train_before"]) {
			t.Errorf("%s: basin B NSE %v -> %v", kind, rb["nse_train_before"], rb["nse_train_after"])
		}
		for _, f := range []string{"map.json", "valid/k.csv", "valid/x.csv"} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Errorf("%s: %v", kind, err)
			}
		}
		// The learned map applied by route to basin B's attributes routes
		// as the k.csv and x.csv calibrate wrote for B.
		route := func(name string, extra ...string) string {
			q := filepath.Join(dir, kind+"-"+name+".nc")
			args := append([]string{"route", "--rapid", b, "--runoff", filepath.Join(b, "runoff.nc"), "--substep", "3600", "--quiet", "--out", q}, extra...)
			if _, err := runCLI(t, args...); err != nil {
				t.Fatalf("%s: route %s: %v", kind, name, err)
			}
			return q
		}
		viaCSV := route("csv", "--params-from", filepath.Join(out, "valid"))
		closeQout(t, viaCSV, route("map", "--map-from", filepath.Join(out, "map.json"), "--attributes", filepath.Join(b, "attributes.csv")), 1e-6)
		closeQout(t, viaCSV, route("map-default", "--map-from", filepath.Join(out, "map.json"))) // attributes.csv of --rapid
		closeQout(t, viaCSV, route("from", "--params-from", out, "--attributes", filepath.Join(b, "attributes.csv")), 1e-6)
		// and not as basin B's truth or A's parameters.
		qa, _ := readQout(t, viaCSV)
		qt, _ := readQout(t, route("truth"))
		if d := maxRel(qa, qt); !(d > 1e-4) {
			t.Errorf("%s: the map's discharge equals the truth's to %g: the check cannot fail", kind, d)
		}
	}
	// Bad --map-from input: one line naming the flag or file.
	m := filepath.Join(dir, "loglinear", "map.json")
	noArea := filepath.Join(dir, "noarea.csv")
	raw, err := os.ReadFile(filepath.Join(b, "attributes.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noArea, []byte(strings.ReplaceAll(string(raw), "area_km2", "area")), 0o644); err != nil {
		t.Fatal(err)
	}
	hourly := filepath.Join(dir, "hourly.json")
	raw, err = os.ReadFile(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hourly, []byte(strings.Replace(string(raw), `"step_seconds": 86400`, `"step_seconds": 3600`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--attributes", noArea}, "--attributes goes with --map-from"},
		{[]string{"--map-from", m, "--attributes", noArea}, `lack "area_km2"`},
		{[]string{"--map-from", m, "--irf", "linear_storage"}, "learned for IRF muskingum"},
		{[]string{"--map-from", m, "--params-from", filepath.Join(dir, "loglinear")}, "use one"},
		{[]string{"--map-from", hourly}, "learned on a runoff step of 3600 s, this runoff's is 86400 s"},
		{[]string{"--map-from", filepath.Join(b, "attributes.csv")}, "not a map written by diffroute calibrate"},
		{[]string{"--params-from", filepath.Join(dir, "loglinear", "valid"), "--attributes", filepath.Join(b, "attributes.csv")}, "needs the learned map"},
	} {
		args := append([]string{"route", "--rapid", b, "--runoff", filepath.Join(b, "runoff.nc"), "--quiet", "--out", filepath.Join(dir, "bad.nc")}, c.args...)
		_, err := runCLI(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("route %v: %v, want an error with %q", c.args, err, c.want)
		}
	}
}

// closeQout fails unless two discharge files agree to a relative
// difference tol (default 1e-6) of each reach's largest value.
func closeQout(t *testing.T, a, b string, tol ...float64) {
	t.Helper()
	qa, _ := readQout(t, a)
	qb, _ := readQout(t, b)
	lim := 1e-6
	if len(tol) > 0 {
		lim = tol[0]
	}
	if len(qa) != len(qb) {
		t.Fatalf("%s and %s: %d and %d reaches", a, b, len(qa), len(qb))
	}
	if d := maxRel(qa, qb); d > lim {
		t.Fatalf("%s and %s differ by up to %g (relative)", a, b, d)
	}
}

func maxRel(qa, qb map[int64][]float32) float64 {
	worst := 0.0
	for id, sa := range qa {
		sb := qb[id]
		top := 0.0
		for _, v := range sa {
			top = max(top, math.Abs(float64(v)))
		}
		for k := range sa {
			if k < len(sb) {
				worst = max(worst, math.Abs(float64(sa[k])-float64(sb[k]))/max(top, 1e-30))
			} else {
				return math.Inf(1)
			}
		}
	}
	return worst
}

// Within a small --mem-budget the basin is calibrated cluster by cluster.
func TestCalibrateSequentialCLI(t *testing.T) {
	dir := t.TempDir()
	basin, out := filepath.Join(dir, "basin"), filepath.Join(dir, "cal")
	genBasin(t, basin, 400, 120, 12, 41)
	text, err := runCLI(t, "calibrate", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"),
		"--observed", filepath.Join(basin, "observed.csv"), "--substep", "3600", "--param", "k=0.3", "--param", "x=0.2",
		"--train-until", "2000-03-20", "--optimizer", "lbfgs", "--epochs", "40", "--mem-budget", "2MiB", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "clusters in turn") || !strings.Contains(text, "cluster 1/") {
		t.Fatalf("no sequential calibration in:\n%s", text)
	}
	r := readReport(t, filepath.Join(out, "report.csv"))
	if med := median(r["nse_valid_after"]); med < 0.99 || med <= median(r["nse_valid_before"]) {
		t.Errorf("validation NSE %v -> %v", r["nse_valid_before"], r["nse_valid_after"])
	}
	// A log-linear map under a budget its 206 gauged reaches do not fit: every iteration's gradient
	// runs cluster by cluster over the whole basin, and every gauge fits.
	out = filepath.Join(dir, "loglinear")
	text, err = runCLI(t, "calibrate", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"),
		"--observed", filepath.Join(basin, "observed.csv"), "--substep", "3600", "--param", "k=0.3", "--param", "x=0.2",
		"--map", "loglinear:"+filepath.Join(basin, "attributes.csv"), "--bounds", "k=1800:inf,x=0:0.5",
		"--train-until", "2000-03-20", "--optimizer", "lbfgs", "--epochs", "30", "--mem-budget", "1MiB", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "cluster by cluster") {
		t.Fatalf("no staged gradient in:\n%s", text)
	}
	r = readReport(t, filepath.Join(out, "report.csv"))
	t.Logf("log-linear map, staged: validation NSE %v -> %v", r["nse_valid_before"], r["nse_valid_after"])
	if low := minOf(r["nse_valid_after"]); low < 0.99 || low <= minOf(r["nse_valid_before"]) {
		t.Errorf("log-linear map, staged: validation NSE %v -> %v", r["nse_valid_before"], r["nse_valid_after"])
	}
}

// Every bad input is one line naming what is wrong, before any routing,
// and leaves no output folder.
func TestCalibrateBadInput(t *testing.T) {
	dir := t.TempDir()
	basin := filepath.Join(dir, "basin")
	genBasin(t, basin, 60, 40, 3, 51)
	obs := filepath.Join(basin, "observed.csv")
	b, err := os.ReadFile(obs)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	head := strings.Split(lines[0], ",")
	write := func(name string, edit func(lines []string) []string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(edit(append([]string(nil), lines...)), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.csv", func(l []string) []string { l[0] = strings.Replace(l[0], ","+head[1], ",999999999", 1); return l })
	late := write("late.csv", func(l []string) []string {
		for k := 1; k < len(l); k++ {
			l[k] = strings.Replace(l[k], "2000-", "1990-", 1)
		}
		return l
	})
	empty := write("empty.csv", func(l []string) []string {
		for k := 1; k < len(l); k++ {
			f := strings.Split(l[k], ",")
			f[2] = "NaN"
			l[k] = strings.Join(f, ",")
		}
		return l
	})
	fill := write("fill.csv", func(l []string) []string {
		f := strings.Split(l[3], ",")
		f[1] = "-9999"
		l[3] = strings.Join(f, ",")
		return l
	})
	twice := write("twice.csv", func(l []string) []string { return append(l, l[2]) })
	base := []string{"calibrate", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"), "--substep", "3600", "--epochs", "2"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--observed", unknown}, "gauge reach 999999999 is not in the network"},
		{[]string{"--observed", late}, "no time in common"},
		{[]string{"--observed", empty}, "gauge reach " + head[2] + " has 0 observations"},
		{[]string{"--observed", fill}, "gauge reach " + head[1] + " at " + strings.Split(lines[3], ",")[0] + " is -9999: discharge must be ≥ 0"},
		{[]string{"--observed", twice}, "twice.csv:" + strconv.Itoa(len(lines)+1) + ":1: time " + strconv.Quote(strings.Split(lines[2], ",")[0]) + " given twice (first on line 3)"},
		{[]string{"--observed", obs, "--bounds", "k=3600:3600"}, "min 3600 must be below max 3600"},
		{[]string{"--observed", obs, "--bounds", "k=7200:3600"}, "must be below max"},
		{[]string{"--observed", obs, "--params", "k,q"}, `no parameter "q"`},
		{[]string{"--observed", obs, "--bounds", "tau=1:2"}, `no parameter "tau"`},
		{[]string{"--observed", obs, "--irf", "pure_lag", "--param", "delay=0.5"}, "pure_lag has no parameter gradient"},
		{[]string{"--observed", obs, "--train-until", "1999-01-01"}, "outside the runoff's times"},
		{[]string{"--observed", obs, "--loss", "rmse"}, "--loss rmse"},
		{[]string{"--observed", obs, "--optimizer", "sgd"}, "--optimizer sgd"},
		{[]string{"--observed", obs, "--map", "mlp"}, "needs a file"},
		{[]string{"--observed", filepath.Join(dir, "missing.csv")}, "no such file"},
		{[]string{"--observed", obs, "--valid-rapid", basin, "--valid-runoff", filepath.Join(basin, "runoff.nc"), "--valid-observed", obs}, "validate a learned map only"},
	} {
		out := filepath.Join(dir, "out")
		args := append(append(append([]string(nil), base...), c.args...), "--quiet", "--out", out)
		_, err := runCLI(t, args...)
		switch {
		case err == nil:
			t.Errorf("%v: no error", c.args)
		case !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n"):
			t.Errorf("%v: error %q, want one line with %q", c.args, err, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%v: left an output folder", c.args)
			os.RemoveAll(out)
		}
	}
}

// Observed discharge from a Qout netCDF, and one value per group: every
// reach of a group gets the same calibrated k and x, and map.json records
// the groups.
func TestCalibrateNetCDFObservedAndGroups(t *testing.T) {
	dir := t.TempDir()
	basin, out := filepath.Join(dir, "basin"), filepath.Join(dir, "cal")
	genBasin(t, basin, 80, 60, 4, 61)
	obs, err := data.ReadCSVTableFile(filepath.Join(basin, "observed.csv"))
	if err != nil {
		t.Fatal(err)
	}
	obs.Units = "m3 s-1"
	nc := filepath.Join(dir, "Qobs.nc")
	if err := data.WriteQoutNC(nc, obs, nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := data.ReadRAPID(basin)
	if err != nil {
		t.Fatal(err)
	}
	var groups strings.Builder
	groups.WriteString("rivid,group\n")
	groupOf := map[int64]string{}
	for i, id := range cfg.Network.IDs() {
		g := []string{"small", "medium", "large"}[min(2, cfg.Network.Size(i)/5)]
		groupOf[id] = g
		groups.WriteString(strconv.FormatInt(id, 10) + "," + g + "\n")
	}
	gpath := filepath.Join(dir, "groups.csv")
	if err := os.WriteFile(gpath, []byte(groups.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, "calibrate", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"), "--observed", nc,
		"--substep", "3600", "--param", "k=0.3", "--param", "x=0.2", "--map", "group:"+gpath, "--loss", "kge",
		"--optimizer", "adam", "--epochs", "10", "--window", "20", "--warmup", "5", "--quiet", "--out", out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "k.csv"))
	if err != nil {
		t.Fatal(err)
	}
	ks := strings.Fields(string(b))
	kOf := map[string]string{}
	for c, id := range cfg.ConnectIDs {
		g := groupOf[id]
		if prev, ok := kOf[g]; ok && prev != ks[c] {
			t.Fatalf("group %s has k %s and %s", g, prev, ks[c])
		}
		kOf[g] = ks[c]
	}
	if len(kOf) < 2 || kOf["small"] == strconv.FormatFloat(0.3*86400, 'g', 10, 64) {
		t.Errorf("per-group k %v", kOf)
	}
	m, err := os.ReadFile(filepath.Join(out, "map.json"))
	if err != nil || !strings.Contains(string(m), `"groups"`) {
		t.Errorf("map.json: %v\n%s", err, m)
	}
	// route --params-from refuses a folder that is not there.
	if _, err := runCLI(t, "route", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"), "--params-from", filepath.Join(dir, "nope"),
		"--quiet", "--out", filepath.Join(dir, "q.nc")); err == nil || !strings.Contains(err.Error(), "--params-from") {
		t.Errorf("route --params-from a missing folder: %v", err)
	}
}

// Another IRF: params.csv (runoff steps) holds what was calibrated, not
// parameters left to the IRF's defaults, and route --params-from reads it.
func TestCalibrateOtherIRF(t *testing.T) {
	dir := t.TempDir()
	basin, out := filepath.Join(dir, "basin"), filepath.Join(dir, "cal")
	genBasin(t, basin, 60, 40, 3, 71)
	if _, err := runCLI(t, "calibrate", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"), "--observed", filepath.Join(basin, "observed.csv"),
		"--substep", "3600", "--irf", "nash_cascade", "--param", "tau=0.1", "--bounds", "tau=0.01:1", "--epochs", "3", "--quiet", "--out", out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "params.csv"))
	if err != nil || !strings.HasPrefix(string(b), "rivid,tau\n") {
		t.Fatalf("params.csv: %v\n%.200s", err, b)
	}
	if _, err := runCLI(t, "route", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"), "--substep", "3600", "--irf", "nash_cascade",
		"--params-from", out, "--quiet", "--out", filepath.Join(dir, "q.nc")); err != nil {
		t.Fatal(err)
	}
}

// calibrate --qinit starts routing from the given discharge: the report's
// NSE of the prior equals the NSE computed here from route --qinit's
// discharge (and differs from the run without --qinit).
func TestCalibrateQinit(t *testing.T) {
	dir := t.TempDir()
	basin := filepath.Join(dir, "basin")
	genBasin(t, basin, 150, 40, 4, 61)
	runoff, obsPath := filepath.Join(basin, "runoff.nc"), filepath.Join(basin, "observed.csv")
	qinit := filepath.Join(dir, "qinit.csv")
	if _, err := runCLI(t, "route", "--rapid", basin, "--runoff", runoff, "--substep", "3600", "--quiet", "--out", filepath.Join(dir, "spin.nc"), "--qfinal", qinit); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(dir, "q.nc")
	if _, err := runCLI(t, "route", "--rapid", basin, "--runoff", runoff, "--substep", "3600", "--param", "k=0.3", "--param", "x=0.2",
		"--qinit", qinit, "--quiet", "--out", q); err != nil {
		t.Fatal(err)
	}
	sim, _ := readQout(t, q)
	obs, err := data.ReadCSVTableFile(obsPath)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, obs.N)
	for k, id := range obs.IDs {
		o, s := obs.Series(0, k), sim[id]
		mean := 0.0
		for _, v := range o {
			mean += float64(v) / float64(len(o))
		}
		var num, den float64
		for i := range o {
			num += (float64(s[i]) - float64(o[i])) * (float64(s[i]) - float64(o[i]))
			den += (float64(o[i]) - mean) * (float64(o[i]) - mean)
		}
		want[k] = 1 - num/den
	}
	report := func(extra ...string) []float64 {
		out := filepath.Join(dir, "cal"+strconv.Itoa(len(extra)))
		args := append([]string{"calibrate", "--rapid", basin, "--runoff", runoff, "--observed", obsPath, "--substep", "3600",
			"--param", "k=0.3", "--param", "x=0.2", "--warmup", "0", "--optimizer", "lbfgs", "--epochs", "2", "--quiet", "--out", out}, extra...)
		if _, err := runCLI(t, args...); err != nil {
			t.Fatal(err)
		}
		return readReport(t, filepath.Join(out, "report.csv"))["nse_train_before"]
	}
	with, without := report("--qinit", qinit), report()
	for k := range want {
		if math.Abs(with[k]-want[k]) > 2e-6 || math.Abs(without[k]-want[k]) < 1e-4 {
			t.Errorf("gauge %d: prior NSE %v with --qinit, %v without; route --qinit gives %v", obs.IDs[k], with[k], without[k], want[k])
		}
	}
}
