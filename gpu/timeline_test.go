package gpu

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTimeOpsTwoSlots(t *testing.T) {
	// Slot 0: copy in [0,2], conv [2,6], copy out [6,7].
	// Slot 1: copy in [2,3] (overlaps slot 0's conv), conv [6,10] (waits
	// for the compute units), copy out [10,11]; slot 0's copy out [6,7]
	// overlaps slot 1's conv.
	ops := []op{
		{0, 2, opCopy}, {2, 6, opConv}, {6, 7, opCopy},
		{2, 3, opCopy}, {6, 10, opConv}, {10, 11, opCopy},
	}
	got := timeOps(ops)
	want := Timing{ConvSeconds: 8, CopySeconds: 5, ComputeSeconds: 8, OverlapSeconds: 2, SpanSeconds: 11, BusySeconds: 11}
	if got != want {
		t.Fatalf("timeOps = %+v, want %+v", got, want)
	}
}

func TestTimeOpsTouchingDoNotOverlap(t *testing.T) {
	got := timeOps([]op{{0, 1, opCopy}, {1, 2, opConv}, {2, 3, opCompute}, {5, 6, opCopy}})
	if got.OverlapSeconds != 0 || got.BusySeconds != 4 || got.SpanSeconds != 6 || got.ComputeSeconds != 2 || got.ConvSeconds != 1 {
		t.Fatalf("timeOps = %+v", got)
	}
}

// TestTimeOpsRandom compares the sweep with counting unit cells on an
// integer timeline.
func TestTimeOpsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		n := 1 + rng.IntN(12)
		ops := make([]op, n)
		var cells [60][3]int
		for i := range ops {
			s := rng.IntN(50)
			e := s + rng.IntN(10)
			k := opKind(rng.IntN(3))
			ops[i] = op{float64(s), float64(e), k}
			for c := s; c < e; c++ {
				cells[c][k]++
			}
		}
		var want Timing
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, o := range ops {
			lo, hi = min(lo, o.start), max(hi, o.end)
			if o.kind == opConv {
				want.ConvSeconds += o.end - o.start
			}
		}
		want.SpanSeconds = hi - lo
		for _, c := range cells {
			cp, k := c[opCopy] > 0, c[opConv]+c[opCompute] > 0
			if cp {
				want.CopySeconds++
			}
			if k {
				want.ComputeSeconds++
			}
			if cp && k {
				want.OverlapSeconds++
			}
			if cp || k {
				want.BusySeconds++
			}
		}
		if got := timeOps(ops); got != want {
			t.Fatalf("trial %d: ops %v: timeOps = %+v, want %+v", trial, ops, got, want)
		}
	}
}

// TestTimelineCutsAreExact feeds random two-slot timelines chunk by chunk,
// cutting at the earliest point a later chunk can start, and compares the
// folded timing with timeOps over everything.
func TestTimelineCutsAreExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for trial := range 100 {
		var tl timeline
		var all []op
		var lastEnd [2]float64
		started := [2]bool{}
		for c := range 40 {
			s := c % 2
			// A chunk on slot s starts after its previous one ended.
			at := lastEnd[s] + float64(rng.IntN(3))
			var ch []op
			for _, k := range []opKind{opCopy, opConv, opCompute, opCopy} {
				d := float64(rng.IntN(4))
				ch = append(ch, op{at, at + d, k})
				at += d
			}
			lastEnd[s], started[s] = at, true
			tl.add(ch...)
			all = append(all, ch...)
			if started[0] && started[1] && rng.IntN(3) == 0 {
				tl.cut(min(lastEnd[0], lastEnd[1]))
			}
		}
		got, want := tl.timing(), timeOps(slices.Clone(all))
		const eps = 1e-9
		if math.Abs(got.ConvSeconds-want.ConvSeconds) > eps || math.Abs(got.CopySeconds-want.CopySeconds) > eps ||
			math.Abs(got.ComputeSeconds-want.ComputeSeconds) > eps || math.Abs(got.OverlapSeconds-want.OverlapSeconds) > eps ||
			math.Abs(got.BusySeconds-want.BusySeconds) > eps || math.Abs(got.SpanSeconds-want.SpanSeconds) > eps {
			t.Fatalf("trial %d: folded %+v, whole %+v", trial, got, want)
		}
	}
}
