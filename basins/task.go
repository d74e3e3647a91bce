package basins

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/diffroute-go/route/data"
)

// Output file, record and failure names in a task's folder.
const (
	OutputFile = "Qout.nc"
	DoneFile   = "done.json"
	FailedFile = "failed.json"
	LogFile    = "route.log" // calibrate.log for a calibration
	// RunningFile holds "host pid" of a task's route process while it runs.
	RunningFile = "running"
)

// Record is what a finished task leaves next to its output (done.json) and
// what the manifest lists.
type Record struct {
	Basin   string  `json:"basin"`
	Member  string  `json:"member,omitempty"`
	Reaches int     `json:"reaches"`
	Steps   int     `json:"steps"`
	First   string  `json:"first"` // first and last time labels of the output
	Last    string  `json:"last"`
	File    string  `json:"file"` // relative to the job folder
	Bytes   int64   `json:"bytes"`
	SHA256  string  `json:"sha256"`
	PeakRSS int64   `json:"peak_rss_bytes,omitempty"` // of the route (calibrate) process
	Gauges  int     `json:"gauges,omitempty"`         // of a calibration
	Seconds float64 `json:"seconds"`
	Host    string  `json:"host,omitempty"`
}

// Failure is what a failed task leaves (failed.json).
type Failure struct {
	Basin    string `json:"basin"`
	Member   string `json:"member,omitempty"`
	Error    string `json:"error"`
	ExitCode int    `json:"exit_code"`
	When     string `json:"when"`
	Host     string `json:"host,omitempty"`
}

func (j *Job) taskDir(i int) string { return filepath.Join(j.Out, j.Tasks[i].Dir()) }

// Done returns task i's record when its output is valid: the record exists
// and names an output file of the recorded size (and, with verify, the
// recorded sha256).
func (j *Job) Done(i int, verify bool) (*Record, bool) {
	dir := j.taskDir(i)
	b, err := os.ReadFile(filepath.Join(dir, DoneFile))
	if err != nil {
		return nil, false
	}
	var r Record
	if json.Unmarshal(b, &r) != nil || r.Basin != j.Tasks[i].Basin || r.Member != j.Tasks[i].Member {
		return nil, false
	}
	path := filepath.Join(j.Out, r.File)
	fi, err := os.Stat(path)
	if err != nil || fi.Size() != r.Bytes {
		return nil, false
	}
	if verify {
		sum, _, err := fileSHA256(path)
		if err != nil || sum != r.SHA256 {
			return nil, false
		}
	}
	if j.IsCalibration() && !fileExists(filepath.Join(dir, ReportFile)) {
		return nil, false
	}
	return &r, true
}

// Running reports whether task i's route process runs on this host now
// (a record left by a process that died is ignored).
func (j *Job) Running(i int) (string, bool) {
	b, err := os.ReadFile(filepath.Join(j.taskDir(i), RunningFile))
	if err != nil {
		return "", false
	}
	host, pid, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	me, _ := os.Hostname()
	if !ok || host != me {
		return "", false
	}
	if _, err := os.Stat("/proc/" + pid); err != nil {
		return "", false
	}
	return "route process " + pid + " on " + host, true
}

// Failed returns task i's last failure, if its folder holds one.
func (j *Job) Failed(i int) (*Failure, bool) {
	b, err := os.ReadFile(filepath.Join(j.taskDir(i), FailedFile))
	if err != nil {
		return nil, false
	}
	var f Failure
	if json.Unmarshal(b, &f) != nil {
		return &Failure{Basin: j.Tasks[i].Basin, Member: j.Tasks[i].Member, Error: "unreadable " + FailedFile}, true
	}
	return &f, true
}

// TaskOptions tune RunTask.
type TaskOptions struct {
	// Exe is the diffroute command (default: this program, os.Executable).
	Exe string
	// Args are added after the job's route flags (e.g. --workers, --mem-budget).
	Args []string
	// Started is called with the route process's pid once it runs.
	Started func(pid int)
	// Env, when not nil, is the route process's environment.
	Env []string
	// InProcess, when set, runs the command in this process instead of a
	// child (a job worker routing task after task): it is the command's
	// entry point, given the arguments after the program name.
	InProcess func(ctx context.Context, args []string, stdout io.Writer) error
	// FreeMemory, with InProcess, returns the heap to the system before
	// and after the task (for a memory budget and exact peaks).
	FreeMemory bool
}

// ErrSkipped is returned (wrapped) by RunTask for a task whose valid output
// already exists.
var ErrSkipped = errors.New("output exists")

// RunTask runs task i: `diffroute route` (or `diffroute calibrate`, whose
// files are written to a temporary folder and moved in when it succeeds)
// for the task as a child process, then writes the task's record. A task whose valid output exists
// is not rerun: RunTask returns its record and ErrSkipped. On failure it
// writes failed.json with the command's last error line and returns that
// error.
func (j *Job) RunTask(ctx context.Context, i int, o TaskOptions) (*Record, error) {
	t := &j.Tasks[i]
	if r, ok := j.Done(i, true); ok {
		return r, ErrSkipped
	}
	dir := j.taskDir(i)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	os.Remove(filepath.Join(dir, FailedFile))
	exe := o.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	out := filepath.Join(dir, OutputFile)
	args := []string{"route", "--rapid", t.RAPID, "--runoff", t.Runoff, "--out", out, "--quiet"}
	logName := LogFile
	if j.IsCalibration() {
		out = filepath.Join(dir, calibrateTemp)
		if err := os.RemoveAll(out); err != nil {
			return nil, err
		}
		args = []string{"calibrate", "--rapid", t.RAPID, "--runoff", t.Runoff, "--observed", t.Observed, "--out", out, "--quiet"}
		logName = "calibrate.log"
	}
	for _, a := range append(append([]string{}, j.RouteArgs...), o.Args...) {
		args = append(args, strings.ReplaceAll(strings.ReplaceAll(a, "{basin}", t.Basin), "{member}", t.Member))
	}
	logf, err := os.Create(filepath.Join(dir, logName))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# %s %s\n", exe, strings.Join(args, " "))
	host, _ := os.Hostname()
	running := filepath.Join(dir, RunningFile)
	var secs float64
	var rss int64
	if o.InProcess != nil {
		os.WriteFile(running, []byte(fmt.Sprintf("%s %d\n", host, os.Getpid())), 0o644)
		defer os.Remove(running)
		var serr error
		secs, rss, serr = runInProcess(ctx, o.InProcess, args, logf, o.FreeMemory)
		if serr != nil {
			msg := strings.TrimPrefix(firstLine(serr.Error()), "diffroute: ")
			fmt.Fprintf(logf, "diffroute: %s\n", msg)
			if ctx.Err() != nil {
				msg = "stopped (interrupted, cancelled or out of time): " + ctx.Err().Error()
			}
			return nil, j.fail(i, msg, 1)
		}
		return j.finish(i, out, secs, rss)
	}
	var stderr tailBuffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout = logf
	cmd.Stderr = io.MultiWriter(logf, &stderr)
	cmd.Env = o.Env
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, j.fail(i, err.Error(), -1)
	}
	if o.Started != nil {
		o.Started(cmd.Process.Pid)
	}
	os.WriteFile(running, []byte(fmt.Sprintf("%s %d\n", host, cmd.Process.Pid)), 0o644)
	defer os.Remove(running)
	hwm := watchHWM(cmd.Process.Pid)
	werr := cmd.Wait()
	secs = time.Since(start).Seconds()
	sampled := hwm()
	if werr != nil {
		msg := stderr.lastLine()
		if msg == "" {
			msg = werr.Error()
		}
		code := -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
		if ctx.Err() != nil {
			msg = "stopped (interrupted, cancelled or out of time): " + ctx.Err().Error()
		}
		return nil, j.fail(i, msg, code)
	}
	// The kernel's maximum resident size of a child that this process
	// forked with a shared address space (as Go does) starts at this
	// process's own high-water mark: trust it only above that, else take
	// the child's own sampled high-water mark.
	rss = sampled
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		if r := int64(ru.Maxrss) << 10; r > procStatusBytes("self", "VmHWM:") || rss == 0 {
			rss = max(r, rss)
		}
	}
	return j.finish(i, out, secs, rss)
}

// finish records a task whose command succeeded: its output checked and
// described, done.json written last.
func (j *Job) finish(i int, out string, secs float64, rss int64) (*Record, error) {
	var r *Record
	var err error
	if j.IsCalibration() {
		var params string
		if params, err = finishCalibration(out, j.taskDir(i)); err == nil {
			r, err = j.calibrationRecord(i, params, secs, rss)
		}
	} else {
		r, err = j.record(i, out, secs, rss)
	}
	if err != nil {
		return nil, j.fail(i, err.Error(), 0)
	}
	b, _ := json.MarshalIndent(r, "", "  ")
	if err := writeFileAtomic(filepath.Join(j.taskDir(i), DoneFile), append(b, '\n')); err != nil {
		return nil, err
	}
	return r, nil
}

// runInProcess runs a task's command in this process (a job worker). It
// resets the process's peak resident memory first, so that the peak after
// is the process's while the task ran. With free it gives the memory back
// to the system before and after, so that the peak is the task's own (with
// the process's baseline, as a child's would have) and a budget sees only
// the running tasks; without, the next task reuses the heap, which saves
// faulting its pages in anew (a third of a small basin's time).
func runInProcess(ctx context.Context, run func(context.Context, []string, io.Writer) error, args []string, log io.Writer, free bool) (secs float64, rss int64, err error) {
	if free {
		debug.FreeOSMemory()
	}
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	start := time.Now()
	err = run(ctx, args, log)
	secs = time.Since(start).Seconds()
	rss = procStatusBytes("self", "VmHWM:")
	if free {
		debug.FreeOSMemory()
	}
	return secs, rss, err
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// record describes a finished task's output.
func (j *Job) record(i int, out string, secs float64, rss int64) (*Record, error) {
	t := &j.Tasks[i]
	sum, n, err := fileSHA256(out)
	if err != nil {
		return nil, fmt.Errorf("route wrote no output: %w", err)
	}
	q, err := data.ReadRunoffNC(out, &data.NCOptions{Var: "Qout", TimeCount: -1})
	if err != nil {
		return nil, err
	}
	rel, _ := filepath.Rel(j.Out, out)
	r := &Record{Basin: t.Basin, Member: t.Member, Reaches: len(q.IDs), Steps: len(q.Times), File: filepath.ToSlash(rel),
		Bytes: n, SHA256: sum, PeakRSS: rss, Seconds: secs}
	if len(q.Times) > 0 {
		r.First, r.Last = q.Times[0], q.Times[len(q.Times)-1]
	}
	r.Host, _ = os.Hostname()
	return r, nil
}

func (j *Job) fail(i int, msg string, code int) error {
	t := &j.Tasks[i]
	host, _ := os.Hostname()
	f := Failure{Basin: t.Basin, Member: t.Member, Error: msg, ExitCode: code, When: time.Now().UTC().Format(time.RFC3339), Host: host}
	b, _ := json.MarshalIndent(f, "", "  ")
	err := fmt.Errorf("basin %s: %s", t.Name(), msg)
	os.MkdirAll(j.taskDir(i), 0o755)
	if werr := writeFileAtomic(filepath.Join(j.taskDir(i), FailedFile), append(b, '\n')); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

// watchHWM samples a process's VmHWM (its peak resident memory) every
// 10 ms; the returned function stops sampling and returns the largest seen.
func watchHWM(pid int) func() int64 {
	done := make(chan struct{})
	res := make(chan int64, 1)
	p := strconv.Itoa(pid)
	go func() {
		var peak int64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, procStatusBytes(p, "VmHWM:"))
			select {
			case <-done:
				res <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 { close(done); return <-res }
}

// procStatusBytes reads a kB field of /proc/<pid>/status (0 when unknown).
func procStatusBytes(pid, field string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// tailBuffer keeps the last few KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8192 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

// lastLine is the last non-empty line, without the "diffroute: " prefix.
func (t *tailBuffer) lastLine() string {
	lines := bytes.Split(bytes.TrimSpace(t.b), []byte("\n"))
	s := strings.TrimSpace(string(lines[len(lines)-1]))
	return strings.TrimPrefix(s, "diffroute: ")
}

// RunBundle runs the tasks of bundle b one after the other (a Slurm array
// task), reporting each to progress; every task is tried, and the error
// names those that failed.
func (j *Job) RunBundle(ctx context.Context, b int, o TaskOptions, progress io.Writer) error {
	if b < 0 || b >= len(j.Bundles) {
		return fmt.Errorf("basins: no bundle %d (the job has %d)", b, len(j.Bundles))
	}
	var failed []string
	var first error
	for k, i := range j.Bundles[b] {
		t := &j.Tasks[i]
		r, err := j.RunTask(ctx, i, o)
		switch {
		case errors.Is(err, ErrSkipped):
			progressLine(progress, k+1, len(j.Bundles[b]), "%s: output exists, skipped", t.Name())
		case err != nil:
			failed = append(failed, t.Name())
			first = cmpOr(first, err)
			progressLine(progress, k+1, len(j.Bundles[b]), "%s: FAILED: %v", t.Name(), err)
		default:
			progressLine(progress, k+1, len(j.Bundles[b]), "%s: %d reaches x %d steps in %.1fs, peak RSS %s (requested %s)",
				t.Name(), r.Reaches, r.Steps, r.Seconds, mib(r.PeakRSS), mib(t.Request))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d tasks of bundle %d failed (%s); first: %w", len(failed), len(j.Bundles[b]), b, strings.Join(failed, ", "), first)
	}
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
