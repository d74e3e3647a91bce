package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// copyXX9 copies the RAPID files of rapid_xx9 into a fresh folder.
func copyXX9(t *testing.T, dir string) string {
	t.Helper()
	rapid := filepath.Join(dir, "rapid")
	if err := os.MkdirAll(rapid, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rapid_connect.csv", "riv_bas_id.csv", "k.csv", "x.csv", "m3_riv.csv"} {
		if err := os.WriteFile(filepath.Join(rapid, f), must(os.ReadFile(filepath.Join(xx9, f))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return rapid
}

// expectErr runs the CLI and checks the error: its kind, that it mentions
// every want, that it is one line, and that it is not a Go panic.
func expectErr(t *testing.T, usage bool, args []string, wants ...string) {
	t.Helper()
	_, err := runCLI(t, args...)
	if err == nil {
		t.Fatalf("%v: no error", args)
	}
	var ue usageError
	if errors.As(err, &ue) != usage {
		t.Errorf("%v: usage error = %v, want %v (%v)", args, !usage, usage, err)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v: error %q does not mention %q", args, err, w)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("%v: error spans several lines: %q", args, err)
	}
}

// Mistyped choices are refused before any file is read, naming the flag and
// the values it takes: here the RAPID folder is broken, and the flag error
// must still be the one reported (it used to come after reading everything,
// from the library, without the flag's name, after a Muskingum warning).
func TestRouteFlagValuesCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	rapid := copyXX9(t, dir)
	os.WriteFile(filepath.Join(rapid, "rapid_connect.csv"), []byte("garbage\n"), 0o644)
	nc := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	qinit := filepath.Join(xx9, "qinit_erai_t511_3hr_20030121to20030122.csv")
	out := filepath.Join(dir, "q.nc")
	base := []string{"route", "--quiet", "--rapid", rapid, "--runoff", nc, "--out", out}
	for _, c := range []struct {
		extra []string
		wants []string
	}{
		{[]string{"--irf", "musk"}, []string{`--irf "musk": unknown IRF`, "muskingum", "diffroute irfs"}},
		{[]string{"--method", "fast"}, []string{`--method "fast"`, "recursive or kernel"}},
		{[]string{"--average", "mid"}, []string{`--average "mid"`, "start or end"}},
		{[]string{"--lateral", "x"}, []string{`--lateral "x"`, "rapid or lti"}},
		{[]string{"--sampling", "max"}, []string{`--sampling "max"`, "avg or sample"}},
		{[]string{"--compat", "rapid"}, []string{`--compat "rapid"`, "diffroute"}},
		{[]string{"--compat", "diffroute", "--method", "recursive"}, []string{"--compat diffroute", "--method kernel"}},
		{[]string{"--qinit", qinit, "--method", "kernel"}, []string{"--qinit", "recursive"}},
		{[]string{"--workers", "-2"}, []string{"--workers -2", "≥ 0"}},
		{[]string{"--fft-pad", "0"}, []string{"--fft-pad 0", "≥ 1"}},
		{[]string{"--max-nodes", "-1"}, []string{"--max-nodes -1"}},
		{[]string{"--max-paths", "-1"}, []string{"--max-paths -1"}},
		{[]string{"--time-chunk", "-5"}, []string{"--time-chunk -5"}},
		{[]string{"--mem-budget", "lots"}, []string{"--mem-budget"}},
		{[]string{"--runoff-units", "mm"}, []string{`--runoff-units "mm"`, "m3 (volume per runoff step", "m3/s"}},
		{[]string{"--weights", "w.feather"}, []string{"--weights", "--pixel-runoff"}},
	} {
		expectErr(t, true, append(append([]string{}, base...), c.extra...), c.wants...)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("an output file was written")
	}
}

// A sub-step that does not divide the runoff step names both, says where
// the step came from, and suggests the nearest sub-steps that do.
func TestSubStepAdvice(t *testing.T) {
	dir := t.TempDir()
	nc := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	out := filepath.Join(dir, "q.nc")
	expectErr(t, true, []string{"route", "--quiet", "--rapid", xx9, "--runoff", nc, "--substep", "700", "--out", out},
		"--substep 700 does not divide the runoff step of 10800 s", "time spacing", "try --substep 675 or 720")
	expectErr(t, true, []string{"route", "--quiet", "--rapid", xx9, "--runoff", filepath.Join(xx9, "m3_riv.csv"), "--runoff-units", "m3", "--step", "10800", "--substep", "7", "--out", out},
		"from --step", "try --substep 6 or 8")
	expectErr(t, true, []string{"route", "--quiet", "--rapid", xx9, "--runoff", nc, "--substep", "20000", "--out", out},
		"--substep 20000 is longer than the runoff step of 10800 s", "try --substep 10800")
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left behind: %s", entries[0].Name())
	}
}

func secs(s float64) time.Duration { return must(secondsFlag("x", s)) }

// An IRF with several parameters names all the missing ones at once, with
// the flags to give them.
func TestMissingParamsListed(t *testing.T) {
	nc := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	expectErr(t, true, []string{"route", "--quiet", "--rapid", xx9, "--runoff", nc, "--irf", "hayami", "--param", "D=1", "--out", filepath.Join(t.TempDir(), "q.nc")},
		"IRF hayami needs parameters L and c", "--param L=VALUE --param c=VALUE", "runoff steps", "rivid,L,c")
}

// Runoff that lacks reaches of the network names the file and the first
// missing reach (the library's message named neither the file nor the
// fix); --outputs needs only the reaches it routes.
func TestRunoffCoverage(t *testing.T) {
	dir := t.TempDir()
	rapid := copyXX9(t, dir)
	csv := string(must(os.ReadFile(filepath.Join(xx9, "m3_riv.csv"))))
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(csv), "\n") {
		f := strings.Split(line, ",")
		b.WriteString(strings.Join(append(f[:1:1], f[2:]...), ",") + "\n") // drop reach 17880258
	}
	runoff := filepath.Join(dir, "partial.csv")
	os.WriteFile(runoff, []byte(b.String()), 0o644)
	base := []string{"route", "--quiet", "--rapid", rapid, "--runoff", runoff, "--runoff-units", "m3", "--step", "10800", "--substep", "900"}
	out := filepath.Join(dir, "q.csv")
	expectErr(t, false, append(base, "--out", out), "partial.csv: no runoff for 1 of the network's 9 reaches (first: reach 17880258)", "--runoff and --rapid")
	expectErr(t, false, append(base, "--time-chunk", "4", "--out", filepath.Join(dir, "q.nc")), "partial.csv: no runoff for 1")
	if _, err := os.Stat(out); err == nil {
		t.Error("wrote an output file")
	}
	// 17880830 is a headwater reach: it does not need 17880258's runoff.
	ids := filepath.Join(dir, "ids.txt")
	os.WriteFile(ids, []byte("17880830\n"), 0o644)
	if _, err := runCLI(t, append(base, "--outputs", ids, "--out", out)...); err != nil {
		t.Errorf("--outputs of a reach the runoff covers: %v", err)
	}
	// 17880298 (the outlet) drains 17880258: refused, naming the file.
	os.WriteFile(ids, []byte("17880298\n"), 0o644)
	expectErr(t, false, append(base, "--outputs", ids, "--out", filepath.Join(dir, "q2.csv")), "partial.csv: no runoff for 1 of the network's", "17880258")
}

// Missing inputs are reported with their flag, before anything is read.
func TestMissingInputs(t *testing.T) {
	dir := t.TempDir()
	nc := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	out := filepath.Join(dir, "q.nc")
	route := func(extra ...string) []string {
		return append([]string{"route", "--quiet", "--out", out}, extra...)
	}
	expectErr(t, false, route("--rapid", filepath.Join(dir, "nope"), "--runoff", nc), "--rapid", "nope: no such folder")
	expectErr(t, true, route("--rapid", nc, "--runoff", nc), "--rapid", "is a file", "rapid_connect.csv")
	expectErr(t, false, route("--rapid", dir, "--runoff", nc), "--rapid", "no rapid_connect.csv there")
	expectErr(t, false, route("--rapid", xx9, "--runoff", filepath.Join(dir, "r.nc")), "--runoff", "r.nc: no such file")
	expectErr(t, true, route("--rapid", xx9, "--runoff", filepath.Join(dir, "r.txt")), "--runoff", "r.txt: want a netCDF (.nc), netCDF-4 (.nc4), CSV (.csv) or Parquet (.parquet) file")
	expectErr(t, true, route("--rapid", xx9, "--runoff", dir+"/"), "--runoff")
	expectErr(t, false, route("--rapid", xx9, "--runoff", nc, "--qinit", filepath.Join(dir, "qinit.csv")), "--qinit", "qinit.csv: no such file")
	expectErr(t, false, route("--rapid", xx9, "--runoff", nc, "--params", filepath.Join(dir, "p.csv")), "--params", "p.csv: no such file")
	expectErr(t, false, route("--rapid", xx9, "--runoff", nc, "--outputs", filepath.Join(dir, "g.txt")), "--outputs", "g.txt: no such file")
	expectErr(t, false, []string{"plan", "--rapid", filepath.Join(dir, "nope"), "--steps", "10", "--mem-budget", "1GiB"}, "plan: --rapid", "no such folder")
}

// An --out that cannot be written is refused before routing, naming the
// flag and the folder (it used to fail after routing, naming a temporary
// file), and the check leaves nothing behind.
func TestOutputNotWritable(t *testing.T) {
	dir := t.TempDir()
	nc := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	file := filepath.Join(dir, "afile")
	os.WriteFile(file, []byte("x"), 0o644)
	folder := filepath.Join(dir, "folder.nc")
	os.Mkdir(folder, 0o755)
	route := []string{"route", "--quiet", "--rapid", xx9, "--runoff", nc, "--substep", "900"}
	expectErr(t, true, append(route, "--out", folder), "--out", "is a folder", filepath.Join(folder, "Qout.nc"))
	expectErr(t, true, append(route, "--out", filepath.Join(file, "sub", "q.nc")), "--out", file+" is a file, not a folder")
	expectErr(t, true, []string{"demo", "--quiet", "--basin", "../../testdata/demo_basin", "--out", file}, "demo: --out", "is a file; give a folder")
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o555)
		expectErr(t, false, append(route, "--out", filepath.Join(ro, "new", "q.nc")), "--out", "cannot write in folder "+ro, "permission denied")
		expectErr(t, false, []string{"demo", "--quiet", "--basin", "../../testdata/demo_basin", "--out", filepath.Join(ro, "demo")}, "demo: --out", "cannot write in folder "+ro)
	}
	// A folder that does not exist yet is created, and nothing else is left.
	out := filepath.Join(dir, "new", "sub", "q.nc")
	if _, err := runCLI(t, append(route, "--out", out)...); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "new", "sub")} {
		for _, e := range must(os.ReadDir(d)) {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("left behind: %s", filepath.Join(d, e.Name()))
			}
		}
	}
}

// plan, bench and demo check their choices too, and a budget too small to
// plan says what to do.
func TestOtherCommandsFlagValues(t *testing.T) {
	expectErr(t, true, []string{"bench", "--method", "fast"}, `bench: --method "fast"`, "recursive, kernel or both")
	expectErr(t, true, []string{"bench", "--irf", "nosuch"}, `bench: --irf "nosuch": unknown IRF`, "pure_lag")
	expectErr(t, true, []string{"plan", "--reaches", "100", "--steps", "10", "--mem-budget", "1GiB", "--method", "fast"}, `plan: --method "fast"`)
	expectErr(t, false, []string{"plan", "--rapid", xx9, "--steps", "10", "--mem-budget", "1KiB"}, "plan: --mem-budget 1KiB: no strategy fits", "raise --mem-budget")
	nc := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	expectErr(t, false, []string{"route", "--quiet", "--rapid", xx9, "--runoff", nc, "--mem-budget", "1KiB", "--out", filepath.Join(t.TempDir(), "q.nc")}, "route: --mem-budget 1.0 KiB", "raise --mem-budget")
	expectErr(t, true, []string{"demo", "--method", "fast", "--out", t.TempDir()}, `demo: --method "fast"`)
}

// Help ends with examples; irfs (no flags) prints no empty flag list; the
// irfs listing is stable.
func TestHelpExamplesAndIRFs(t *testing.T) {
	for _, c := range commands {
		out, err := runCLI(t, c.name, "-h")
		if !errors.Is(err, flag.ErrHelp) {
			t.Fatal(err)
		}
		if !strings.Contains(out, "\nexamples:\n  diffroute "+c.name) && !strings.Contains(out, "\nexamples:\n  #") {
			t.Errorf("%s -h has no examples:\n%s", c.name, out)
		}
		if strings.Contains(out, "flags:\n\n") || strings.HasSuffix(out, "flags:\n") {
			t.Errorf("%s -h prints an empty flag list:\n%s", c.name, out)
		}
	}
	first, _ := runCLI(t, "irfs")
	for i := 0; i < 5; i++ {
		if again, _ := runCLI(t, "irfs"); again != first {
			t.Fatalf("irfs output changes between runs:\n%s\n%s", first, again)
		}
	}
	if !strings.Contains(first, "(n defaults to 3)") {
		t.Errorf("irfs lacks nash_cascade's default:\n%s", first)
	}
}

// The examples in 'route -h', 'plan -h' and 'generate -h' run as printed
// (paths moved to the test's folders).
func TestHelpExamplesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("routes the demo basin several times")
	}
	dir := t.TempDir()
	for _, name := range []string{"route", "plan", "generate", "calibrate"} {
		for _, cmd := range exampleCommands(examples[name]) {
			args := make([]string, len(cmd))
			for i, a := range cmd {
				a = strings.Replace(a, "testdata/", "../../testdata/", 1)
				a = strings.Replace(a, "out/", dir+"/", 1)
				args[i] = strings.Replace(a, "/tmp/basin", filepath.Join(dir, "basin"), 1)
			}
			if args[0] == "route" || args[0] == "calibrate" {
				args = append(args, "--quiet")
			}
			run := func(args ...string) error { _, err := runCLI(t, args...); return err }
			if (args[0] == "route" || args[0] == "plan") && slices.Contains(args, "--mem-budget") {
				// --mem-budget bounds the whole process: a command's own.
				run = func(args ...string) error { _, _, err := runChildCLI(t, args...); return err }
			}
			if err := run(args...); err != nil {
				t.Errorf("example %q: %v", strings.Join(cmd, " "), err)
			}
		}
	}
}

// exampleCommands extracts the diffroute command lines of an examples text,
// joining backslash continuations and dropping comments.
func exampleCommands(text string) [][]string {
	var cmds [][]string
	var cur string
	for _, line := range strings.Split(text, "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur += cont + " "
			continue
		}
		cur += line
		if f := strings.Fields(cur); len(f) > 1 && f[0] == "diffroute" {
			cmds = append(cmds, f[1:])
		}
		cur = ""
	}
	return cmds
}

// A streamed run that fails part-way ends its progress bar with a failure
// line, not a check mark, and leaves no output file.
func TestProgressShowsFailure(t *testing.T) {
	dir := t.TempDir()
	rapid := copyXX9(t, dir)
	csv := strings.TrimSpace(string(must(os.ReadFile(filepath.Join(xx9, "m3_riv.csv")))))
	lines := strings.Split(csv, "\n")
	f := strings.Split(lines[len(lines)-1], ",")
	f[2] = "NaN" // the last step: chunks before it route fine
	lines[len(lines)-1] = strings.Join(f, ",")
	runoff := filepath.Join(dir, "late_nan.csv")
	os.WriteFile(runoff, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	var bar strings.Builder
	progressOut = &bar
	defer func() { progressOut = os.Stderr }()
	out := filepath.Join(dir, "q.nc")
	for _, extra := range [][]string{{"--time-chunk", "4"}, {"--max-nodes", "3"}} {
		bar.Reset()
		args := append([]string{"route", "--rapid", rapid, "--runoff", runoff, "--runoff-units", "m3", "--step", "10800", "--substep", "900", "--out", out}, extra...)
		_, err := runCLI(t, args...)
		if extra[0] == "--max-nodes" { // runoff is checked whole before routing: no bar
			if err == nil || !strings.Contains(err.Error(), "NaN") {
				t.Errorf("%v: err %v", extra, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "late_nan.csv: runoff of reach") {
			t.Fatalf("%v: err %v", extra, err)
		}
		if strings.Contains(bar.String(), "✔") || !strings.Contains(bar.String(), "✘ routing chunks failed") {
			t.Errorf("%v: progress after a failure:\n%s", extra, bar.String())
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed run left its output file")
	}
	// A run that succeeds still ends with the check mark.
	bar.Reset()
	if _, err := runCLI(t, "route", "--rapid", xx9, "--runoff", filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc"), "--substep", "900", "--time-chunk", "4", "--out", out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(bar.String(), "✔ routing chunks: 4") {
		t.Errorf("progress of a successful run:\n%s", bar.String())
	}
}

// Absurd sizes of a generated network end in an error naming the flag, not in
// an out-of-memory crash: each case here would try to allocate terabytes.
func TestGeneratedSizeBounded(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "--reaches", "9000000000000", "--steps", "10", "--mem-budget", "1GiB"}, "plan: --reaches 9000000000000: want at most"},
		{[]string{"generate", "--out", t.TempDir(), "--reaches", "9000000000000", "--days", "2"}, "generate: --reaches 9000000000000: want at most"},
		{[]string{"generate", "--out", t.TempDir(), "--reaches", "1000000", "--days", "100000000"}, "generate: --reaches 1000000 × 100000000 steps"},
		{[]string{"bench", "--reaches", "9000000000000"}, "bench: --reaches 9000000000000"},
		{[]string{"bench", "--reaches", "100", "--kernel-reaches", "9000000000000"}, "bench: --kernel-reaches 9000000000000"},
	} {
		expectErr(t, true, tc.args, tc.want)
	}
}

// An output that would land on an input file is refused before any work,
// and the input is left as it was: route's --out, grad's --out and
// --runoff-grad, and a calibrate --out folder holding its inputs (the
// --rapid folder: k.csv and x.csv are the prior).
func TestOutputIsNotAnInput(t *testing.T) {
	basin := filepath.Join(t.TempDir(), "basin")
	genBasin(t, basin, 30, 10, 2, 7)
	in := func(f string) string { return filepath.Join(basin, f) }
	common := []string{"--quiet", "--rapid", basin, "--runoff", in("runoff.nc")}
	withObs := append(append([]string(nil), common...), "--observed", in("observed.csv"))
	before := map[string][]byte{}
	for _, f := range []string{"runoff.nc", "observed.csv", "k.csv", "x.csv"} {
		before[f] = must(os.ReadFile(in(f)))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append([]string{"route"}, append(common, "--out", in("runoff.nc"))...), "route: --out " + in("runoff.nc") + " is the input file"},
		{append([]string{"grad"}, append(withObs, "--out", in("observed.csv"))...), "grad: --out " + in("observed.csv") + " is the input file"},
		{append([]string{"grad"}, append(withObs, "--out", filepath.Join(t.TempDir(), "g.csv"), "--runoff-grad", in("runoff.nc"))...), "grad: --runoff-grad"},
		{append([]string{"calibrate"}, append(withObs, "--epochs", "1", "--out", basin)...), "calibrate: --out " + basin + " would replace the input file " + in("k.csv")},
	} {
		expectErr(t, true, c.args, c.want)
	}
	for f, b := range before {
		if !bytes.Equal(must(os.ReadFile(in(f))), b) {
			t.Errorf("%s was changed", f)
		}
	}
}
