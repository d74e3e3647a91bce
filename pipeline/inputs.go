package pipeline

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// Check refuses contradictory or invalid fields, before anything is read;
// Run calls it first.
func (c *Config) Check() error {
	switch {
	case c.RAPID == "":
		return configErrorf("route: --rapid is required")
	case c.Runoff == "" && c.PixelRunoff == "":
		return configErrorf("route: --runoff or --pixel-runoff is required")
	case c.PixelRunoff != "" && (c.Weights == "" || c.Runoff != ""):
		return configErrorf("route: --pixel-runoff needs --weights and replaces --runoff")
	case c.Weights != "" && c.PixelRunoff == "":
		return configErrorf("route: --weights applies to --pixel-runoff only")
	case c.TimeChunk < 0 || c.MaxNodes < 0 || c.MaxPaths < 0 || c.Budget < 0:
		return configErrorf("route: --time-chunk, --max-nodes, --max-paths and --mem-budget must be ≥ 0")
	case c.Step < 0 || c.SubStep < 0:
		return configErrorf("route: --step and --substep must be positive")
	case c.Qinit != "" && c.Options.Method == diffroute.Kernel:
		return configErrorf("route: --qinit needs the recursive method: drop --method kernel")
	}
	if err := c.checkRestart(); err != nil {
		return err
	}
	if c.RunoffUnits != "" {
		if u := NormUnits(c.RunoffUnits); u != "m3" && u != "m3/s" {
			return configErrorf("route: --runoff-units %q: want m3 (volume per runoff step, RAPID's m3_riv) or m3/s", c.RunoffUnits)
		}
	}
	if c.Runoff != "" {
		f, err := data.SeriesFormatFor(c.Runoff, false)
		if err != nil {
			return &ConfigError{Msg: "route: --runoff " + err.Error()}
		}
		if c.RunoffVar != "" && !f.Vars {
			return configErrorf("route: --runoff-var applies to netCDF files only")
		}
	}
	if c.Out != "" {
		if c.OutFormat != "" {
			if _, err := data.SeriesFormatNamed(c.OutFormat, true); err != nil {
				return &ConfigError{Msg: "route: --out-format " + err.Error()}
			}
		} else if _, err := data.SeriesFormatFor(c.Out, true); err != nil {
			return &ConfigError{Msg: "route: --out " + err.Error()}
		}
	}
	if c.OutLayout != "" && c.OutLayout != "long" && c.OutLayout != "wide" {
		return configErrorf("route: --out-layout %q: want long or wide", c.OutLayout)
	}
	if c.Compress < -1 || c.Compress > 22 {
		return configErrorf("route: --compress %d: want a level (1-9 deflate for nc4, 1-22 zstd for parquet) or -1 for none", c.Compress)
	}
	return nil
}

// runoffSource reads runoff for a time range, from a runoff file or by
// interpolating pixel runoff, already in m³/s and checked.
type runoffSource struct {
	path     string
	read     func(t0, count int) (*diffroute.DataTensor, error)
	ids      []int64
	times    []string
	step     time.Duration // from the file's times
	rateStep time.Duration // the step volumes are divided by (set once known)
	units    string        // the file's units, normalised: "m3" (volume per step) or "m3/s"
	close    func()
	members  int // ensemble members (a member dimension, or files matched by a --runoff pattern); 0 or 1: one
	// readMember reads member b (0-based) alone; nil: the source has one.
	readMember func(b, t0, count int) (*diffroute.DataTensor, error)
	// readOrdered, when not nil, reads like read with the tensor's rows in
	// the given order of the file's reaches (row k: file reach order[k]),
	// into the tensor into when not nil (see data.NCOptions.Into).
	readOrdered func(t0, count int, order []int32, into *diffroute.DataTensor) (*diffroute.DataTensor, error)
	// rangesOrdered, when not nil, returns a reader like readOrdered for
	// one order, the file's header read once (nil when the file cannot be
	// read so: use readOrdered).
	rangesOrdered func(order []int32) (func(t0, count int, into *diffroute.DataTensor) (*diffroute.DataTensor, error), error)
	// readColumns, when not nil, reads like read only the file's reaches at
	// the given positions (row k: file reach cols[k]), skipping the rest
	// of the file where its layout allows.
	readColumns func(t0, count int, cols []int32) (*diffroute.DataTensor, error)
}

// member reads steps [t0, t0+count) of ensemble member b alone.
func (s *runoffSource) member(b, t0, count int) (*diffroute.DataTensor, error) {
	if s.readMember == nil {
		return s.read(t0, count)
	}
	return s.readMember(b, t0, count)
}

// openMembers opens every file a --runoff pattern matches as one ensemble
// member each (in name order): the files must hold the same reaches and
// times; reads stack them as the batch dimension.
func openMembers(c *Config, rapid *data.RAPID) (*runoffSource, error) {
	files, err := filepath.Glob(c.Runoff)
	if err != nil {
		return nil, configErrorf("route: --runoff %s: %v", c.Runoff, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no file matches", c.Runoff)
	}
	slices.Sort(files)
	var subs []*runoffSource
	for _, f := range files {
		cc := *c
		cc.Runoff = f
		s, err := openRunoff(&cc, rapid)
		if err != nil {
			return nil, err
		}
		if len(subs) > 0 && (!slices.Equal(s.ids, subs[0].ids) || !slices.Equal(s.times, subs[0].times)) {
			return nil, fmt.Errorf("%s: its reaches or times differ from %s's: ensemble members must match", f, subs[0].path)
		}
		subs = append(subs, s)
	}
	src := *subs[0]
	src.path, src.members = c.Runoff, 0
	for _, s := range subs {
		src.members += max(1, s.members)
	}
	src.close = func() {
		for _, s := range subs {
			s.close()
		}
	}
	combined := &src
	// Member k of the ensemble is member owner[k].b of file owner[k].s.
	type at struct {
		s *runoffSource
		b int
	}
	var owner []at
	for _, s := range subs {
		for b := 0; b < max(1, s.members); b++ {
			owner = append(owner, at{s, b})
		}
	}
	combined.readMember = func(k, t0, count int) (*diffroute.DataTensor, error) {
		o := owner[k]
		o.s.rateStep = combined.rateStep
		return o.s.member(o.b, t0, count)
	}
	combined.read = func(t0, count int) (*diffroute.DataTensor, error) {
		xs := make([]*diffroute.DataTensor, len(subs))
		for k, s := range subs {
			s.rateStep = combined.rateStep
			x, err := s.read(t0, count)
			if err != nil {
				return nil, err
			}
			xs[k] = x
		}
		return diffroute.StackBatch(xs...)
	}
	return combined, nil
}

func openRunoff(c *Config, rapid *data.RAPID) (*runoffSource, error) {
	if c.PixelRunoff != "" {
		in, pr, err := data.OpenInterpolator(c.PixelRunoff, c.Weights, nil)
		if err != nil {
			return nil, err
		}
		ids := rapid.Network.IDs()
		if err := in.Check(ids); err != nil {
			pr.Close()
			return nil, fmt.Errorf("%s: %w", c.Weights, err)
		}
		src := &runoffSource{path: c.PixelRunoff, ids: ids, times: pr.Times(), step: pr.Step(), units: "m3/s", close: func() { pr.Close() }}
		src.read = func(t0, count int) (*diffroute.DataTensor, error) {
			x, err := in.Interpolate(context.Background(), ids, t0, t0+count)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.PixelRunoff, err)
			}
			return x, checkFinite(x, c.PixelRunoff)
		}
		return src, nil
	}
	if strings.ContainsAny(c.Runoff, "*?[") {
		if _, err := os.Stat(c.Runoff); err != nil {
			return openMembers(c, rapid)
		}
	}
	if _, err := os.Stat(c.Runoff); err != nil {
		return nil, err
	}
	rangeOf := func(t0, count int) *data.NCOptions {
		return &data.NCOptions{Var: c.RunoffVar, IDs: rapid.ConnectIDs, TimeStart: t0, TimeCount: count}
	}
	format, err := data.SeriesFormatFor(c.Runoff, false)
	if err != nil {
		return nil, err
	}
	head, err := data.ReadSeries(c.Runoff, rangeOf(0, -1))
	if err != nil {
		return nil, err
	}
	if head.T == 0 && len(head.Times) == 0 { // no time coordinate: read it whole
		if head, err = data.ReadSeries(c.Runoff, rangeOf(0, 0)); err != nil {
			return nil, err
		}
		head.Times = make([]string, head.T)
		for t := range head.Times {
			head.Times[t] = strconv.Itoa(t)
		}
	}
	// A runoff file lists the reaches in one of the RAPID folder's orders,
	// as a rule: it shares that list (millions of ids) rather than keep its
	// own.
	switch {
	case slices.Equal(head.IDs, rapid.ConnectIDs):
		head.IDs = rapid.ConnectIDs
	case slices.Equal(head.IDs, rapid.Network.IDs()):
		head.IDs = rapid.Network.IDs()
	}
	src := &runoffSource{path: c.Runoff, ids: head.IDs, times: head.Times, step: head.Step, close: func() {}, members: head.B}
	units := c.RunoffUnits
	if units == "" {
		units = head.Units
	}
	src.units = NormUnits(units)
	// read reads member b (0-based) alone, or every member when b < 0.
	read := func(b, t0, count int) (*diffroute.DataTensor, error) {
		var x *diffroute.DataTensor
		if head.T > 0 { // read whole already (one member)
			x = head.SliceTime(t0, t0+count)
		} else {
			o := rangeOf(t0, count)
			o.Member = b + 1
			if x, err = data.ReadSeries(c.Runoff, o); err != nil {
				return nil, err
			}
		}
		if err := toRate(x, units, src.rateStep, c.Runoff); err != nil {
			return nil, err
		}
		return x, checkFinite(x, c.Runoff)
	}
	src.read = func(t0, count int) (*diffroute.DataTensor, error) { return read(-1, t0, count) }
	if src.members > 1 {
		src.readMember = func(b, t0, count int) (*diffroute.DataTensor, error) { return read(b, t0, count) }
	}
	if head.T == 0 && strings.HasPrefix(format.Name, "netCDF") {
		src.readOrdered = func(t0, count int, order []int32, into *diffroute.DataTensor) (*diffroute.DataTensor, error) {
			o := rangeOf(t0, count)
			o.Order, o.Into = order, into
			x, err := data.ReadSeries(c.Runoff, o)
			if err != nil {
				return nil, err
			}
			if err := toRate(x, units, src.rateStep, c.Runoff); err != nil {
				return nil, err
			}
			return x, checkFinite(x, c.Runoff)
		}
		src.rangesOrdered = func(order []int32) (func(t0, count int, into *diffroute.DataTensor) (*diffroute.DataTensor, error), error) {
			o := rangeOf(0, 0)
			o.Order = order
			rg, err := data.OpenRunoffRanges(c.Runoff, o)
			if err != nil || rg == nil {
				return nil, err
			}
			return func(t0, count int, into *diffroute.DataTensor) (*diffroute.DataTensor, error) {
				if into == nil {
					into = diffroute.NewDataTensor(1, make([]int64, len(order)), count)
				}
				if err := rg.Read(into, t0); err != nil {
					return nil, err
				}
				if err := toRate(into, units, src.rateStep, c.Runoff); err != nil {
					return nil, err
				}
				return into, checkFinite(into, c.Runoff)
			}, nil
		}
		src.readColumns = func(t0, count int, cols []int32) (*diffroute.DataTensor, error) {
			o := rangeOf(t0, count)
			o.Columns = cols
			x, err := data.ReadSeries(c.Runoff, o)
			if err != nil {
				return nil, err
			}
			if err := toRate(x, units, src.rateStep, c.Runoff); err != nil {
				return nil, err
			}
			return x, checkFinite(x, c.Runoff)
		}
	}
	return src, nil
}

// toRate converts runoff to m³/s: volumes per step (RAPID m3_riv) are
// divided by the step.
func toRate(x *diffroute.DataTensor, units string, step time.Duration, path string) error {
	switch NormUnits(units) {
	case "m3":
		if err := data.VolumeToRate(x, step); err != nil {
			return err
		}
	case "m3/s":
	case "":
		return fmt.Errorf("%s: runoff units unknown; give --runoff-units m3 (volume per step) or m3/s", path)
	default:
		return fmt.Errorf("%s: runoff units %q not understood; give --runoff-units m3 or m3/s", path, units)
	}
	x.Units = "m3/s"
	return nil
}

// NormUnits spells runoff units one way: "m3", "m3/s", or as given (lower
// case, no spaces) when not understood.
func NormUnits(u string) string {
	s := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(u), " ", ""))
	switch s {
	case "m3", "m^3", "m**3":
		return "m3"
	case "m3/s", "m3s-1", "m3.s-1", "m^3/s", "m**3/s", "m3s^-1":
		return "m3/s"
	}
	return s
}

// checkFinite refuses runoff with missing or infinite values, naming the file.
func checkFinite(x *diffroute.DataTensor, path string) error {
	if err := x.CheckFinite(); err != nil {
		return fmt.Errorf("%s: runoff of %v", path, err)
	}
	return nil
}

// checkDischarge refuses to write discharge that is not finite: finite
// runoff routes to Inf or NaN only when it overflows float32. t0 is the
// step of q's first step in the run.
func checkDischarge(q *diffroute.DataTensor, t0 int) error {
	if err := q.CheckFinite(); err != nil {
		if e, ok := err.(*diffroute.NotFiniteError); ok && e.Time == "" {
			e.Step += t0
		}
		return fmt.Errorf("discharge of %v: the runoff is too large for float32 discharge", err)
	}
	return nil
}

func writeDischarge(path string, q *diffroute.DataTensor, so *data.SeriesOptions) error {
	if err := checkDischarge(q, 0); err != nil {
		return err
	}
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return err
	}
	if q.B > 1 { // an ensemble: Qout(member, time, rivid)
		w, err := newWriter(path, q.B, q.IDs, q.Times, q.Step, so)
		if err != nil {
			return err
		}
		if err := w.Write(q, 0); err != nil {
			w.Abort()
			return err
		}
		return w.Close()
	}
	return data.WriteSeriesWith(path, q, so)
}

// newWriter starts the discharge file of a streamed run: Qout(member, time,
// rivid) in netCDF for an ensemble, any streaming format otherwise.
func newWriter(path string, members int, ids []int64, times []string, step time.Duration, so *data.SeriesOptions) (data.SeriesWriter, error) {
	if members > 1 {
		w, err := data.NewEnsembleWriterWith(path, members, ids, times, step, so)
		if err != nil {
			return nil, &ConfigError{Msg: "route: --out " + err.Error()}
		}
		return w, nil
	}
	w, err := data.NewSeriesWriterWith(path, ids, times, step, so)
	if err != nil {
		return nil, &ConfigError{Msg: "route: --out " + err.Error()}
	}
	return w, nil
}

// seriesOptions are the output options of c, with the reach coordinates of
// the RAPID folder when it has them.
func (c *Config) seriesOptions() (*data.SeriesOptions, error) {
	coords, err := data.ReadRAPIDCoords(c.RAPID)
	if err != nil {
		return nil, err
	}
	return &data.SeriesOptions{Format: c.OutFormat, Compress: c.Compress, Layout: c.OutLayout, Coords: coords}, nil
}

func dirOf(path string) string { return filepath.Dir(path) }

// checkCoverage refuses runoff that lacks reaches of the network or lists
// a reach twice, naming the file and the first such reach.
func checkCoverage(path string, ids []int64, net *diffroute.Network) error {
	if slices.Equal(ids, net.IDs()) { // the usual layout: no map of millions of ids
		return nil
	}
	// A reach listed twice would leave which series routes it to chance
	// (a run reading only some reaches' runoff takes one of them).
	have := make(map[int64]int, len(ids))
	for c, id := range ids {
		if f, dup := have[id]; dup {
			return fmt.Errorf("%s: reach %d is in the runoff twice (reach columns %d and %d, 0-based)", path, id, f, c)
		}
		have[id] = c
	}
	missing, first := 0, int64(0)
	for _, id := range net.IDs() {
		if _, ok := have[id]; !ok {
			if missing == 0 {
				first = id
			}
			missing++
		}
	}
	if missing == 0 {
		return nil
	}
	return fmt.Errorf("%s: no runoff for %d of the network's %d reaches (first: reach %d); the runoff must hold every reach of riv_bas_id.csv: check that --runoff and --rapid describe the same basin",
		path, missing, net.Len(), first)
}

// subStepError explains a sub-step that does not divide the runoff step,
// suggesting the nearest sub-steps that do.
func subStepError(step, sub time.Duration, stepGiven bool) error {
	from := "the runoff file's time spacing"
	if stepGiven {
		from = "--step"
	}
	stepS, subS := step.Seconds(), sub.Seconds()
	msg := fmt.Sprintf("route: --substep %g does not divide the runoff step of %g s (%v, from %s) into whole sub-steps", subS, stepS, step, from)
	if sub > step {
		msg = fmt.Sprintf("route: --substep %g is longer than the runoff step of %g s (%v, from %s)", subS, stepS, step, from)
	}
	if s := suggestSubSteps(step, sub); len(s) > 0 {
		msg += "; try --substep " + orList(s)
	}
	return &ConfigError{Msg: msg}
}

// suggestSubSteps returns the whole-second divisors of step nearest to sub
// (one below, one above), as strings.
func suggestSubSteps(step, sub time.Duration) []string {
	if step%time.Second != 0 || step <= 0 {
		return nil
	}
	S := int64(step / time.Second)
	ratio := float64(step) / float64(sub)
	var out []string
	// Longer sub-steps than asked: fewer sub-steps per step.
	for f := int64(math.Min(math.Floor(ratio), float64(S))); f >= 1; f-- {
		if S%f == 0 {
			out = append(out, fmt.Sprint(S/f))
			break
		}
	}
	// Shorter sub-steps than asked: more sub-steps per step.
	for f, n := int64(math.Max(1, math.Ceil(ratio))), 0; f <= S && n < 1<<16; f, n = f+1, n+1 {
		if S%f == 0 {
			if s := fmt.Sprint(S / f); !slices.Contains(out, s) {
				out = append([]string{s}, out...)
			}
			break
		}
	}
	return out
}

// budgetError adds what to do to a planner error for a budget (given: the
// budget asked for; 0 when the run chose one from the free memory).
func budgetError(given, used int64, err error) error {
	if !strings.Contains(err.Error(), "no strategy fits") {
		return err
	}
	msg := strings.TrimPrefix(err.Error(), "diffroute: ")
	if given == 0 {
		return fmt.Errorf("route: half the available memory (%s): %s; give --mem-budget, or free memory", fmtBytes(used), msg)
	}
	return fmt.Errorf("route: --mem-budget %s: %s; raise --mem-budget", fmtBytes(given), msg)
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func andList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
