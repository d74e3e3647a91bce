package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/basins"
	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
)

// TestMain lets the test binary stand in for the diffroute command: the
// multi-basin executors run their route commands (and Slurm its array
// tasks) as children of this program, os.Executable.
func TestMain(m *testing.M) {
	if os.Getenv("DIFFROUTE_TEST_AS_CLI") == "1" {
		holdIfAsked()
		main()
		if os.Getenv("DIFFROUTE_TEST_HWM") == "1" {
			// The command's own peak: getrusage's of a child counts the
			// parent's memory it shared until exec.
			fmt.Fprintf(os.Stderr, "VMHWM %d\n", pipeline.ProcessMemory().Peak)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdIfAsked holds a command of one basin while a file exists, so that a
// test can catch its task running: DIFFROUTE_TEST_HOLD=basin=FILE holds the
// command whose arguments name a folder .../basin (its --rapid), after
// writing FILE.started.
func holdIfAsked() {
	basin, file, ok := strings.Cut(os.Getenv("DIFFROUTE_TEST_HOLD"), "=")
	if !ok || basin == "" {
		return
	}
	if !slices.ContainsFunc(os.Args, func(a string) bool { return filepath.Base(a) == basin }) {
		return
	}
	os.WriteFile(file+".started", nil, 0o644)
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(file); err != nil {
			return
		}
	}
}

// world generates (once per test) a 12-basin world of 300 to 3,000 reaches
// per basin, 60 daily steps.
func world(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "world")
	sizes, err := basins.GenerateWorld(dir, basins.WorldOptions{Basins: 12, Reaches: 14000, Days: 60, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("world of %d basins: %v reaches", len(sizes), sizes)
	return dir
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("diffroute %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// readQout reads a discharge file as reach id -> series.
func readQout(t *testing.T, path string) (map[int64][]float32, []string) {
	t.Helper()
	q, err := data.ReadRunoffNC(path, &data.NCOptions{Var: "Qout"})
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[int64][]float32, q.N)
	for i, id := range q.IDs {
		m[id] = q.Series(0, i)
	}
	return m, q.Times
}

// sameQout fails unless two discharge files hold the same reaches, times
// and values (max difference 0).
func sameQout(t *testing.T, a, b string) {
	t.Helper()
	qa, ta := readQout(t, a)
	qb, tb := readQout(t, b)
	if len(qa) != len(qb) || !slices.Equal(ta, tb) {
		t.Fatalf("%s and %s: %d and %d reaches, %d and %d steps", a, b, len(qa), len(qb), len(ta), len(tb))
	}
	var worst float64
	for id, sa := range qa {
		sb, ok := qb[id]
		if !ok {
			t.Fatalf("reach %d of %s is not in %s", id, a, b)
		}
		for k := range sa {
			worst = max(worst, math.Abs(float64(sa[k])-float64(sb[k])))
		}
	}
	if worst != 0 {
		t.Fatalf("%s and %s differ by up to %g", a, b, worst)
	}
}

// TestBasinsLocal routes a 12-basin world with the local executor under a
// memory budget and checks the merged discharge against one route command
// per basin (max difference 0), each task's measured peak RSS against its
// planned request, the pool's concurrent peak against the budget, and that
// a rerun routes nothing.
func TestBasinsLocal(t *testing.T) {
	t.Setenv("DIFFROUTE_TEST_AS_CLI", "1")
	w := world(t)
	out := filepath.Join(t.TempDir(), "job")
	const budget = 200 << 20
	msg := mustRun(t, "route", "--basins", w, "--runoff", "runoff.nc", "--out", out, "--merge", "--mem-budget", "200MiB", "--substep", "3600")
	t.Log(msg)
	job, err := basins.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.Tasks) != 12 {
		t.Fatalf("%d tasks, want 12", len(job.Tasks))
	}
	ref := t.TempDir()
	merged, _ := readQout(t, job.MergedFile(""))
	n := 0
	for i, task := range job.Tasks {
		r, ok := job.Done(i, true)
		if !ok {
			t.Fatalf("%s not done", task.Name())
		}
		if r.PeakRSS <= 0 || r.PeakRSS > task.Request {
			t.Errorf("%s: peak RSS %d bytes, planned request %d", task.Name(), r.PeakRSS, task.Request)
		}
		// The same basin through one plain route command.
		one := filepath.Join(ref, task.Basin+".nc")
		mustRun(t, "route", "--rapid", filepath.Join(w, task.Basin), "--runoff", filepath.Join(w, task.Basin, "runoff.nc"),
			"--out", one, "--substep", "3600", "--workers", "1", "--quiet")
		sameQout(t, one, filepath.Join(out, r.File))
		q, _ := readQout(t, one)
		for id, s := range q {
			if !slices.Equal(s, merged[id]) {
				t.Fatalf("reach %d of %s: merged discharge differs from its route", id, task.Basin)
			}
		}
		n += len(q)
	}
	if n != len(merged) {
		t.Fatalf("merged file has %d reaches, the basins %d", len(merged), n)
	}
	// The pool itself: rerun after removing three outputs, measuring the
	// concurrent peak.
	for _, b := range []string{"basin_002", "basin_007", "basin_011"} {
		os.Remove(filepath.Join(out, b, basins.DoneFile))
	}
	rep, err := job.RunLocal(context.Background(), basins.LocalOptions{Budget: budget, Jobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Done != 3 || rep.Skipped != 9 || rep.PeakRSS > budget || rep.PeakReserved > budget || rep.PeakRSS == 0 {
		t.Fatalf("rerun: %+v; want 3 routed, 9 skipped, peaks within %d", rep, budget)
	}
	if msg := mustRun(t, "route", "--basins", w, "--runoff", "runoff.nc", "--out", out, "--merge", "--substep", "3600"); !strings.Contains(msg, "0 routed, 12 skipped") {
		t.Fatalf("a second run routed again:\n%s", msg)
	}
}

// TestBasinsSlurm routes the world through a real one-node Slurm
// (scripts/slurm-local.sh) as a job array with a gather job, compares the
// merged discharge with the local executor's (max difference 0), then
// corrupts one basin's runoff: status names exactly that basin as failed,
// and after the fix --resume resubmits only it.
func TestBasinsSlurm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Slurm cluster")
	}
	if cudaEmulated {
		t.Skip("the Slurm executor has no device code: run by the untagged build")
	}
	conf := startSlurm(t)
	t.Setenv("SLURM_CONF", conf)
	t.Setenv("DIFFROUTE_TEST_AS_CLI", "1")
	w := world(t)
	tmp := t.TempDir()
	local := filepath.Join(tmp, "local")
	mustRun(t, "route", "--basins", w, "--runoff", "runoff.nc", "--out", local, "--merge", "--quiet")

	// A clean run.
	clean := filepath.Join(tmp, "slurm")
	msg := mustRun(t, "route", "--basins", w, "--runoff", "runoff.nc", "--out", clean, "--merge", "--executor", "slurm", "--submit")
	t.Log(msg)
	status := mustRun(t, "jobs", "status", "--wait", clean)
	if !strings.Contains(status, "12 tasks: 12 done") {
		t.Fatalf("status:\n%s", status)
	}
	sameQout(t, filepath.Join(local, basins.OutputFile), filepath.Join(clean, basins.OutputFile))
	if _, err := os.Stat(filepath.Join(clean, basins.ManifestCSV)); err != nil {
		t.Fatalf("the gather job wrote no manifest: %v", err)
	}
	script, err := os.ReadFile(filepath.Join(clean, "slurm", "submit.sh"))
	if err != nil || !strings.Contains(string(script), "--dependency=afterok:") {
		t.Fatalf("submit.sh: %v\n%s", err, script)
	}

	// One basin's runoff corrupted: a NaN in its series.
	bad := filepath.Join(w, "basin_004", "runoff.nc")
	orig, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	x, err := data.ReadRunoffNC(bad, nil)
	if err != nil {
		t.Fatal(err)
	}
	x.Data[len(x.Data)/2] = float32(math.NaN())
	if err := data.WriteQoutNC(bad, x, &data.QoutOptions{Var: "runoff"}); err != nil {
		t.Fatal(err)
	}
	faulty := filepath.Join(tmp, "faulty")
	mustRun(t, "route", "--basins", w, "--runoff", "runoff.nc", "--out", faulty, "--merge", "--executor", "slurm", "--submit", "--quiet")
	status = mustRun(t, "jobs", "status", "--wait", faulty)
	t.Log(status)
	job, err := basins.Load(faulty)
	if err != nil {
		t.Fatal(err)
	}
	st, err := job.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		want := basins.StateDone
		if s.Name == "basin_004" {
			want = basins.StateFailed
			if !strings.Contains(s.Detail, "runoff.nc") || !strings.Contains(s.Detail, "NaN") {
				t.Errorf("basin_004 failed with %q; want the file and the NaN named", s.Detail)
			}
		}
		if s.State != want {
			t.Fatalf("%s is %s (%s), want %s\n%s", s.Name, s.State, s.Detail, want, status)
		}
	}
	if _, err := os.Stat(filepath.Join(faulty, basins.ManifestCSV)); err == nil {
		t.Fatal("the gather job ran although a basin failed")
	}
	before := map[string][]byte{}
	for _, s := range st {
		before[s.Name], _ = os.ReadFile(filepath.Join(faulty, s.Name, basins.DoneFile))
	}
	// Fixed input, resumed: only basin_004 is resubmitted.
	if err := os.WriteFile(bad, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	msg = mustRun(t, "route", "--resume", "--out", faulty, "--merge", "--executor", "slurm", "--submit")
	t.Log(msg)
	if !strings.Contains(msg, "resubmitted 1 of 12 bundles") {
		t.Fatalf("resume did not resubmit exactly one bundle:\n%s", msg)
	}
	status = mustRun(t, "jobs", "status", "--wait", faulty)
	if !strings.Contains(status, "12 tasks: 12 done") {
		t.Fatalf("after resume:\n%s", status)
	}
	for name, b := range before {
		now, _ := os.ReadFile(filepath.Join(faulty, name, basins.DoneFile))
		if name != "basin_004" && !bytes.Equal(now, b) {
			t.Errorf("%s was rerun by --resume", name)
		}
	}
	sameQout(t, filepath.Join(clean, basins.OutputFile), filepath.Join(faulty, basins.OutputFile))

	// Side by side: calibrations as array tasks (one observed file for
	// all basins), and a route job one of whose array tasks is cancelled
	// by scancel while it runs.
	cw, allObs := calWorld(t)
	localCal := filepath.Join(tmp, "cal-local")
	mustRun(t, append([]string{"calibrate", "--basins", cw, "--runoff", "runoff.nc", "--observed", "observed.csv", "--out", localCal, "--quiet"}, calArgs...)...)
	slurmCal := filepath.Join(tmp, "cal-slurm")
	t.Log(mustRun(t, append([]string{"calibrate", "--basins", cw, "--runoff", "runoff.nc", "--observed", allObs, "--out", slurmCal, "--executor", "slurm", "--submit"}, calArgs...)...))

	hold := filepath.Join(tmp, "hold")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DIFFROUTE_TEST_HOLD", "basin_007="+hold)
	cancelled := filepath.Join(tmp, "cancelled")
	mustRun(t, "route", "--basins", w, "--runoff", "runoff.nc", "--out", cancelled, "--merge", "--executor", "slurm", "--submit", "--quiet")
	t.Setenv("DIFFROUTE_TEST_HOLD", "")
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(hold + ".started"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("basin_007's task did not start:\n%s", mustRun(t, "jobs", "status", cancelled))
		}
	}
	if job, err = basins.Load(cancelled); err != nil {
		t.Fatal(err)
	}
	subs, err := job.Submissions()
	if err != nil || len(subs) != 1 {
		t.Fatalf("submissions: %v %v", subs, err)
	}
	var task string
	for _, a := range subs[0].Arrays {
		for _, b := range a.Bundles {
			if i := job.Bundles[b][0]; job.Tasks[i].Basin == "basin_007" {
				task = fmt.Sprintf("%s_%d", a.JobID, b)
			}
		}
	}
	if out, err := exec.Command("scancel", task).CombinedOutput(); err != nil || task == "" {
		t.Fatalf("scancel %q: %v %s", task, err, out)
	}
	status = mustRun(t, "jobs", "status", "--wait", cancelled)
	t.Log(status)
	if st, err = job.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Name == "basin_007" {
			if s.State != basins.StateFailed || !strings.Contains(s.Detail, "CANCELLED") {
				t.Fatalf("basin_007 is %s (%s), want failed, cancelled\n%s", s.State, s.Detail, status)
			}
		} else if s.State != basins.StateDone {
			t.Fatalf("%s is %s (%s), want done\n%s", s.Name, s.State, s.Detail, status)
		}
	}
	if _, err := os.Stat(filepath.Join(cancelled, basins.ManifestCSV)); err == nil {
		t.Fatal("the gather job ran although a task was cancelled")
	}
	before = map[string][]byte{}
	for _, s := range st {
		before[s.Name], _ = os.ReadFile(filepath.Join(cancelled, s.Name, basins.DoneFile))
	}
	os.Remove(hold)
	msg = mustRun(t, "route", "--resume", "--out", cancelled, "--merge", "--executor", "slurm", "--submit")
	if !strings.Contains(msg, "resubmitted 1 of 12 bundles") {
		t.Fatalf("resume did not resubmit exactly the cancelled bundle:\n%s", msg)
	}
	if status = mustRun(t, "jobs", "status", "--wait", cancelled); !strings.Contains(status, "12 tasks: 12 done") {
		t.Fatalf("after resume:\n%s", status)
	}
	for name, b := range before {
		if now, _ := os.ReadFile(filepath.Join(cancelled, name, basins.DoneFile)); name != "basin_007" && !bytes.Equal(now, b) {
			t.Errorf("%s was rerun by --resume", name)
		}
	}
	sameQout(t, filepath.Join(clean, basins.OutputFile), filepath.Join(cancelled, basins.OutputFile))

	// The calibrations: the same parameters and reports as the local
	// executor's, and the gather job's summary.
	if status = mustRun(t, "jobs", "status", "--wait", slurmCal); !strings.Contains(status, "3 tasks: 3 done") {
		t.Fatalf("calibration job:\n%s", status)
	}
	t.Log(status)
	for _, b := range []string{"b1", "b2", "b3"} {
		sameFiles(t, filepath.Join(localCal, b), filepath.Join(slurmCal, b), "k.csv", "x.csv", "report.csv")
	}
	for _, name := range []string{basins.ManifestCSV, basins.SummaryFile} {
		if _, err := os.Stat(filepath.Join(slurmCal, name)); err != nil {
			t.Fatalf("the calibration's gather job wrote no %s: %v", name, err)
		}
	}
}

// startSlurm starts a one-node Slurm with scripts/slurm-local.sh (which
// installs it when missing) and stops it when the test ends; it skips the
// test when Slurm cannot be installed or started here.
func startSlurm(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs("../../scripts/slurm-local.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "diffroute-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "SLURM_LOCAL_DIR="+dir)
	t.Cleanup(func() {
		cmd := exec.Command(script, "stop")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("stopping Slurm: %v\n%s", err, out)
		}
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "start")
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("Slurm cannot be started here (%v): %s", err, strings.TrimSpace(stderr.String()))
	}
	for _, line := range strings.Split(string(out), "\n") {
		if conf, ok := strings.CutPrefix(line, "SLURM_CONF="); ok {
			return conf
		}
	}
	t.Fatalf("slurm-local.sh start printed no SLURM_CONF:\n%s", out)
	return ""
}

// TestBasinsMembersAndSharedRunoff: ensemble members as tasks (basin ×
// member, {member} in --runoff), and one runoff file covering every basin.
// Muskingum routing is linear, so a member with doubled runoff must give
// exactly doubled discharge; the shared file must give the per-basin files'
// discharge exactly.
func TestBasinsMembersAndSharedRunoff(t *testing.T) {
	t.Setenv("DIFFROUTE_TEST_AS_CLI", "1")
	w := filepath.Join(t.TempDir(), "world")
	if _, err := basins.GenerateWorld(w, basins.WorldOptions{Basins: 4, Reaches: 2400, Days: 30, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	plain := filepath.Join(tmp, "plain")
	mustRun(t, "route", "--basins", w, "--runoff", "runoff.nc", "--out", plain, "--merge", "--quiet")

	// Members a (the runoff) and b (twice the runoff); and the world's runoff in one file.
	list, _ := basins.Discover(w)
	var all []*diffroute.DataTensor
	for _, b := range list {
		x, err := data.ReadRunoffNC(filepath.Join(b.Dir, "runoff.nc"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := data.WriteQoutNC(filepath.Join(b.Dir, "runoff_a.nc"), x, &data.QoutOptions{Var: "runoff"}); err != nil {
			t.Fatal(err)
		}
		all = append(all, x.Clone())
		for k := range x.Data {
			x.Data[k] *= 2
		}
		if err := data.WriteQoutNC(filepath.Join(b.Dir, "runoff_b.nc"), x, &data.QoutOptions{Var: "runoff"}); err != nil {
			t.Fatal(err)
		}
	}
	ens := filepath.Join(tmp, "ens")
	mustRun(t, "route", "--basins", w, "--runoff", "runoff_{member}.nc", "--members", "a,b", "--out", ens, "--merge", "--quiet")
	job, err := basins.Load(ens)
	if err != nil || len(job.Tasks) != 8 {
		t.Fatalf("ensemble job: %v", err)
	}
	sameQout(t, filepath.Join(plain, basins.OutputFile), job.MergedFile("a"))
	qa, _ := readQout(t, job.MergedFile("a"))
	qb, _ := readQout(t, job.MergedFile("b"))
	for id, s := range qa {
		for k, v := range s {
			if qb[id][k] != 2*v {
				t.Fatalf("reach %d step %d: member b %g, twice member a %g", id, k, qb[id][k], 2*v)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(ens, list[0].Name, "b", basins.OutputFile)); err != nil {
		t.Fatalf("member output not in <basin>/<member>: %v", err)
	}

	// One file for every basin: cut per basin by reach id.
	ids := []int64{}
	for _, x := range all {
		ids = append(ids, x.IDs...)
	}
	world := diffroute.NewDataTensor(1, ids, all[0].T)
	world.Times, world.Step, world.Units = all[0].Times, all[0].Step, all[0].Units
	off := 0
	for _, x := range all {
		off += copy(world.Data[off:], x.Data)
	}
	shared := filepath.Join(tmp, "world_runoff.nc")
	if err := data.WriteQoutNC(shared, world, &data.QoutOptions{Var: "runoff"}); err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(tmp, "shared")
	mustRun(t, "route", "--basins", w, "--runoff", shared, "--out", one, "--merge", "--quiet")
	sameQout(t, filepath.Join(plain, basins.OutputFile), filepath.Join(one, basins.OutputFile))
	job, _ = basins.Load(one)
	for _, task := range job.Tasks {
		if task.Request < int64(len(ids))*30*4 {
			t.Fatalf("%s: request %d does not count reading the whole shared file", task.Basin, task.Request)
		}
	}
}

// TestBasinsFlagErrors: flag mistakes are usage errors naming the flag,
// found before any basin is read.
func TestBasinsFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--basins", "w", "--runoff", "r.nc"}, "--out"},
		{[]string{"--basins", "w", "--runoff", "r.nc", "--out", "o", "--executor", "pbs"}, "--executor"},
		{[]string{"--basins", "w", "--runoff", "r.nc", "--out", "o", "--submit"}, "--submit needs --executor slurm"},
		{[]string{"--basins", "w", "--runoff", "r.nc", "--out", "o", "--out-format", "nc4"}, "--out-format does not apply"},
		{[]string{"--basins", "w", "--runoff", "r.nc", "--out", "o", "--rapid", "x"}, "--rapid does not apply"},
		{[]string{"--basins", "w", "--runoff", "r.nc", "--out", "o", "--cpus-per-task", "0"}, "--cpus-per-task"},
		{[]string{"--resume", "--out", t.TempDir()}, "no job here"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"route"}, c.args...), &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("route %s: %v, want an error containing %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// Ctrl-C in a multi-basin run says what it leaves behind (finished basins)
// and how to go on, not that nothing was written; other errors pass as they
// are, and a single run keeps its own wording.
func TestBasinsInterruptedWording(t *testing.T) {
	other := errors.New("basin_002: no runoff")
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"cancelled route", fmt.Errorf("basins: %w", context.Canceled), "interrupted: basins finished before it keep their output in job; 'diffroute jobs status job' lists them and 'diffroute route --resume --out job' runs the rest"},
		{"worker's words", errors.New("task 3: context canceled"), "'diffroute route --resume --out job'"},
		{"other error", other, other.Error()},
	} {
		got := userError(jobInterrupted("route", "job", c.err))
		if got == nil || !strings.Contains(got.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, got, c.want)
		}
	}
	if got := userError(context.Canceled); !strings.Contains(got.Error(), "no output was written") {
		t.Errorf("single run: %v", got)
	}
	// End to end: a run cancelled before it starts.
	w := world(t)
	out := filepath.Join(t.TempDir(), "job")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := run(ctx, []string{"route", "--quiet", "--basins", w, "--runoff", "runoff.nc", "--out", out, "--substep", "3600"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "--resume --out "+out) {
		t.Errorf("cancelled --basins run: %v", err)
	}
}
