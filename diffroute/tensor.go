package diffroute

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// DataTensor is a labelled float32 array with dims (batch, spatial, time):
// Data[(b*N+i)*T+t] is the value of batch member b at reach IDs[i] and time
// step t. It carries runoff into a router and discharge out of it. Reach ids
// label the spatial axis so that inputs are aligned with a network by id,
// never by position.
type DataTensor struct {
	B, N, T int
	Data    []float32
	IDs     []int64  // reach id of each spatial row, len N
	Times   []string // label of each time step, len T (as read; may be empty)
	Step    time.Duration
	Units   string // e.g. "m3/s"
}

// NewDataTensor allocates a zeroed tensor with the given reach ids and T steps.
func NewDataTensor(b int, ids []int64, t int) *DataTensor {
	if b < 0 || t < 0 {
		panic("diffroute: negative tensor dimension")
	}
	data := make([]float32, b*len(ids)*t)
	adviseHugePages(data)
	return &DataTensor{B: b, N: len(ids), T: t, Data: data, IDs: slices.Clone(ids)}
}

// At returns the value at (b, i, t).
func (x *DataTensor) At(b, i, t int) float32 { return x.Data[(b*x.N+i)*x.T+t] }

// Set sets the value at (b, i, t).
func (x *DataTensor) Set(b, i, t int, v float32) { x.Data[(b*x.N+i)*x.T+t] = v }

// Series returns the time series of batch member b at row i, sharing storage.
func (x *DataTensor) Series(b, i int) []float32 {
	o := (b*x.N + i) * x.T
	return x.Data[o : o+x.T : o+x.T]
}

// Validate checks that the dims, data and labels agree.
func (x *DataTensor) Validate() error {
	switch {
	case x.B < 0 || x.N < 0 || x.T < 0:
		return fmt.Errorf("diffroute: negative tensor dims (%d, %d, %d)", x.B, x.N, x.T)
	case len(x.Data) != x.B*x.N*x.T:
		return fmt.Errorf("diffroute: tensor data has %d values, dims (%d, %d, %d) need %d", len(x.Data), x.B, x.N, x.T, x.B*x.N*x.T)
	case len(x.IDs) != x.N:
		return fmt.Errorf("diffroute: tensor has %d reach ids for %d rows", len(x.IDs), x.N)
	case len(x.Times) != 0 && len(x.Times) != x.T:
		return fmt.Errorf("diffroute: tensor has %d time labels for %d steps", len(x.Times), x.T)
	}
	return nil
}

// NotFiniteError reports the first NaN or infinite value of a tensor.
type NotFiniteError struct {
	Member int     // batch member
	ID     int64   // reach id
	Step   int     // time step, from the tensor's start
	Time   string  // the step's label, when the tensor has labels
	Value  float32 // NaN, +Inf or -Inf
}

func (e *NotFiniteError) Error() string {
	at := fmt.Sprintf("step %d", e.Step)
	if e.Time != "" {
		at = "time " + e.Time
	}
	if e.Member > 0 {
		at += fmt.Sprintf(" of batch member %d", e.Member)
	}
	return fmt.Sprintf("reach %d at %s is %v", e.ID, at, e.Value)
}

// CheckFinite returns a *NotFiniteError for the first NaN or infinite
// value, in (member, reach row, step) order, or nil. Routers propagate NaN
// and overflow to Inf as arithmetic does (finite runoff overflows only past
// float32's range); call it on inputs or outputs where that must be an
// error.
func (x *DataTensor) CheckFinite() error {
	k := firstNotFinite(x.Data)
	if k < 0 {
		return nil
	}
	t := k % max(x.T, 1)
	e := &NotFiniteError{Member: k / max(x.N*x.T, 1), ID: x.IDs[k/max(x.T, 1)%max(x.N, 1)], Step: t, Value: x.Data[k]}
	if len(x.Times) == x.T {
		e.Time = x.Times[t]
	}
	return e
}

// firstNotFinite returns the index of the first NaN or infinite value of
// v, or −1; a large v is scanned in parts on every core (a gradient checks
// ∂L/∂y of the whole network on every call).
func firstNotFinite(v []float32) int {
	const part = 1 << 20
	w := min(runtime.GOMAXPROCS(0), (len(v)+part-1)/part)
	if w <= 1 {
		return scanNotFinite(v)
	}
	first := make([]int, w)
	var wg sync.WaitGroup
	for i := range w {
		lo, hi := i*len(v)/w, (i+1)*len(v)/w
		wg.Add(1)
		go func() {
			defer wg.Done()
			if k := scanNotFinite(v[lo:hi]); k >= 0 {
				first[i] = lo + k
			} else {
				first[i] = -1
			}
		}()
	}
	wg.Wait()
	for _, k := range first {
		if k >= 0 {
			return k
		}
	}
	return -1
}

// scanNotFinite is firstNotFinite on one core: blocks of 64 values are
// tested without a branch per value (an all-ones exponent, NaN or ±Inf,
// carries into the sign bit), and only a block that has one is searched.
func scanNotFinite(v []float32) int {
	for i := 0; i < len(v); i += 64 {
		blk := v[i:min(i+64, len(v))]
		var acc uint32
		for _, x := range blk {
			acc |= math.Float32bits(x)&0x7f800000 + 0x00800000
		}
		if acc&0x80000000 == 0 {
			continue
		}
		for j, x := range blk {
			if x-x != 0 { // true for NaN and ±Inf only
				return i + j
			}
		}
	}
	return -1
}

// Clone returns a deep copy.
func (x *DataTensor) Clone() *DataTensor {
	y := *x
	y.Data = slices.Clone(x.Data)
	y.IDs = slices.Clone(x.IDs)
	y.Times = slices.Clone(x.Times)
	return &y
}

// SelectIDs returns a new tensor with the rows of the given reach ids, in that
// order. Unknown ids are an error naming the first one.
func (x *DataTensor) SelectIDs(ids []int64) (*DataTensor, error) {
	pos := make(map[int64]int, x.N)
	for i, id := range x.IDs {
		pos[id] = i
	}
	y := &DataTensor{B: x.B, N: len(ids), T: x.T, IDs: slices.Clone(ids), Times: slices.Clone(x.Times), Step: x.Step, Units: x.Units}
	y.Data = make([]float32, y.B*y.N*y.T)
	for j, id := range ids {
		i, ok := pos[id]
		if !ok {
			return nil, fmt.Errorf("diffroute: reach %d is not in the tensor", id)
		}
		for b := 0; b < x.B; b++ {
			copy(y.Series(b, j), x.Series(b, i))
		}
	}
	return y, nil
}

// SliceTime returns a new tensor holding steps [t0, t1).
func (x *DataTensor) SliceTime(t0, t1 int) *DataTensor {
	if t0 < 0 || t1 > x.T || t0 > t1 {
		panic(fmt.Sprintf("diffroute: time slice [%d, %d) out of range [0, %d)", t0, t1, x.T))
	}
	y := &DataTensor{B: x.B, N: x.N, T: t1 - t0, IDs: slices.Clone(x.IDs), Step: x.Step, Units: x.Units}
	if len(x.Times) == x.T {
		y.Times = slices.Clone(x.Times[t0:t1])
	}
	y.Data = make([]float32, y.B*y.N*y.T)
	for b := 0; b < x.B; b++ {
		for i := 0; i < x.N; i++ {
			copy(y.Series(b, i), x.Series(b, i)[t0:t1])
		}
	}
	return y
}

// ConcatTime appends the steps of ys after x's, in order. All must share B and
// reach ids.
func ConcatTime(xs ...*DataTensor) (*DataTensor, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("diffroute: nothing to concatenate")
	}
	first := xs[0]
	total := 0
	labels := true
	for _, x := range xs {
		if x.B != first.B || !slices.Equal(x.IDs, first.IDs) {
			return nil, fmt.Errorf("diffroute: cannot concatenate tensors with different batch or reach ids")
		}
		total += x.T
		labels = labels && len(x.Times) == x.T
	}
	y := &DataTensor{B: first.B, N: first.N, T: total, IDs: slices.Clone(first.IDs), Step: first.Step, Units: first.Units}
	y.Data = make([]float32, y.B*y.N*y.T)
	off := 0
	for _, x := range xs {
		for b := 0; b < x.B; b++ {
			for i := 0; i < x.N; i++ {
				copy(y.Series(b, i)[off:off+x.T], x.Series(b, i))
			}
		}
		if labels {
			y.Times = append(y.Times, x.Times...)
		}
		off += x.T
	}
	return y, nil
}

// Transpose returns the data as (batch, time, spatial), row-major, the layout
// of RAPID files.
func (x *DataTensor) Transpose() []float32 {
	out := make([]float32, len(x.Data))
	for b := 0; b < x.B; b++ {
		for i := 0; i < x.N; i++ {
			s := x.Series(b, i)
			for t, v := range s {
				out[(b*x.T+t)*x.N+i] = v
			}
		}
	}
	return out
}

// FromTimeMajor builds a tensor with one batch member from time-major rows
// (rows[t][i] is the value at step t for reach ids[i]), the layout of CSV and
// RAPID files.
func FromTimeMajor(ids []int64, rows [][]float32) (*DataTensor, error) {
	x := NewDataTensor(1, ids, len(rows))
	for t, row := range rows {
		if len(row) != len(ids) {
			return nil, fmt.Errorf("diffroute: time step %d has %d values for %d reaches", t, len(row), len(ids))
		}
		for i, v := range row {
			x.Data[i*x.T+t] = v
		}
	}
	return x, nil
}

// String gives dims and labels in one line.
func (x *DataTensor) String() string {
	first, last := "", ""
	if len(x.Times) > 0 {
		first, last = x.Times[0], x.Times[len(x.Times)-1]
	}
	return fmt.Sprintf("DataTensor(batch=%d, spatial=%d, time=%d) %s [%s .. %s] step %v", x.B, x.N, x.T, x.Units, first, last, x.Step)
}

// Member returns batch member b as a tensor with one member, sharing
// storage with x (DiffRoute's squeeze of one ensemble member).
func (x *DataTensor) Member(b int) *DataTensor {
	if b < 0 || b >= x.B {
		panic(fmt.Sprintf("diffroute: batch member %d out of range [0, %d)", b, x.B))
	}
	y := *x
	y.B = 1
	o := b * x.N * x.T
	y.Data = x.Data[o : o+x.N*x.T : o+x.N*x.T]
	return &y
}

// StackBatch stacks tensors with the same reaches and steps along the batch
// axis (the inverse of Member, and the way to expand a single series into an
// ensemble).
func StackBatch(xs ...*DataTensor) (*DataTensor, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("diffroute: nothing to stack")
	}
	first := xs[0]
	y := &DataTensor{N: first.N, T: first.T, IDs: slices.Clone(first.IDs), Times: slices.Clone(first.Times), Step: first.Step, Units: first.Units}
	for k, x := range xs {
		if x.N != first.N || x.T != first.T || !slices.Equal(x.IDs, first.IDs) {
			return nil, fmt.Errorf("diffroute: tensor %d has other reaches or steps than tensor 0", k)
		}
		y.B += x.B
	}
	y.Data = make([]float32, 0, y.B*y.N*y.T)
	for _, x := range xs {
		y.Data = append(y.Data, x.Data...)
	}
	return y, nil
}
