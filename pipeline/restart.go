package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu"
)

// restart carries a run's restart settings (Config.StateIn, StateOut,
// StateEvery, StateForce, Qfinal) and the state read from StateIn.
type restart struct {
	in, out, qfinal string
	every           int
	force           bool
}

func newRestart(c *Config) *restart {
	return &restart{in: c.StateIn, out: c.StateOut, qfinal: c.Qfinal, every: c.StateEvery, force: c.StateForce}
}

// active says whether the run must keep its state between segments.
func (r *restart) active() bool { return r.in != "" || r.out != "" || r.qfinal != "" }

// checkRestart refuses contradictory restart settings.
func (c *Config) checkRestart() error {
	r := newRestart(c)
	switch {
	case r.every < 0:
		return configErrorf("route: --state-every must be ≥ 0")
	case r.every > 0 && r.out == "":
		return configErrorf("route: --state-every N writes the state to --state-out FILE: give it")
	case r.in != "" && c.Qinit != "":
		return configErrorf("route: --state-in and --qinit both set the initial state: give one")
	case r.active() && c.Outputs != "":
		return configErrorf("route: --outputs routes part of the network; a state covers all of it: drop --outputs or the state flags")
	case r.out != "" && !strings.EqualFold(filepath.Ext(r.out), ".nc"):
		return configErrorf("route: --state-out %s: a state file is netCDF: name it .nc", r.out)
	}
	return nil
}

// load reads --state-in and checks it against the run (network, method,
// IRF, parameters, sub-steps, conventions, time); it returns the state and
// how many leading runoff steps it already covers (their discharge was
// routed by the run that wrote it).
func (r *restart) load(net *diffroute.Network, opts diffroute.Options, times []string, step time.Duration) (*diffroute.State, int, error) {
	if r.in == "" {
		return nil, 0, nil
	}
	s, err := data.ReadStateNC(r.in)
	if err != nil {
		return nil, 0, err
	}
	if r.force {
		s.Params = diffroute.ParamsChecksum(net, opts.Params)
	}
	if err := diffroute.CheckState(s, net, opts); err != nil {
		msg := strings.TrimPrefix(err.Error(), "diffroute: ")
		if strings.Contains(msg, "parameters") {
			msg += "; --state-force continues anyway"
		}
		return nil, 0, fmt.Errorf("--state-in %s: %s", r.in, msg)
	}
	skip := 0
	if s.Time != "" && len(times) > 0 {
		if last, err := data.ParseTime(s.Time); err == nil {
			next := last.Add(step)
			if end, err := data.ParseTime(times[len(times)-1]); err == nil && end.Before(next) && !r.force {
				return nil, 0, fmt.Errorf("--state-in %s: the state ends at %s, at or after the runoff's last step (%s): no step is left to route; give the runoff that follows %s",
					r.in, data.FormatTime(last), times[len(times)-1], data.FormatTime(last))
			}
			for k, l := range times {
				if t, err := data.ParseTime(l); err == nil && !t.Before(next) {
					if t.Equal(next) {
						skip = k
					}
					break
				}
			}
		}
	}
	if err := data.StateContinues(s, times[skip], step); err != nil && !r.force {
		return nil, 0, fmt.Errorf("--state-in %s: %v; --state-force continues anyway", r.in, err)
	}
	return s, skip, nil
}

// stepRouter routes consecutive segments of a series and exposes its state.
type stepRouter interface {
	Route(ctx context.Context, runoff *diffroute.DataTensor) (*diffroute.DataTensor, error)
	State() (*diffroute.State, error)
	SetState(*diffroute.State) error
}

// stagedStep is a staged router as a stepRouter.
type stagedStep struct {
	sr *diffroute.StagedRouter
	cl *diffroute.Clusters
}

func (s stagedStep) Route(ctx context.Context, x *diffroute.DataTensor) (*diffroute.DataTensor, error) {
	return s.sr.RouteNext(ctx, x, s.cl)
}
func (s stagedStep) State() (*diffroute.State, error)   { return s.sr.State() }
func (s stagedStep) SetState(st *diffroute.State) error { return s.sr.SetState(st, s.cl) }

// asStepRouter adapts an unstaged router: the recursive router keeps its
// state, the kernel method (on the CPU or the device) gets a runoff history
// (KernelStream).
func asStepRouter(rt diffroute.Router) (stepRouter, error) {
	switch r := rt.(type) {
	case *diffroute.RecursiveRouter:
		return r, nil
	case *diffroute.KernelRouter:
		return diffroute.NewKernelStream(r, r.Options())
	case *gpu.Router: // the kernel method on the device, its runoff history on the host
		return diffroute.NewKernelStream(r, r.CPU().Options())
	}
	return nil, fmt.Errorf("route: restart flags (--state-in, --state-out, --qfinal) with a %T router: route on the CPU, or stage the run (--max-nodes or --time-chunk)", rt)
}

// routeSegments routes runoff through r from the state s (nil: the
// router's initial state), in segments of --state-every steps, writing the
// state after each, then --state-out and --qfinal at the end.
func (r *restart) routeSegments(ctx context.Context, rt stepRouter, s *diffroute.State, runoff *diffroute.DataTensor, cfg *data.RAPID, step time.Duration) (*diffroute.DataTensor, error) {
	if s != nil {
		if err := rt.SetState(s); err != nil {
			return nil, fmt.Errorf("--state-in %s: %w", r.in, err)
		}
	}
	seg := runoff.T
	if r.every > 0 {
		seg = r.every
	}
	if seg >= runoff.T {
		q, err := rt.Route(ctx, runoff)
		if err != nil {
			return nil, err
		}
		return q, r.finish(rt, cfg, runoff.Times, step)
	}
	net := cfg.Network
	co := diffroute.NewCoalescer(runoff.B, net.IDs(), runoff.T)
	for t0 := 0; t0 < runoff.T; t0 += seg {
		t1 := min(runoff.T, t0+seg)
		q, err := rt.Route(ctx, runoff.SliceTime(t0, t1))
		if err != nil {
			return nil, err
		}
		if err := co.Add(t0, q); err != nil {
			return nil, err
		}
		if t1 < runoff.T {
			if err := r.checkpoint(rt, runoff.Times, t1, step); err != nil {
				return nil, err
			}
		}
	}
	q, err := co.Result()
	if err != nil {
		return nil, err
	}
	q.Step = runoff.Step
	return q, r.finish(rt, cfg, runoff.Times, step)
}

// checkpoint writes the state after steps [0, done) to --state-out.
func (r *restart) checkpoint(rt stepRouter, times []string, done int, step time.Duration) error {
	s, err := rt.State()
	if err != nil {
		return err
	}
	label(s, times, done, step)
	if err := data.WriteStateNC(r.out, s); err != nil {
		return fmt.Errorf("--state-out %s: %w", r.out, err)
	}
	return nil
}

func label(s *diffroute.State, times []string, done int, step time.Duration) {
	if done > 0 && done <= len(times) {
		s.Time = times[done-1]
	}
	s.Step = step
}

// finish writes --state-out and --qfinal for a run that routed all of times.
func (r *restart) finish(rt stepRouter, cfg *data.RAPID, times []string, step time.Duration) error {
	if r.out == "" && r.qfinal == "" {
		return nil
	}
	s, err := rt.State()
	if err != nil {
		return err
	}
	label(s, times, len(times), step)
	if r.out != "" {
		if err := data.WriteStateNC(r.out, s); err != nil {
			return fmt.Errorf("--state-out %s: %w", r.out, err)
		}
	}
	if r.qfinal != "" {
		return writeQfinal(r.qfinal, cfg, s)
	}
	return nil
}

// writeQfinal writes RAPID's final discharge from a recursive state: the
// outflow of the last sub-step of every reach.
func writeQfinal(path string, cfg *data.RAPID, s *diffroute.State) error {
	v := s.Var("outflow")
	if v == nil || s.Method != diffroute.Recursive {
		return configErrorf("route: --qfinal needs the recursive method (the kernel method has no instantaneous discharge)")
	}
	if s.B != 1 {
		return configErrorf("route: --qfinal holds one member, the run has %d", s.B)
	}
	ids := s.IDs
	if v.IDs != nil {
		ids = v.IDs
	}
	if err := data.WriteQfinal(path, cfg, ids, v.Data, s.Time, s.Step); err != nil {
		return fmt.Errorf("--qfinal %s: %w", path, err)
	}
	return nil
}

// streamState carries the restart flags into a time-chunked run.
type streamState struct {
	rs      *restart
	in      *diffroute.State
	cfg     *data.RAPID
	step    time.Duration
	written int // steps covered by the last checkpoint
	// keep, when set, lists the only reaches written (--outputs).
	keep []int64
}

// after writes a checkpoint once --state-every steps have passed since the
// last one (the state between chunks is consistent).
func (ss *streamState) after(sr *diffroute.StagedRouter, cl *diffroute.Clusters, times []string, done int) error {
	if ss.rs.every <= 0 || done-ss.written < ss.rs.every || done >= len(times) {
		return nil
	}
	ss.written = done
	return ss.rs.checkpoint(stagedStep{sr, cl}, times, done, ss.step)
}

// from returns the source without its first k steps.
func (s *runoffSource) from(k int) *runoffSource {
	c := *s
	c.times = s.times[k:]
	read := s.read
	c.read = func(t0, count int) (*diffroute.DataTensor, error) { return read(t0+k, count) }
	if rm := s.readMember; rm != nil {
		c.readMember = func(b, t0, count int) (*diffroute.DataTensor, error) { return rm(b, t0+k, count) }
	}
	// Every reader starts k steps in (an unshifted one would read the
	// skipped steps as these).
	if ro := s.readOrdered; ro != nil {
		c.readOrdered = func(t0, count int, order []int32, into *diffroute.DataTensor) (*diffroute.DataTensor, error) {
			return ro(t0+k, count, order, into)
		}
	}
	if ro := s.rangesOrdered; ro != nil {
		c.rangesOrdered = func(order []int32) (func(t0, count int, into *diffroute.DataTensor) (*diffroute.DataTensor, error), error) {
			read, err := ro(order)
			if read == nil {
				return nil, err
			}
			return func(t0, count int, into *diffroute.DataTensor) (*diffroute.DataTensor, error) {
				return read(t0+k, count, into)
			}, nil
		}
	}
	if rc := s.readColumns; rc != nil {
		c.readColumns = func(t0, count int, cols []int32) (*diffroute.DataTensor, error) { return rc(t0+k, count, cols) }
	}
	return &c
}
