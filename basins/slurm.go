package basins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SlurmOptions tune the Slurm scripts of a job.
type SlurmOptions struct {
	// Exe is the diffroute command as the compute nodes see it (default:
	// this program's absolute path; the job folder must be shared too).
	Exe string
	// CPUs is --cpus-per-task of a routing task (default 1); the route
	// command gets as many workers.
	CPUs int
	// Partition and Account, when set, are passed to sbatch.
	Partition, Account string
	// MaxParallel throttles each array (%N), 0: no throttle.
	MaxParallel int
	// Merge makes the gather job write the merged discharge too.
	Merge bool
	// Extra are more sbatch options for every script, e.g. "--qos=normal".
	Extra []string
}

// SlurmArray is one sbatch array script: the bundles of one memory class.
type SlurmArray struct {
	Script  string `json:"script"`
	Mem     int64  `json:"mem_bytes"` // --mem: the largest request of its tasks
	Minutes int    `json:"minutes"`   // --time
	Bundles []int  `json:"bundles"`   // array indices
}

// SlurmPlan is the scripts WriteSlurm wrote.
type SlurmPlan struct {
	Arrays []SlurmArray
	Gather string // the gather job's script
	Submit string // submit.sh: the arrays, then gather with afterok on all of them
}

// SlurmDir is the folder of a job's Slurm scripts, logs and submissions.
func (j *Job) SlurmDir() string { return filepath.Join(j.Out, "slurm") }

// WriteSlurm writes sbatch scripts for the given bundles (array indices):
// one array per memory class, with --mem the largest request of its tasks,
// --time four times its longest bundle's expected run time (at least 10
// minutes), and a gather job (manifest, optional merge) to submit with
// --dependency=afterok on the arrays, which submit.sh does.
func (j *Job) WriteSlurm(o SlurmOptions, bundles []int) (*SlurmPlan, error) {
	if len(bundles) == 0 {
		return nil, errors.New("basins: no tasks to submit")
	}
	exe := o.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	cpus := max(o.CPUs, 1)
	dir := j.SlurmDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	classes := map[int64][]int{}
	for _, b := range bundles {
		if b < 0 || b >= len(j.Bundles) {
			return nil, fmt.Errorf("basins: no bundle %d (the job has %d)", b, len(j.Bundles))
		}
		c := memClass(j.Tasks[j.Bundles[b][0]].Request)
		classes[c] = append(classes[c], b)
	}
	keys := make([]int64, 0, len(classes))
	for c := range classes {
		keys = append(keys, c)
	}
	slices.Sort(keys)
	plan := &SlurmPlan{}
	common := func(sb *strings.Builder) {
		if o.Partition != "" {
			fmt.Fprintf(sb, "#SBATCH --partition=%s\n", o.Partition)
		}
		if o.Account != "" {
			fmt.Fprintf(sb, "#SBATCH --account=%s\n", o.Account)
		}
		for _, e := range o.Extra {
			fmt.Fprintf(sb, "#SBATCH %s\n", e)
		}
	}
	name := "diffroute-" + filepath.Base(j.Out)
	for _, c := range keys {
		bs := classes[c]
		slices.Sort(bs)
		var mem int64
		var secs float64
		for _, b := range bs {
			var s float64
			for _, i := range j.Bundles[b] {
				mem = max(mem, j.Tasks[i].Request)
				s += j.Tasks[i].Seconds
			}
			secs = max(secs, s)
		}
		memMiB := (mem + 1<<20 - 1) >> 20
		minutes := max(10, int(math.Ceil(4*secs/float64(cpus)/60)))
		a := SlurmArray{Script: filepath.Join(dir, fmt.Sprintf("%s-%dM.sbatch", j.command(), c)), Mem: memMiB << 20, Minutes: minutes, Bundles: bs}
		var sb strings.Builder
		sb.WriteString("#!/bin/bash\n")
		fmt.Fprintf(&sb, "#SBATCH --job-name=%s\n", name)
		throttle := ""
		if o.MaxParallel > 0 {
			throttle = "%" + strconv.Itoa(o.MaxParallel)
		}
		fmt.Fprintf(&sb, "#SBATCH --array=%s%s\n", indexRanges(bs), throttle)
		fmt.Fprintf(&sb, "#SBATCH --mem=%dM\n", memMiB)
		fmt.Fprintf(&sb, "#SBATCH --cpus-per-task=%d\n", cpus)
		fmt.Fprintf(&sb, "#SBATCH --time=%d\n", minutes)
		fmt.Fprintf(&sb, "#SBATCH --output=%s\n", filepath.Join(dir, "logs", j.command()+"-%A_%a.log"))
		common(&sb)
		fmt.Fprintf(&sb, "#\n# %d array tasks (memory class %d MiB): --mem is the largest planned request,\n", len(bs), c)
		sb.WriteString("# --time four times the longest expected run time (at least 10 minutes).\n")
		for _, b := range bs {
			var parts []string
			for _, i := range j.Bundles[b] {
				t := &j.Tasks[i]
				parts = append(parts, fmt.Sprintf("%s (%d reaches x %d steps, %s)", t.Name(), t.Reaches, t.Steps, mib(t.Request)))
			}
			fmt.Fprintf(&sb, "#   %d: %s\n", b, strings.Join(parts, ", "))
		}
		sb.WriteString("set -euo pipefail\n")
		fmt.Fprintf(&sb, "exec %s jobs task %s \"$SLURM_ARRAY_TASK_ID\"\n", shellQuote(exe), shellQuote(j.Out))
		if err := writeScript(a.Script, sb.String()); err != nil {
			return nil, err
		}
		plan.Arrays = append(plan.Arrays, a)
	}
	// The gather job reads every output when merging.
	var series int64
	for _, t := range j.Tasks {
		series += int64(t.Reaches) * int64(t.Steps) * 4
	}
	gmem := int64(256)
	if o.Merge {
		gmem += (3*series/int64(len(j.members())) + 1<<20 - 1) >> 20
	}
	plan.Gather = filepath.Join(dir, "gather.sbatch")
	var sb strings.Builder
	sb.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&sb, "#SBATCH --job-name=%s-gather\n", name)
	fmt.Fprintf(&sb, "#SBATCH --mem=%dM\n#SBATCH --cpus-per-task=1\n#SBATCH --time=%d\n", gmem, max(10, int(float64(series)/50e6/60*4)))
	fmt.Fprintf(&sb, "#SBATCH --output=%s\n", filepath.Join(dir, "logs", "gather-%j.log"))
	common(&sb)
	sb.WriteString("# Submitted with --dependency=afterok on the routing arrays (see submit.sh).\nset -euo pipefail\n")
	merge := ""
	if o.Merge {
		merge = " --merge"
	}
	fmt.Fprintf(&sb, "exec %s jobs gather%s %s\n", shellQuote(exe), merge, shellQuote(j.Out))
	if err := writeScript(plan.Gather, sb.String()); err != nil {
		return nil, err
	}
	plan.Submit = filepath.Join(dir, "submit.sh")
	sb.Reset()
	sb.WriteString("#!/bin/bash\n# Submits the routing arrays, then the gather job once they have all succeeded.\nset -euo pipefail\n")
	var deps []string
	for k, a := range plan.Arrays {
		fmt.Fprintf(&sb, "a%d=$(sbatch --parsable %s)\n", k, shellQuote(a.Script))
		deps = append(deps, fmt.Sprintf("${a%d%%%%;*}", k))
	}
	fmt.Fprintf(&sb, "sbatch --parsable --dependency=afterok:%s %s\n", strings.Join(deps, ":"), shellQuote(plan.Gather))
	if err := writeScript(plan.Submit, sb.String()); err != nil {
		return nil, err
	}
	return plan, nil
}

// Submission is one sbatch submission of a job (slurm/submitted.json lists them all).
type Submission struct {
	When   string         `json:"when"`
	Arrays []SubmittedJob `json:"arrays"`
	Gather string         `json:"gather_job"`
}

// SubmittedJob is one submitted array.
type SubmittedJob struct {
	JobID   string `json:"job_id"`
	Script  string `json:"script"`
	Bundles []int  `json:"bundles"`
}

// Submit submits a plan's arrays and its gather job (afterok on all
// arrays) with sbatch and records the job ids in slurm/submitted.json.
func (j *Job) Submit(ctx context.Context, p *SlurmPlan) (*Submission, error) {
	s := &Submission{When: time.Now().UTC().Format(time.RFC3339)}
	var ids []string
	for _, a := range p.Arrays {
		id, err := sbatch(ctx, a.Script)
		if err != nil {
			return s, err
		}
		ids = append(ids, id)
		s.Arrays = append(s.Arrays, SubmittedJob{JobID: id, Script: a.Script, Bundles: a.Bundles})
		// Record as we go: a failure later leaves what was submitted known.
		if err := j.appendSubmission(s); err != nil {
			return s, err
		}
	}
	id, err := sbatch(ctx, "--dependency=afterok:"+strings.Join(ids, ":"), p.Gather)
	if err != nil {
		return s, err
	}
	s.Gather = id
	return s, j.appendSubmission(s)
}

func sbatch(ctx context.Context, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "sbatch", append([]string{"--parsable"}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("sbatch %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	id, _, _ := strings.Cut(strings.TrimSpace(string(out)), ";")
	if _, err := strconv.Atoi(id); err != nil {
		return "", fmt.Errorf("sbatch %s: unexpected answer %q", strings.Join(args, " "), out)
	}
	return id, nil
}

// Submissions reads slurm/submitted.json (none: empty).
func (j *Job) Submissions() ([]Submission, error) {
	b, err := os.ReadFile(filepath.Join(j.SlurmDir(), "submitted.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s []Submission
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(j.SlurmDir(), "submitted.json"), err)
	}
	return s, nil
}

// appendSubmission adds s to submitted.json, replacing an entry of the same time.
func (j *Job) appendSubmission(s *Submission) error {
	all, err := j.Submissions()
	if err != nil {
		return err
	}
	if n := len(all); n > 0 && all[n-1].When == s.When && len(all[n-1].Arrays) > 0 && len(s.Arrays) > 0 && all[n-1].Arrays[0].JobID == s.Arrays[0].JobID {
		all = all[:n-1]
	}
	all = append(all, *s)
	b, _ := json.MarshalIndent(all, "", "  ")
	return writeFileAtomic(filepath.Join(j.SlurmDir(), "submitted.json"), append(b, '\n'))
}

// State is a task's state in Status.
type State string

const (
	StateDone    State = "done"
	StateRunning State = "running"
	StatePending State = "pending"
	StateFailed  State = "failed"
	StateMissing State = "missing"
)

// TaskStatus is one task's state and why.
type TaskStatus struct {
	Task   int
	Name   string
	State  State
	Detail string
}

// Status reports every task's state: done (valid output), running (its
// route process alive on this host, or Slurm's squeue), pending (squeue,
// for the latest submission of its bundle),
// failed (failed.json, or Slurm's scontrol: FAILED, CANCELLED, TIMEOUT,
// OUT_OF_MEMORY, …), or missing. Without Slurm commands, only the files
// count.
func (j *Job) Status(ctx context.Context) ([]TaskStatus, error) {
	subs, err := j.Submissions()
	if err != nil {
		return nil, err
	}
	latest := map[int]string{} // bundle -> array job id
	var jobIDs []string
	for _, s := range subs {
		for _, a := range s.Arrays {
			for _, b := range a.Bundles {
				latest[b] = a.JobID
			}
			jobIDs = append(jobIDs, a.JobID)
		}
	}
	var queue, finished map[string]string // "arrayjob_index" -> state
	if len(jobIDs) > 0 {
		queue = squeueStates(ctx, jobIDs)
		finished = scontrolStates(ctx, jobIDs)
	}
	bundleOf := make([]int, len(j.Tasks))
	for b, ts := range j.Bundles {
		for _, i := range ts {
			bundleOf[i] = b
		}
	}
	out := make([]TaskStatus, len(j.Tasks))
	for i := range j.Tasks {
		st := TaskStatus{Task: i, Name: j.Tasks[i].Name(), State: StateMissing}
		key := ""
		if id, ok := latest[bundleOf[i]]; ok {
			key = fmt.Sprintf("%s_%d", id, bundleOf[i])
		}
		if r, ok := j.Done(i, false); ok {
			st.State, st.Detail = StateDone, fmt.Sprintf("%d reaches, %s to %s, %.1fs, peak RSS %s", r.Reaches, r.First, r.Last, r.Seconds, mib(r.PeakRSS))
			if j.IsCalibration() {
				st.Detail = fmt.Sprintf("%d reaches, %d gauges, %.1fs, peak RSS %s", r.Reaches, r.Gauges, r.Seconds, mib(r.PeakRSS))
			}
		} else if what, ok := j.Running(i); ok {
			st.State, st.Detail = StateRunning, what
		} else if q, ok := queue[key]; key != "" && ok {
			st.State, st.Detail = StatePending, "slurm job "+key+": "+q
			if q == "RUNNING" || q == "COMPLETING" || q == "CONFIGURING" {
				st.State = StateRunning
			}
		} else if f, ok := j.Failed(i); ok {
			st.State, st.Detail = StateFailed, f.Error
			if s, ok := finished[key]; key != "" && ok {
				st.Detail += " (slurm job " + key + ": " + s + ")"
			} else if key != "" {
				st.Detail += " (slurm job " + key + ")"
			}
		} else if s, ok := finished[key]; key != "" && ok && s != "COMPLETED" {
			st.State, st.Detail = StateFailed, "slurm job "+key+": "+s
		} else if key != "" && ok {
			st.Detail = "slurm job " + key + " completed without this output"
		}
		out[i] = st
	}
	return out, nil
}

// squeueStates maps "arrayjob_index" to the state of queued or running
// array tasks (empty when squeue is missing or fails).
func squeueStates(ctx context.Context, ids []string) map[string]string {
	m := map[string]string{}
	out, err := exec.CommandContext(ctx, "squeue", "-h", "-r", "-j", strings.Join(ids, ","), "-o", "%F %K %T").Output()
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 {
			m[f[0]+"_"+f[1]] = f[2]
		}
	}
	return m
}

// scontrolStates maps "arrayjob_index" to the final state and exit code of
// array tasks Slurm still remembers (MinJobAge).
func scontrolStates(ctx context.Context, ids []string) map[string]string {
	m := map[string]string{}
	for _, id := range ids {
		out, err := exec.CommandContext(ctx, "scontrol", "-o", "show", "job", id).Output()
		if err != nil {
			continue
		}
		for k, v := range parseScontrol(string(out)) {
			m[k] = v
		}
	}
	return m
}

// parseScontrol reads `scontrol -o show job` output: one job per line of
// Key=Value fields.
func parseScontrol(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				f[k] = v
			}
		}
		a, t, s := f["ArrayJobId"], f["ArrayTaskId"], f["JobState"]
		if a == "" || s == "" {
			continue
		}
		if _, err := strconv.Atoi(t); err != nil {
			continue // a range of tasks not started yet
		}
		if e := f["ExitCode"]; e != "" && e != "0:0" {
			s += ", exit code " + e
		}
		m[a+"_"+t] = s
	}
	return m
}

// ToResubmit lists the bundles with a task neither done nor queued.
func ToResubmit(st []TaskStatus, j *Job) []int {
	var bs []int
	for b, ts := range j.Bundles {
		for _, i := range ts {
			if s := st[i].State; s == StateFailed || s == StateMissing {
				bs = append(bs, b)
				break
			}
		}
	}
	return bs
}

// indexRanges writes sorted indices as Slurm's array list: 0-3,7,9-10.
func indexRanges(xs []int) string {
	sort.Ints(xs)
	var parts []string
	for k := 0; k < len(xs); {
		e := k
		for e+1 < len(xs) && xs[e+1] == xs[e]+1 {
			e++
		}
		if e > k {
			parts = append(parts, fmt.Sprintf("%d-%d", xs[k], xs[e]))
		} else {
			parts = append(parts, strconv.Itoa(xs[k]))
		}
		k = e + 1
	}
	return strings.Join(parts, ",")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func writeScript(path, s string) error {
	if err := writeFileAtomic(path, []byte(s)); err != nil {
		return err
	}
	return os.Chmod(path, 0o755)
}
