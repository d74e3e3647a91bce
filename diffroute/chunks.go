package diffroute

import (
	"fmt"
	"iter"
	"slices"
)

// TimeChunk is a range [Start, End) of runoff steps routed together. Warm
// steps before Start are routed too, as history, and dropped from the output:
// the router sees steps [Start−Warm, End).
type TimeChunk struct {
	Index      int
	Start, End int
	Warm       int
}

// Len returns the number of output steps of the chunk.
func (c TimeChunk) Len() int { return c.End - c.Start }

// TimeChunks splits T steps into consecutive chunks of at most chunk steps
// (chunk ≤ 0: one chunk), each with a warm-up of min(warmup, Start) steps.
// For the kernel method a warm-up of MaxDelay−1 steps makes every chunk exact
// (KernelWarmup); the recursive method carries its state and needs none.
func TimeChunks(T, chunk, warmup int) iter.Seq[TimeChunk] {
	return func(yield func(TimeChunk) bool) {
		if chunk <= 0 {
			chunk = max(T, 1)
		}
		for k, s := 0, 0; s < T; k, s = k+1, s+chunk {
			if !yield(TimeChunk{Index: k, Start: s, End: min(T, s+chunk), Warm: min(max(warmup, 0), s)}) {
				return
			}
		}
	}
}

// KernelWarmup returns the warm-up, in runoff steps, that makes time chunks
// of the kernel method exact: MaxDelay−1 (the kernel has MaxDelay taps).
func KernelWarmup(opts Options) int {
	o, err := opts.withDefaults()
	if err != nil {
		return max(opts.MaxDelay-1, 0)
	}
	return o.MaxDelay - 1
}

// Coalescer gathers the outputs of time chunks (and of clusters or space
// chunks: rows are matched by reach id) into one tensor.
type Coalescer struct {
	y      *DataTensor
	row    map[int64]int
	filled []bool // per (row, step)
	left   int
}

// NewCoalescer prepares a B × len(ids) × T tensor to fill.
func NewCoalescer(b int, ids []int64, T int) *Coalescer {
	c := &Coalescer{y: NewDataTensor(b, ids, T), row: make(map[int64]int, len(ids)),
		filled: make([]bool, len(ids)*T), left: len(ids) * T}
	c.y.Units = "m3/s"
	for i, id := range ids {
		c.row[id] = i
	}
	return c
}

// Add copies part (its steps placed at t0, t0+1, …) into the result. Rows of
// part whose ids are not in the result are an error; so is a step filled
// twice.
func (c *Coalescer) Add(t0 int, part *DataTensor) error {
	if err := part.Validate(); err != nil {
		return err
	}
	if part.B != c.y.B {
		return fmt.Errorf("diffroute: chunk has %d batch members, want %d", part.B, c.y.B)
	}
	if t0 < 0 || t0+part.T > c.y.T {
		return fmt.Errorf("diffroute: chunk steps [%d, %d) outside [0, %d)", t0, t0+part.T, c.y.T)
	}
	if c.y.Step == 0 {
		c.y.Step = part.Step
	}
	if len(part.Times) == part.T && part.T > 0 {
		if len(c.y.Times) != c.y.T {
			c.y.Times = make([]string, c.y.T)
		}
		copy(c.y.Times[t0:], part.Times)
	}
	for j, id := range part.IDs {
		i, ok := c.row[id]
		if !ok {
			return fmt.Errorf("diffroute: chunk holds reach %d, not in the result", id)
		}
		f := c.filled[i*c.y.T+t0 : i*c.y.T+t0+part.T]
		if slices.Contains(f, true) {
			return fmt.Errorf("diffroute: steps [%d, %d) of reach %d given twice", t0, t0+part.T, id)
		}
		for k := range f {
			f[k] = true
		}
		c.left -= part.T
		for b := 0; b < part.B; b++ {
			copy(c.y.Series(b, i)[t0:t0+part.T], part.Series(b, j))
		}
	}
	return nil
}

// Result returns the coalesced tensor, or an error if some step of some reach
// was never given.
func (c *Coalescer) Result() (*DataTensor, error) {
	if c.left > 0 {
		for k, f := range c.filled {
			if !f {
				return nil, fmt.Errorf("diffroute: %d values missing (first: reach %d step %d)", c.left, c.y.IDs[k/c.y.T], k%c.y.T)
			}
		}
	}
	return c.y, nil
}

// gatherRows copies steps [t0, t1) of the runoff rows of the given reaches
// (rows[i] = runoff row of network reach i) into a new tensor labelled with
// ids, in buf when it is not nil (and large enough).
func gatherRows(x *DataTensor, rows []int, reaches []int32, ids []int64, t0, t1 int, buf []float32) *DataTensor {
	y := &DataTensor{B: x.B, N: len(reaches), T: t1 - t0, IDs: slices.Clone(ids), Step: x.Step, Units: x.Units}
	if len(x.Times) == x.T {
		y.Times = x.Times[t0:t1:t1]
	}
	if m := y.B * y.N * y.T; cap(buf) >= m {
		y.Data = buf[:m:m]
	} else {
		y.Data = make([]float32, m)
	}
	for b := 0; b < x.B; b++ {
		for k, i := range reaches {
			copy(y.Series(b, k), x.Series(b, rows[i])[t0:t1])
		}
	}
	return y
}
