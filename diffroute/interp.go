package diffroute

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// PixelSource is gridded runoff read by pixel: one column of values per pixel
// label and one row per time step. The data package's PixelRunoff (a Feather
// table) implements it; MemPixelSource holds one in memory.
type PixelSource interface {
	// Labels returns the pixel labels, one per column.
	Labels() []string
	// Times returns the time labels, one per row; their number is the number
	// of steps.
	Times() []string
	// Step returns the uniform spacing of the rows, or 0 when unknown.
	Step() time.Duration
	// ReadColumnsRange reads rows [t0, t1) of the named pixels into dst,
	// pixel after pixel: dst[j*(t1-t0)+t] is pixel labels[j] at row t0+t.
	// dst is reused when it has the capacity; the filled slice is returned.
	// Missing values read as NaN.
	ReadColumnsRange(labels []string, t0, t1 int, dst []float32) ([]float32, error)
}

// Weights is a catchment interpolation table: row r says that pixel Pixel[r]
// contributes with weight Area[r] to the runoff of river RiverID[r]. Pixel is
// a label matched against the pixel source's labels, not a position. In
// DiffHydro's data the weights are the overlap areas of catchment and pixel in
// m² (area_sqm_total), not fractions.
type Weights struct {
	RiverID []int64
	Pixel   []string
	Area    []float64
}

// Len returns the number of rows.
func (w *Weights) Len() int { return len(w.RiverID) }

// Validate checks that the columns have the same length and that every
// weight is finite and non-negative.
func (w *Weights) Validate() error {
	if w == nil {
		return fmt.Errorf("diffroute: no interpolation weights")
	}
	n := len(w.RiverID)
	if len(w.Pixel) != n || len(w.Area) != n {
		return fmt.Errorf("diffroute: interpolation weights have %d river ids, %d pixels and %d areas", n, len(w.Pixel), len(w.Area))
	}
	for r, a := range w.Area {
		if math.IsNaN(a) || math.IsInf(a, 0) || a < 0 {
			return fmt.Errorf("diffroute: interpolation weight row %d (river %d, pixel %q) has area %v, want a finite number ≥ 0", r+1, w.RiverID[r], w.Pixel[r], a)
		}
	}
	return nil
}

// FillPolicy says what interpolation does with a missing (NaN, null) pixel
// value in a pixel that a requested river uses.
type FillPolicy int

const (
	// FillError, the default, fails naming the pixel and the time.
	FillError FillPolicy = iota
	// FillZero reads missing values as zero runoff.
	FillZero
)

func (f FillPolicy) String() string {
	switch f {
	case FillError:
		return "error"
	case FillZero:
		return "zero"
	}
	return "FillPolicy(" + strconv.Itoa(int(f)) + ")"
}

// DefaultInterpScale is the default InterpOptions.Scale: 1/86 400. DiffHydro's
// weights are areas in m² and its pixel values daily depths in m, so
// Σ area × depth is m³ per day, and dividing by the 86 400 seconds of a day
// gives m³/s.
const DefaultInterpScale = 1.0 / 86400

// InterpOptions tune an Interpolator. The zero value suits DiffHydro's data.
type InterpOptions struct {
	// Scale multiplies Σ weight × pixel value. 0 means DefaultInterpScale
	// (m² × m/day → m³/s). Use 1 for weights that are fractions of pixel
	// values already in the target unit, or 1/step-seconds for depths per
	// step of another length.
	Scale float64
	// Units labels the result. "" means "m3/s" when Scale is the default and
	// no label otherwise.
	Units string
	// Fill decides what a missing pixel value does (default FillError).
	Fill FillPolicy
	// Workers bounds the goroutines summing rivers; 0 means GOMAXPROCS.
	Workers int
}

// Interpolator computes catchment runoff from pixel runoff:
//
//	runoff[river, t] = Scale × Σ_rows of river  Area[row] × pixel[Pixel[row], t]
//
// reading only the pixels the requested rivers use. It is safe for
// concurrent use when its PixelSource is.
type Interpolator struct {
	src   PixelSource
	opts  InterpOptions
	nT    int
	index map[string]int32 // source label -> column

	// Weight rows grouped by river: rows of river id are [span[id].lo, span[id].hi)
	// of pix, area and row.
	span map[int64]rowSpan
	pix  []int32 // source column, -1 when the source lacks the pixel
	lab  []string
	area []float64
	row  []int32 // 0-based row in the weight table, for messages
}

type rowSpan struct{ lo, hi int32 }

// NewInterpolator indexes the weights by river and matches their pixel
// labels against the source. Weights naming pixels the source lacks are
// reported when a river using them is interpolated (or checked), so that a
// weight table covering more than the source's area remains usable for the
// rivers it does cover.
func NewInterpolator(w *Weights, src PixelSource, opts *InterpOptions) (*Interpolator, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("diffroute: no pixel source")
	}
	in := &Interpolator{src: src, nT: len(src.Times())}
	if opts != nil {
		in.opts = *opts
	}
	if in.opts.Scale == 0 {
		in.opts.Scale = DefaultInterpScale
		if in.opts.Units == "" {
			in.opts.Units = "m3/s"
		}
	}
	if math.IsNaN(in.opts.Scale) || math.IsInf(in.opts.Scale, 0) {
		return nil, fmt.Errorf("diffroute: interpolation scale %v is not finite", in.opts.Scale)
	}
	if in.opts.Fill != FillError && in.opts.Fill != FillZero {
		return nil, fmt.Errorf("diffroute: unknown fill policy %v", in.opts.Fill)
	}
	if in.opts.Workers <= 0 {
		in.opts.Workers = runtime.GOMAXPROCS(0)
	}
	labels := src.Labels()
	in.index = make(map[string]int32, len(labels))
	for j, l := range labels {
		if _, dup := in.index[l]; dup {
			return nil, fmt.Errorf("diffroute: pixel source has label %q twice", l)
		}
		in.index[l] = int32(j)
	}
	n := w.Len()
	order := make([]int32, n)
	for r := range order {
		order[r] = int32(r)
	}
	slices.SortStableFunc(order, func(a, b int32) int {
		switch ra, rb := w.RiverID[a], w.RiverID[b]; {
		case ra < rb:
			return -1
		case ra > rb:
			return 1
		}
		return 0
	})
	in.span = make(map[int64]rowSpan)
	in.pix = make([]int32, n)
	in.lab = make([]string, n)
	in.area = make([]float64, n)
	in.row = order
	for k, r := range order {
		id := w.RiverID[r]
		sp, ok := in.span[id]
		if !ok {
			sp.lo = int32(k)
		}
		sp.hi = int32(k + 1)
		in.span[id] = sp
		j, ok := in.index[w.Pixel[r]]
		if !ok {
			j = -1
		}
		in.pix[k], in.lab[k], in.area[k] = j, w.Pixel[r], w.Area[r]
	}
	return in, nil
}

// Options returns the options in effect, defaults filled in.
func (in *Interpolator) Options() InterpOptions { return in.opts }

// Len returns the number of time steps of the pixel source.
func (in *Interpolator) Len() int { return in.nT }

// Rivers returns the ids of the rivers that have weights, in increasing
// order.
func (in *Interpolator) Rivers() []int64 {
	ids := make([]int64, 0, len(in.span))
	for id := range in.span {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// MissingWeightsError reports rivers that have no interpolation weights.
type MissingWeightsError struct {
	Rivers []int64 // every river lacking weights, in the order asked
}

func (e *MissingWeightsError) Error() string {
	s := fmt.Sprintf("river %d has no interpolation weights", e.Rivers[0])
	if n := len(e.Rivers) - 1; n > 0 {
		s += fmt.Sprintf(" (nor have %d more rivers)", n)
	}
	return s
}

// PixelValueError reports a missing or infinite value in a pixel that a
// requested river uses.
type PixelValueError struct {
	Pixel string  // pixel label
	Step  int     // row in the pixel source
	Time  string  // time label of the row
	River int64   // one river using the pixel
	Value float32 // NaN for a missing value
}

func (e *PixelValueError) Error() string {
	what := "has no runoff value (NaN or null)"
	if !math.IsNaN(float64(e.Value)) {
		what = fmt.Sprintf("has runoff %v", e.Value)
	}
	return fmt.Sprintf("pixel %q %s at %s (step %d), used by river %d; choose FillZero to read missing values as 0",
		e.Pixel, what, e.Time, e.Step, e.River)
}

// plan is what interpolating a set of rivers needs: the source columns to
// read, and for each river its weight rows pointing into those columns.
type plan struct {
	rivers []int64
	cols   []int32  // source columns to read
	labels []string // their labels
	user   []int64  // a river using each column, for messages
	start  []int32  // rows of river i: [start[i], start[i+1]) of col and w
	col    []int32  // position in cols
	w      []float64
}

// Check verifies that every river has weights and that every pixel its
// weights name is in the source, without reading any runoff.
func (in *Interpolator) Check(rivers []int64) error {
	_, err := in.plan(rivers)
	return err
}

// PixelsFor returns the labels of the pixels the rivers use, each once, in
// order of first use.
func (in *Interpolator) PixelsFor(rivers []int64) ([]string, error) {
	p, err := in.plan(rivers)
	if err != nil {
		return nil, err
	}
	return p.labels, nil
}

func (in *Interpolator) plan(rivers []int64) (*plan, error) {
	p := &plan{rivers: rivers, start: make([]int32, 1, len(rivers)+1)}
	seen := make(map[int64]int, len(rivers))
	colOf := make(map[int32]int32)
	var missing []int64
	for i, id := range rivers {
		if k, dup := seen[id]; dup {
			return nil, fmt.Errorf("diffroute: river %d is listed twice (positions %d and %d)", id, k, i)
		}
		seen[id] = i
		sp, ok := in.span[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		for k := sp.lo; k < sp.hi; k++ {
			j := in.pix[k]
			if j < 0 {
				return nil, fmt.Errorf("diffroute: river %d: weight row %d names pixel %q, which the pixel source lacks", id, in.row[k]+1, in.lab[k])
			}
			c, ok := colOf[j]
			if !ok {
				c = int32(len(p.cols))
				colOf[j] = c
				p.cols = append(p.cols, j)
				p.labels = append(p.labels, in.lab[k])
				p.user = append(p.user, id)
			}
			p.col = append(p.col, c)
			p.w = append(p.w, in.area[k])
		}
		p.start = append(p.start, int32(len(p.col)))
	}
	if len(missing) > 0 {
		return nil, &MissingWeightsError{Rivers: missing}
	}
	return p, nil
}

// Interpolate returns the catchment runoff of the given rivers (rows in that
// order) for pixel-source steps [t0, t1), one batch member, labelled with the
// source's time labels and step. It reads only the pixels those rivers use.
// Rivers without weights, weights naming pixels the source lacks, and missing
// values in used pixels (under FillError) are errors.
func (in *Interpolator) Interpolate(ctx context.Context, rivers []int64, t0, t1 int) (*DataTensor, error) {
	var buf []float32
	return in.interpolate(ctx, rivers, t0, t1, &buf)
}

func (in *Interpolator) interpolate(ctx context.Context, rivers []int64, t0, t1 int, buf *[]float32) (*DataTensor, error) {
	if t0 < 0 || t1 > in.nT || t0 > t1 {
		return nil, fmt.Errorf("diffroute: steps [%d, %d) outside the pixel source's [0, %d)", t0, t1, in.nT)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := in.plan(rivers)
	if err != nil {
		return nil, err
	}
	T := t1 - t0
	pix, err := in.src.ReadColumnsRange(p.labels, t0, t1, *buf)
	if err != nil {
		return nil, fmt.Errorf("diffroute: reading pixel runoff: %w", err)
	}
	if len(pix) != len(p.labels)*T {
		return nil, fmt.Errorf("diffroute: pixel source returned %d values for %d pixels × %d steps", len(pix), len(p.labels), T)
	}
	*buf = pix
	if err := in.screen(p, pix, t0, T); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	x := NewDataTensor(1, rivers, T)
	x.Step = in.src.Step()
	x.Units = in.opts.Units
	if times := in.src.Times(); len(times) == in.nT {
		x.Times = slices.Clone(times[t0:t1])
	}
	in.combine(p, pix, x)
	return x, nil
}

// screen checks the used pixel columns for missing and infinite values,
// replacing missing ones by 0 under FillZero.
func (in *Interpolator) screen(p *plan, pix []float32, t0, T int) error {
	for c := range p.cols {
		s := pix[c*T : (c+1)*T]
		for t, v := range s {
			if v-v == 0 { // finite
				continue
			}
			if v != v && in.opts.Fill == FillZero {
				s[t] = 0
				continue
			}
			e := &PixelValueError{Pixel: p.labels[c], Step: t0 + t, River: p.user[c], Value: v}
			if times := in.src.Times(); t0+t < len(times) {
				e.Time = times[t0+t]
			}
			return e
		}
	}
	return nil
}

// combine sums weighted pixel series into the rows of x, rivers split over
// workers.
func (in *Interpolator) combine(p *plan, pix []float32, x *DataTensor) {
	T := x.T
	n := len(p.rivers)
	scale := in.opts.Scale
	work := func(lo, hi int) {
		// Time tiles keep the accumulator in L1 cache.
		const tile = 1024
		var acc [tile]float64
		for i := lo; i < hi; i++ {
			out := x.Series(0, i)
			k0, k1 := int(p.start[i]), int(p.start[i+1])
			for s0 := 0; s0 < T; s0 += tile {
				n := min(tile, T-s0)
				a := acc[:n]
				clear(a)
				for k := k0; k < k1; k++ {
					w := p.w[k]
					off := int(p.col[k])*T + s0
					s := pix[off : off+n]
					s = s[:len(a)]
					for t, v := range s {
						a[t] += w * float64(v)
					}
				}
				o := out[s0 : s0+n]
				o = o[:len(a)]
				for t, v := range a {
					o[t] = float32(v * scale)
				}
			}
		}
	}
	workers := min(in.opts.Workers, n)
	if workers <= 1 || len(p.w)*T < 1<<16 {
		work(0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		wg.Go(func() { work(lo, min(n, lo+per)) })
	}
	wg.Wait()
}

// MemPixelSource is a PixelSource held in memory.
type MemPixelSource struct {
	labels []string
	times  []string
	step   time.Duration
	data   []float32
	index  map[string]int
}

// NewMemPixelSource wraps pixel runoff held in memory: data[j*len(times)+t]
// is pixel labels[j] at step t (NaN for a missing value). The slices are
// used, not copied.
func NewMemPixelSource(labels, times []string, step time.Duration, data []float32) (*MemPixelSource, error) {
	if len(data) != len(labels)*len(times) {
		return nil, fmt.Errorf("diffroute: %d pixel values for %d pixels × %d steps", len(data), len(labels), len(times))
	}
	m := &MemPixelSource{labels: labels, times: times, step: step, data: data, index: make(map[string]int, len(labels))}
	for j, l := range labels {
		if _, dup := m.index[l]; dup {
			return nil, fmt.Errorf("diffroute: pixel label %q appears twice", l)
		}
		m.index[l] = j
	}
	return m, nil
}

// Labels returns the pixel labels.
func (m *MemPixelSource) Labels() []string { return m.labels }

// Times returns the time labels.
func (m *MemPixelSource) Times() []string { return m.times }

// Step returns the time step.
func (m *MemPixelSource) Step() time.Duration { return m.step }

// ReadColumnsRange implements PixelSource.
func (m *MemPixelSource) ReadColumnsRange(labels []string, t0, t1 int, dst []float32) ([]float32, error) {
	nT := len(m.times)
	if t0 < 0 || t1 > nT || t0 > t1 {
		return nil, fmt.Errorf("diffroute: rows [%d, %d) out of range [0, %d)", t0, t1, nT)
	}
	T := t1 - t0
	n := len(labels) * T
	if cap(dst) >= n {
		dst = dst[:n]
	} else {
		dst = make([]float32, n)
	}
	for j, l := range labels {
		k, ok := m.index[l]
		if !ok {
			return nil, fmt.Errorf("diffroute: no pixel %q", l)
		}
		copy(dst[j*T:(j+1)*T], m.data[k*nT+t0:k*nT+t1])
	}
	return dst, nil
}
