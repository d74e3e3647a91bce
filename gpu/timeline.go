package gpu

import (
	"fmt"
	"slices"
	"strings"
)

// opKind is what a device operation does, for the overlap accounting.
type opKind uint8

const (
	opCopy    opKind = iota // host↔device copy
	opConv                  // block-sparse convolution
	opCompute               // other kernels (interpolation, transfer add)
)

// op is one operation on the device timeline, in seconds from the first
// event of a call (CUDA events, read when its slot is waited for).
type op struct {
	start, end float64
	kind       opKind
}

// Timing says where device time went in a run, from CUDA events recorded
// around every copy and kernel of the two slots. Overlap is the proof that
// the double buffering works: with one stream, copies and kernels would
// never run at the same time and OverlapSeconds would be 0.
type Timing struct {
	// ConvSeconds is the device time of the convolution kernels, summed.
	ConvSeconds float64
	// CopySeconds and ComputeSeconds are the time during which at least one
	// host↔device copy, respectively at least one kernel of any kind, ran.
	CopySeconds, ComputeSeconds float64
	// OverlapSeconds is the time during which a copy and a kernel ran at
	// the same time (on the two streams).
	OverlapSeconds float64
	// SpanSeconds runs from the first operation's start to the last one's
	// end; BusySeconds is the part of it with any operation running.
	SpanSeconds, BusySeconds float64
	// HostSeconds is the host's packing and unpacking of chunks, which runs
	// while the device works on the other slot.
	HostSeconds float64
}

// String writes the timing in milliseconds, one line.
func (t Timing) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "device %.3g ms busy of %.3g ms: convolution %.3g ms, kernels %.3g ms, copies %.3g ms",
		t.BusySeconds*1e3, t.SpanSeconds*1e3, t.ConvSeconds*1e3, t.ComputeSeconds*1e3, t.CopySeconds*1e3)
	if t.CopySeconds > 0 {
		fmt.Fprintf(&b, " (%.3g ms, %.0f%%, overlapped with kernels)", t.OverlapSeconds*1e3, 100*t.OverlapSeconds/t.CopySeconds)
	}
	fmt.Fprintf(&b, "; host packing %.3g ms", t.HostSeconds*1e3)
	return b.String()
}

// Add accumulates u into t (several runs).
func (t *Timing) Add(u Timing) {
	t.ConvSeconds += u.ConvSeconds
	t.CopySeconds += u.CopySeconds
	t.ComputeSeconds += u.ComputeSeconds
	t.OverlapSeconds += u.OverlapSeconds
	t.SpanSeconds += u.SpanSeconds
	t.BusySeconds += u.BusySeconds
	t.HostSeconds += u.HostSeconds
}

// timeOps measures a timeline: the busy time of copies, of kernels, of
// both at once and of anything, and the span. ops is reordered.
func timeOps(ops []op) Timing {
	var t Timing
	if len(ops) == 0 {
		return t
	}
	type edge struct {
		at    float64
		kind  opKind
		delta int
	}
	edges := make([]edge, 0, 2*len(ops))
	lo, hi := ops[0].start, ops[0].end
	for _, o := range ops {
		if o.end < o.start { // events on two streams can disagree by a tick
			o.end = o.start
		}
		if o.kind == opConv {
			t.ConvSeconds += o.end - o.start
		}
		lo, hi = min(lo, o.start), max(hi, o.end)
		edges = append(edges, edge{o.start, o.kind, 1}, edge{o.end, o.kind, -1})
	}
	// Ends before starts at the same instant: touching operations do not
	// overlap.
	slices.SortFunc(edges, func(a, b edge) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return a.delta - b.delta
	})
	copies, kernels := 0, 0
	prev := edges[0].at
	for _, e := range edges {
		if dt := e.at - prev; dt > 0 {
			if copies > 0 {
				t.CopySeconds += dt
			}
			if kernels > 0 {
				t.ComputeSeconds += dt
			}
			if copies > 0 && kernels > 0 {
				t.OverlapSeconds += dt
			}
			if copies > 0 || kernels > 0 {
				t.BusySeconds += dt
			}
		}
		prev = e.at
		if e.kind == opCopy {
			copies += e.delta
		} else {
			kernels += e.delta
		}
	}
	t.SpanSeconds = hi - lo
	return t
}

// timeline accumulates the operations of a long run in bounded memory:
// cut(t) measures everything before t — which no later operation may start
// before — and keeps only the parts of operations after t.
type timeline struct {
	ops    []op
	done   Timing // of the parts before the last cut (Span unset)
	lo, hi float64
	any    bool
}

func (tl *timeline) reset() { *tl = timeline{ops: tl.ops[:0]} }

func (tl *timeline) add(ops ...op) {
	for _, o := range ops {
		o.end = max(o.end, o.start) // events on two streams can disagree by a tick
		if !tl.any {
			tl.lo, tl.hi, tl.any = o.start, o.end, true
		}
		tl.lo, tl.hi = min(tl.lo, o.start), max(tl.hi, o.end)
		tl.ops = append(tl.ops, o)
	}
}

// cut folds the operations' parts before t into done.
func (tl *timeline) cut(t float64) {
	var before []op
	keep := tl.ops[:0]
	for _, o := range tl.ops {
		if o.start < t {
			before = append(before, op{o.start, min(o.end, t), o.kind})
		}
		if o.end > t {
			keep = append(keep, op{max(o.start, t), o.end, o.kind})
		}
	}
	tl.ops = keep
	tl.done.Add(timeOps(before))
}

// timing measures the whole timeline.
func (tl *timeline) timing() Timing {
	t := tl.done
	t.Add(timeOps(slices.Clone(tl.ops)))
	t.SpanSeconds = 0
	if tl.any {
		t.SpanSeconds = tl.hi - tl.lo
	}
	return t
}
