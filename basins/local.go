package basins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LocalOptions tune RunLocal.
type LocalOptions struct {
	// Budget is the memory the running tasks may reserve together (bytes;
	// 0: no limit but Jobs). A task whose request alone exceeds it runs by
	// itself with --mem-budget Budget, so its route plans to stay within.
	Budget int64
	// Jobs is the most tasks at once (default: the number of CPUs).
	Jobs int
	// Workers is --workers of each route command (default 1), unless the
	// job's route flags set it. The recursive router's float32 sums depend
	// on the number of workers in their last bits: the Slurm executor passes
	// --cpus-per-task, so equal settings give identical discharge.
	Workers int
	// Exe is the diffroute command (default: this program).
	Exe string
	// Progress receives one line per finished task (nil: none).
	Progress io.Writer
	// Env, when not nil, is the route processes' environment.
	Env []string
	// Reuse runs the tasks in at most Jobs job workers (`diffroute jobs
	// worker`), each running task after task in its own process, instead
	// of one process per task: a crash or an out-of-memory kill still
	// fails only the task that caused it. Without a budget a worker keeps
	// its heap from task to task, and a task's peak RSS is its worker's
	// while it ran.
	Reuse bool
}

// LocalReport sums up a local run.
type LocalReport struct {
	Done, Skipped, Failed int
	// PeakRSS is the largest sum of the resident memory of the route
	// processes running at once, sampled every 20 ms.
	PeakRSS int64
	// PeakReserved is the largest sum of the running tasks' requests.
	PeakReserved int64
	Elapsed      time.Duration
}

// RunLocal routes the job's tasks on this machine: a pool of child
// processes packed by the tasks' memory requests under o.Budget, largest
// first (first fit decreasing), at most o.Jobs at once. Tasks with valid
// outputs are skipped. It returns an error listing the failed tasks after
// every task has been tried.
func (j *Job) RunLocal(ctx context.Context, o LocalOptions) (*LocalReport, error) {
	start := time.Now()
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	rep := &LocalReport{}
	var pending []int
	for i := range j.Tasks {
		if _, ok := j.Done(i, true); ok {
			rep.Skipped++
			continue
		}
		pending = append(pending, i)
	}
	slices.SortStableFunc(pending, func(a, b int) int {
		ra, rb := j.Tasks[a].Request, j.Tasks[b].Request
		switch {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		}
		return 0
	})
	workers := max(o.Workers, 1)
	forwardWorkers := !hasFlag(j.RouteArgs, "workers")

	type result struct {
		i   int
		err error
		r   *Record
	}
	results := make(chan result)
	var mu sync.Mutex
	pids := map[int]bool{}
	stopSampling := make(chan struct{})
	sampled := make(chan int64)
	go func() { // resident memory of the running children, summed
		var peak int64
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopSampling:
				sampled <- peak
				return
			case <-tick.C:
				mu.Lock()
				var sum int64
				for pid := range pids {
					sum += residentBytes(pid)
				}
				mu.Unlock()
				peak = max(peak, sum)
			}
		}
	}()

	exe, err := exeOrSelf(o.Exe)
	if err != nil {
		return nil, err
	}
	var pool []*worker
	var readers sync.WaitGroup
	taskPid := map[int]int{}
	deliver := func(r workerReply) {
		mu.Lock()
		delete(pids, taskPid[r.Task])
		delete(taskPid, r.Task)
		mu.Unlock()
		res := result{i: r.Task}
		switch {
		case r.Skipped:
			res.err = ErrSkipped
		case r.Error != "":
			res.err = errors.New(r.Error)
		default:
			if rec, ok := j.Done(r.Task, false); ok {
				res.r = rec
			} else {
				res.err = fmt.Errorf("basin %s: the job worker reported success but left no valid output", j.Tasks[r.Task].Name())
			}
		}
		results <- res
	}
	defer func() {
		for _, w := range pool {
			w.stop()
		}
		readers.Wait()
	}()
	var reserved int64
	held := map[int]int64{} // each running task's reservation
	running := 0
	var errs []error
	total := len(j.Tasks)
	finished := rep.Skipped
	launch := func(i int, alone bool) {
		t := &j.Tasks[i]
		req := t.Request
		var args []string
		if forwardWorkers {
			args = append(args, "--workers", strconv.Itoa(workers))
		}
		if alone && o.Budget > 0 {
			args = append(args, "--mem-budget", strconv.FormatInt(o.Budget, 10))
			req = o.Budget
		}
		reserved += req
		held[i] = req
		rep.PeakReserved = max(rep.PeakReserved, reserved)
		running++
		if o.Reuse {
			var w *worker
			for _, c := range pool {
				if c.idle() {
					w = c
					break
				}
			}
			if w == nil {
				var err error
				if w, err = j.startWorker(ctx, exe, o.Env, deliver, readers.Done); err != nil {
					go func() { results <- result{i, j.fail(i, "starting a job worker: "+err.Error(), -1), nil} }()
					return
				}
				readers.Add(1)
				pool = append(pool, w)
			}
			mu.Lock()
			pids[w.pid] = true
			taskPid[i] = w.pid
			mu.Unlock()
			if err := w.send(i, args, o.Budget > 0); errors.Is(err, errWorkerDead) {
				go deliver(workerReply{Task: i, Error: j.fail(i, err.Error(), -1).Error()})
			}
			return
		}
		go func() {
			var pid int
			r, err := j.RunTask(ctx, i, TaskOptions{Exe: o.Exe, Args: args, Env: o.Env, Started: func(p int) {
				pid = p
				mu.Lock()
				pids[p] = true
				mu.Unlock()
			}})
			mu.Lock()
			delete(pids, pid)
			mu.Unlock()
			results <- result{i, err, r}
		}()
	}
	for len(pending) > 0 || running > 0 {
		// Start what fits, largest first.
		for k := 0; k < len(pending) && running < jobs && ctx.Err() == nil; {
			i := pending[k]
			fits := o.Budget <= 0 || reserved+j.Tasks[i].Request <= o.Budget
			if fits || running == 0 {
				launch(i, !fits)
				pending = slices.Delete(pending, k, k+1)
				continue
			}
			k++
		}
		if running == 0 { // cancelled before anything could start
			break
		}
		// Workers left idle (nothing fits next to the running tasks, or
		// nothing is left) would hold memory the budget does not count.
		keep := pool[:0]
		for _, w := range pool {
			if w.idle() {
				w.stop()
			} else {
				keep = append(keep, w)
			}
		}
		pool = keep
		res := <-results
		running--
		t := &j.Tasks[res.i]
		reserved -= held[res.i]
		delete(held, res.i)
		finished++
		switch {
		case errors.Is(res.err, ErrSkipped):
			rep.Skipped++
			progressLine(o.Progress, finished, total, "%s: output exists, skipped", t.Name())
		case res.err != nil:
			rep.Failed++
			errs = append(errs, res.err)
			progressLine(o.Progress, finished, total, "%s: FAILED: %v", t.Name(), strings.TrimPrefix(res.err.Error(), "basin "+t.Name()+": "))
		default:
			rep.Done++
			progressLine(o.Progress, finished, total, "%s: %d reaches x %d steps in %.1fs, peak RSS %s (requested %s)",
				t.Name(), res.r.Reaches, res.r.Steps, res.r.Seconds, mib(res.r.PeakRSS), mib(t.Request))
		}
	}
	close(stopSampling)
	rep.PeakRSS = <-sampled
	rep.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if len(errs) > 0 {
		return rep, fmt.Errorf("%d of %d tasks failed; first: %w", len(errs), total, errs[0])
	}
	return rep, nil
}

func progressLine(w io.Writer, done, total int, format string, a ...any) {
	if w != nil {
		fmt.Fprintf(w, "[%*d/%d] %s\n", len(strconv.Itoa(total)), done, total, fmt.Sprintf(format, a...))
	}
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// residentBytes is a process's resident memory (VmRSS), 0 when unknown.
func residentBytes(pid int) int64 { return procStatusBytes(strconv.Itoa(pid), "VmRSS:") }

// hasFlag reports whether args set the flag name (-name, --name, with or
// without =value).
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// ExpectedWall simulates RunLocal's packing of tasks (their Request and
// Seconds) on slots task slots under budget bytes (0: none): largest
// request first, each task started as soon as a slot and its memory are
// free. It returns the expected wall time in seconds and the largest
// memory reserved at once; with slots as a cluster's concurrent array
// tasks and no budget, it is the array's expected wall time.
func ExpectedWall(tasks []Task, slots int, budget int64) (seconds float64, peak int64) {
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch ra, rb := tasks[a].Request, tasks[b].Request; {
		case ra > rb:
			return -1
		case ra < rb:
			return 1
		}
		return 0
	})
	type run struct {
		end float64
		mem int64
	}
	var running []run
	var now float64
	var reserved int64
	for len(order) > 0 || len(running) > 0 {
		for k := 0; k < len(order) && len(running) < max(slots, 1); {
			t := &tasks[order[k]]
			req := t.Request
			fits := budget <= 0 || reserved+req <= budget
			if !fits && len(running) > 0 {
				k++
				continue
			}
			if !fits {
				req = budget
			}
			running = append(running, run{now + t.Seconds, req})
			reserved += req
			peak = max(peak, reserved)
			order = slices.Delete(order, k, k+1)
		}
		// Advance to the first task to end.
		first := 0
		for k := range running {
			if running[k].end < running[first].end {
				first = k
			}
		}
		now = running[first].end
		reserved -= running[first].mem
		running = slices.Delete(running, first, first+1)
	}
	return now, peak
}
