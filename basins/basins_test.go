package basins

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestIndexRanges(t *testing.T) {
	for _, c := range []struct {
		in   []int
		want string
	}{
		{[]int{0}, "0"}, {[]int{3, 0, 1, 2}, "0-3"}, {[]int{0, 1, 2, 3, 7, 9, 10}, "0-3,7,9-10"}, {[]int{5, 7}, "5,7"},
	} {
		if got := indexRanges(slices.Clone(c.in)); got != c.want {
			t.Errorf("indexRanges(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestBundle: every task in exactly one bundle, bundles within the time
// target (a task longer than the target alone), one memory class each.
func TestBundle(t *testing.T) {
	var tasks []Task
	for k := 0; k < 40; k++ {
		tasks = append(tasks, Task{Basin: fmt.Sprintf("b%02d", k), Seconds: float64(1 + k%7*20), Request: int64(50+k*13) << 20})
	}
	for _, target := range []float64{0, 60, 200} {
		bs := Bundle(tasks, target)
		seen := make([]int, len(tasks))
		for _, b := range bs {
			var sum float64
			for _, i := range b {
				seen[i]++
				sum += tasks[i].Seconds
				if memClass(tasks[i].Request) != memClass(tasks[b[0]].Request) {
					t.Fatalf("target %g: bundle %v mixes memory classes", target, b)
				}
			}
			if len(b) > 1 && (target <= 0 || sum > target) {
				t.Fatalf("target %g: bundle %v takes %g s", target, b, sum)
			}
		}
		for i, n := range seen {
			if n != 1 {
				t.Fatalf("target %g: task %d in %d bundles", target, i, n)
			}
		}
		if target == 0 && len(bs) != len(tasks) {
			t.Fatalf("target 0: %d bundles for %d tasks", len(bs), len(tasks))
		}
		if target == 200 && len(bs) >= len(tasks)/2 {
			t.Fatalf("target 200 s: %d bundles for %d tasks of 1-121 s", len(bs), len(tasks))
		}
	}
	if memClass(1) != 64 || memClass(65<<20) != 128 || memClass(128<<20) != 128 || memClass(129<<20) != 256 {
		t.Fatal("memClass does not round up to powers of two of MiB from 64")
	}
}

func TestParseScontrol(t *testing.T) {
	out := "JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=x JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0\n" +
		"JobId=11 ArrayJobId=10 ArrayTaskId=1 JobName=x JobState=COMPLETED Reason=None ExitCode=0:0\n" +
		"JobId=10 ArrayJobId=10 ArrayTaskId=3-5%2 JobName=x JobState=PENDING Reason=JobArrayTaskLimit ExitCode=0:0\n" +
		"JobId=13 ArrayJobId=10 ArrayTaskId=0 JobName=x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15\n"
	got := parseScontrol(out)
	want := map[string]string{"10_2": "FAILED, exit code 1:0", "10_1": "COMPLETED", "10_0": "TIMEOUT, exit code 0:15"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: got %q, want %q", k, got[k], v)
		}
	}
}

// smallJob prepares a job over a generated 5-basin world.
func smallJob(t *testing.T, taskSeconds float64) *Job {
	t.Helper()
	dir := t.TempDir()
	if _, err := GenerateWorld(dir, WorldOptions{Basins: 5, Reaches: 3000, Days: 40, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	job, err := Prepare(PrepareOptions{Basins: dir, Out: filepath.Join(t.TempDir(), "job"), Runoff: "runoff.nc", TaskSeconds: taskSeconds})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Save(); err != nil {
		t.Fatal(err)
	}
	return job
}

// TestPrepare: tasks sized from the files, planned requests that grow
// with the basin, the job saved and loaded unchanged.
func TestPrepare(t *testing.T) {
	job := smallJob(t, 0)
	if len(job.Tasks) != 5 || len(job.Bundles) != 5 {
		t.Fatalf("%d tasks, %d bundles", len(job.Tasks), len(job.Bundles))
	}
	var reaches int
	for _, a := range job.Tasks {
		reaches += a.Reaches
		if a.Steps != 40 || a.Predicted <= 0 || a.Request != Request(a.Predicted, int64(a.Reaches)*40*4) {
			t.Fatalf("task %+v", a)
		}
		for _, b := range job.Tasks {
			if a.Reaches > b.Reaches && a.Predicted <= b.Predicted {
				t.Fatalf("%s (%d reaches) planned at %d bytes, %s (%d) at %d", a.Basin, a.Reaches, a.Predicted, b.Basin, b.Reaches, b.Predicted)
			}
		}
	}
	if reaches != 3000 {
		t.Fatalf("%d reaches, want 3000", reaches)
	}
	back, err := Load(job.Out)
	if err != nil || !back.Same(job) {
		t.Fatalf("Load: %v", err)
	}
	if _, err := Prepare(PrepareOptions{Basins: job.Basins, Out: t.TempDir(), Runoff: "nope.nc"}); err == nil || !strings.Contains(err.Error(), "nope.nc") {
		t.Fatalf("missing runoff: %v", err)
	}
	if _, err := Prepare(PrepareOptions{Basins: t.TempDir(), Out: t.TempDir(), Runoff: "r.nc"}); err == nil || !strings.Contains(err.Error(), "no basin") {
		t.Fatalf("empty folder: %v", err)
	}
}

// TestWriteSlurm: one array per memory class whose --mem is the largest
// planned request of its tasks, every bundle in exactly one --array, and a
// submit script that chains the gather job on all arrays.
func TestWriteSlurm(t *testing.T) {
	job := smallJob(t, 0)
	all := make([]int, len(job.Bundles))
	for i := range all {
		all[i] = i
	}
	p, err := job.WriteSlurm(SlurmOptions{Exe: "/opt/diffroute", CPUs: 2, Partition: "short", MaxParallel: 3, Merge: true}, all)
	if err != nil {
		t.Fatal(err)
	}
	reArray := regexp.MustCompile(`(?m)^#SBATCH --array=([0-9,-]+)%3$`)
	reMem := regexp.MustCompile(`(?m)^#SBATCH --mem=(\d+)M$`)
	seen := map[int]bool{}
	for _, a := range p.Arrays {
		b, err := os.ReadFile(a.Script)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		m := reArray.FindStringSubmatch(s)
		if m == nil || m[1] != indexRanges(a.Bundles) {
			t.Fatalf("%s: --array line wrong:\n%s", a.Script, s)
		}
		var want int64
		for _, k := range a.Bundles {
			if seen[k] {
				t.Fatalf("bundle %d in two arrays", k)
			}
			seen[k] = true
			for _, i := range job.Bundles[k] {
				want = max(want, job.Tasks[i].Request)
			}
		}
		mm := reMem.FindStringSubmatch(s)
		if mm == nil {
			t.Fatalf("%s: no --mem:\n%s", a.Script, s)
		}
		if got, _ := strconv.ParseInt(mm[1], 10, 64); got != (want+1<<20-1)>>20 {
			t.Fatalf("%s: --mem=%sM, largest planned request %d bytes", a.Script, mm[1], want)
		}
		for _, line := range []string{"#SBATCH --cpus-per-task=2", "#SBATCH --partition=short", "exec /opt/diffroute jobs task " + job.Out + ` "$SLURM_ARRAY_TASK_ID"`} {
			if !strings.Contains(s, line+"\n") {
				t.Fatalf("%s lacks %q:\n%s", a.Script, line, s)
			}
		}
	}
	if len(seen) != len(all) {
		t.Fatalf("%d of %d bundles in arrays", len(seen), len(all))
	}
	g, _ := os.ReadFile(p.Gather)
	sub, _ := os.ReadFile(p.Submit)
	if !strings.Contains(string(g), "jobs gather --merge "+job.Out) || strings.Count(string(sub), "sbatch --parsable") != len(p.Arrays)+1 ||
		!strings.Contains(string(sub), "--dependency=afterok:") {
		t.Fatalf("gather or submit script:\n%s\n%s", g, sub)
	}
}

// TestStatusFromFiles: without Slurm, a task is done only when its record
// matches its output; a failure record makes it failed; else missing.
func TestStatusFromFiles(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no squeue or scontrol
	job := smallJob(t, 0)
	// Task 0: a valid record; task 1: a record whose file changed; task 2 failed.
	for i := 0; i < 2; i++ {
		dir := job.taskDir(i)
		os.MkdirAll(dir, 0o755)
		out := filepath.Join(dir, OutputFile)
		os.WriteFile(out, []byte("discharge"), 0o644)
		r, err := job.record(i, out, 1, 1)
		if err == nil {
			t.Fatal("a file that is not netCDF was recorded")
		}
		sum, n, _ := fileSHA256(out)
		r = &Record{Basin: job.Tasks[i].Basin, File: job.Tasks[i].Basin + "/" + OutputFile, Bytes: n, SHA256: sum}
		b, _ := json.Marshal(r)
		os.WriteFile(filepath.Join(dir, DoneFile), b, 0o644)
	}
	os.WriteFile(filepath.Join(job.taskDir(1), OutputFile), []byte("Discharge"), 0o644) // same size, other bytes
	if _, ok := job.Done(1, false); !ok {
		t.Fatal("the quick check (size) should accept task 1")
	}
	if _, ok := job.Done(1, true); ok {
		t.Fatal("the sha256 check accepted a changed output")
	}
	os.MkdirAll(job.taskDir(2), 0o755)
	job.fail(2, "runoff.nc: broken", 1)
	st, err := job.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []State{StateDone, StateDone, StateFailed, StateMissing, StateMissing}
	for i, s := range st {
		if s.State != want[i] {
			t.Fatalf("task %d: %s (%s), want %s", i, s.State, s.Detail, want[i])
		}
	}
	if st[2].Detail != "runoff.nc: broken" {
		t.Fatalf("failure detail %q", st[2].Detail)
	}
	got := ToResubmit(st, job)
	w := []int{job.bundleOf(2), job.bundleOf(3), job.bundleOf(4)}
	slices.Sort(got)
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Fatalf("ToResubmit = %v, want bundles %v", got, w)
	}
	if _, err := job.Gather(false); err == nil || !strings.Contains(err.Error(), "not done") {
		t.Fatalf("Gather with tasks not done: %v", err)
	}
}

func (j *Job) bundleOf(i int) int {
	for b, ts := range j.Bundles {
		if slices.Contains(ts, i) {
			return b
		}
	}
	return -1
}

// TestExpectedWall: slots and the memory budget bound what runs at once.
func TestExpectedWall(t *testing.T) {
	four := []Task{{Request: 60, Seconds: 10}, {Request: 60, Seconds: 10}, {Request: 60, Seconds: 10}, {Request: 60, Seconds: 10}}
	for _, c := range []struct {
		slots  int
		budget int64
		wall   float64
		peak   int64
	}{
		{2, 0, 20, 120}, {4, 0, 10, 240}, {4, 100, 40, 60}, {4, 130, 20, 120}, {1, 0, 40, 60},
	} {
		wall, peak := ExpectedWall(four, c.slots, c.budget)
		if wall != c.wall || peak != c.peak {
			t.Errorf("%d slots, budget %d: wall %g s, peak %d; want %g s, %d", c.slots, c.budget, wall, peak, c.wall, c.peak)
		}
	}
	// Largest first: a long big task starts at once, the small ones fill the other slot.
	mixed := []Task{{Request: 10, Seconds: 5}, {Request: 10, Seconds: 5}, {Request: 90, Seconds: 10}}
	if wall, _ := ExpectedWall(mixed, 2, 100); wall != 10 {
		t.Errorf("mixed: wall %g s, want 10", wall)
	}
	// A task over the budget runs alone, reserving the budget.
	if wall, peak := ExpectedWall([]Task{{Request: 500, Seconds: 3}, {Request: 10, Seconds: 1}}, 4, 100); wall != 4 || peak != 100 {
		t.Errorf("over budget: wall %g s, peak %d; want 4 s, 100", wall, peak)
	}
}

// TestStatusRunning: a task whose route process is alive on this host is
// running; a stale record (a dead pid) is not.
func TestStatusRunning(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	job := smallJob(t, 0)
	host, _ := os.Hostname()
	for i, pid := range []int{os.Getpid(), 1 << 30} {
		os.MkdirAll(job.taskDir(i), 0o755)
		os.WriteFile(filepath.Join(job.taskDir(i), RunningFile), []byte(fmt.Sprintf("%s %d\n", host, pid)), 0o644)
	}
	st, err := job.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st[0].State != StateRunning || st[1].State != StateMissing {
		t.Fatalf("states %s (%s), %s (%s); want running, missing", st[0].State, st[0].Detail, st[1].State, st[1].Detail)
	}
}

// TestWorkerCrashFailsOnlyItsTask runs four tasks through job workers that
// die on task 1 (a stand-in for a crash or an out-of-memory kill): task 1
// fails with the worker's last error line, the others run on a new worker.
func TestWorkerCrashFailsOnlyItsTask(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "fake-worker.sh")
	script := `#!/bin/sh
while read -r line; do
  t=$(echo "$line" | sed 's/.*"task":\([0-9]*\).*/\1/')
  if [ "$t" = 1 ]; then echo "diffroute: boom in task 1" >&2; exit 3; fi
  echo "{\"task\":$t,\"skipped\":true}"
done
`
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	j := &Job{Version: 1, Out: dir, Tasks: []Task{{Basin: "a"}, {Basin: "b"}, {Basin: "c"}, {Basin: "d"}}}
	for i := range j.Tasks {
		j.Tasks[i].Request = int64(4-i) << 20 // run in order a, b, c, d
	}
	rep, err := j.RunLocal(context.Background(), LocalOptions{Exe: exe, Jobs: 1, Reuse: true})
	if err == nil || !strings.Contains(err.Error(), "basin b") || !strings.Contains(err.Error(), "boom in task 1") {
		t.Fatalf("error %v, want task b's failure with the worker's message", err)
	}
	if rep.Skipped != 3 || rep.Failed != 1 {
		t.Fatalf("%+v: want 3 tasks answered, 1 failed", rep)
	}
	if f, ok := j.Failed(1); !ok || !strings.Contains(f.Error, "boom") {
		t.Fatalf("failed.json of b: %+v %v", f, ok)
	}
	for _, i := range []int{0, 2, 3} {
		if _, ok := j.Failed(i); ok {
			t.Errorf("task %d recorded as failed", i)
		}
	}
}
