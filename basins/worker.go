package basins

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// A job worker is a long-lived `diffroute jobs worker DIR` process that
// runs the tasks the local executor sends it one after the other, in
// process: a many-basin run then pays a process start, the libraries'
// set-up and a fresh heap's page faults once per worker rather than once
// per basin, which for small basins costs more than routing them.

// workerRequest is one task sent to a worker (one JSON line on its stdin).
type workerRequest struct {
	Task int      `json:"task"`
	Args []string `json:"args,omitempty"`
	Free bool     `json:"free,omitempty"` // TaskOptions.FreeMemory
}

// workerReply is a worker's answer (one JSON line on its stdout).
type workerReply struct {
	Task    int    `json:"task"`
	Skipped bool   `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Serve is a job worker: for each request read from in it runs the task
// with run (the command's entry point) in this process and writes the
// reply to out, until in ends.
func (j *Job) Serve(ctx context.Context, in io.Reader, out io.Writer, run func(context.Context, []string, io.Writer) error) error {
	sc := bufio.NewScanner(in)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var req workerRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			return fmt.Errorf("basins: worker: bad request %q: %v", sc.Text(), err)
		}
		if req.Task < 0 || req.Task >= len(j.Tasks) {
			return fmt.Errorf("basins: worker: no task %d", req.Task)
		}
		_, err := j.RunTask(ctx, req.Task, TaskOptions{Args: req.Args, InProcess: run, FreeMemory: req.Free})
		rep := workerReply{Task: req.Task, Skipped: errors.Is(err, ErrSkipped)}
		if err != nil && !rep.Skipped {
			rep.Error = err.Error()
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return sc.Err()
}

// worker is the executor's side of a job worker process.
type worker struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	pid    int
	stderr tailBuffer
	mu     sync.Mutex
	task   int  // the task it runs, -1 when idle
	dead   bool // exited
}

// startWorker starts a job worker; its replies (and, if it dies, a reply
// for the task it ran) go to deliver. done is called when it has exited.
func (j *Job) startWorker(ctx context.Context, exe string, env []string, deliver func(workerReply), done func()) (*worker, error) {
	w := &worker{task: -1}
	w.cmd = exec.CommandContext(ctx, exe, "jobs", "worker", j.Out)
	w.cmd.Env = env
	w.cmd.Stderr = &w.stderr
	var err error
	if w.in, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	w.pid = w.cmd.Process.Pid
	go func() {
		defer done()
		dec := json.NewDecoder(stdout)
		for {
			var rep workerReply
			if err := dec.Decode(&rep); err != nil {
				break
			}
			w.mu.Lock()
			w.task = -1
			w.mu.Unlock()
			deliver(rep)
		}
		werr := w.cmd.Wait()
		w.mu.Lock()
		t := w.task
		w.task, w.dead = -1, true
		w.mu.Unlock()
		// A worker that dies while running a task (a crash, an
		// out-of-memory kill) fails that task only.
		if t >= 0 {
			msg := strings.TrimPrefix(strings.TrimSpace(w.stderr.lastLine()), "diffroute: ")
			if msg == "" {
				msg = "job worker died"
			}
			if werr != nil {
				msg += " (" + werr.Error() + ")"
			}
			deliver(workerReply{Task: t, Error: j.fail(t, msg, -1).Error()})
		}
	}()
	return w, nil
}

// send gives task i to an idle worker.
// It returns errWorkerDead when the worker had exited, and the task is
// the caller's to report; after any other error the worker's reader
// reports it.
func (w *worker) send(i int, args []string, free bool) error {
	w.mu.Lock()
	if w.dead {
		w.mu.Unlock()
		return errWorkerDead
	}
	w.task = i
	w.mu.Unlock()
	b, _ := json.Marshal(workerRequest{Task: i, Args: args, Free: free})
	_, err := w.in.Write(append(b, '\n'))
	return err
}

var errWorkerDead = errors.New("the job worker had exited")

// idle reports whether the worker is alive and has no task.
func (w *worker) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.task < 0 && !w.dead
}

// stop closes the worker's input: it exits after its current task.
func (w *worker) stop() { w.in.Close() }

// exeOrSelf is exe, or this program.
func exeOrSelf(exe string) (string, error) {
	if exe != "" {
		return exe, nil
	}
	return os.Executable()
}
