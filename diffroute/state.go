package diffroute

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// State is everything a router carries from one call to the next, so that a
// run can stop and later continue exactly where it stopped (a restart): the
// recursive method's filter states and convolution histories, the kernel
// method's runoff history, a staged run's transfer histories.
//
// Values are kept per reach and aligned by reach id, never by position: a
// state restored into a router for the same network with its reaches in
// another order is the same state. The header says what the state belongs
// to; SetState refuses a state whose method, IRF, sub-steps, conventions,
// parameters or reaches differ from the router's. Files are the business of
// package data.
type State struct {
	Method   Method
	IRF      string
	SubSteps int
	MaxDelay int
	// Conventions holds the options besides the IRF that change what a
	// routed series means (lateral rule, averaging, sampling, compat, …).
	Conventions map[string]string
	// Params is the checksum of the IRF parameters by reach id
	// (ParamsChecksum).
	Params string
	// Steps counts the runoff steps routed since the start of the run.
	Steps int64
	// Time is the label of the last runoff step routed and Step the runoff
	// step; the routers leave them empty for callers that know the time axis.
	Time string
	Step time.Duration
	// B is the number of batch (ensemble) members.
	B int
	// IDs are the reaches of the network the state covers.
	IDs  []int64
	Vars []StateVar
}

// StateVar is one array of a State: Width values per reach and batch
// member, Data[(b·len(ids) + row)·Width + k], for the reaches IDs (nil: every
// reach of the State, in the order of State.IDs).
type StateVar struct {
	Name  string
	IDs   []int64
	Width int
	Data  []float64
}

// Var returns the variable called name, or nil.
func (s *State) Var(name string) *StateVar {
	for k := range s.Vars {
		if s.Vars[k].Name == name {
			return &s.Vars[k]
		}
	}
	return nil
}

// Validate checks that every variable's data has the size its ids, width
// and the batch say.
func (s *State) Validate() error {
	if s == nil {
		return fmt.Errorf("diffroute: no state")
	}
	if s.B < 1 {
		return fmt.Errorf("diffroute: state has %d batch members", s.B)
	}
	seen := map[string]bool{}
	for _, v := range s.Vars {
		if seen[v.Name] {
			return fmt.Errorf("diffroute: state variable %s given twice", v.Name)
		}
		seen[v.Name] = true
		n := len(s.rowIDs(&v))
		if v.Width < 0 || len(v.Data) != s.B*n*v.Width {
			return fmt.Errorf("diffroute: state variable %s has %d values, want %d members × %d reaches × %d", v.Name, len(v.Data), s.B, n, v.Width)
		}
	}
	return nil
}

func (s *State) rowIDs(v *StateVar) []int64 {
	if v.IDs == nil {
		return s.IDs
	}
	return v.IDs
}

// gather returns variable name's values for the reaches want, aligned by id:
// B × len(want) × width values.
func (s *State) gather(name string, want []int64, width int) ([]float64, error) {
	v := s.Var(name)
	if v == nil {
		return nil, fmt.Errorf("diffroute: state has no %s", stateVarDesc(name))
	}
	if v.Width != width {
		return nil, fmt.Errorf("diffroute: state's %s has %d values per reach, this run needs %d", stateVarDesc(name), v.Width, width)
	}
	ids := s.rowIDs(v)
	row := make(map[int64]int, len(ids))
	for k, id := range ids {
		row[id] = k
	}
	out := make([]float64, s.B*len(want)*width)
	for j, id := range want {
		k, ok := row[id]
		if !ok {
			return nil, fmt.Errorf("diffroute: state has no %s for reach %d", stateVarDesc(name), id)
		}
		for b := 0; b < s.B; b++ {
			copy(out[(b*len(want)+j)*width:(b*len(want)+j+1)*width], v.Data[(b*len(ids)+k)*width:(b*len(ids)+k+1)*width])
		}
	}
	return out, nil
}

// stateVarDesc names a state variable for error messages.
func stateVarDesc(name string) string {
	switch name {
	case "runoff_history":
		return "runoff history (kernel method)"
	case "transfer_history":
		return "transfer history (staged kernel method: the state was written with other clusters)"
	}
	return "variable " + name
}

// ParamsChecksum is a checksum of IRF parameters by reach id: the same
// parameters give the same checksum whatever the order of the network's
// reaches.
func ParamsChecksum(net *Network, p Params) string {
	order := make([]int, net.Len())
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch ia, ib := net.ID(a), net.ID(b); {
		case ia < ib:
			return -1
		case ia > ib:
			return 1
		}
		return 0
	})
	h := sha256.New()
	var buf [8]byte
	for _, name := range slices.Sorted(maps.Keys(p)) {
		h.Write([]byte(name))
		h.Write([]byte{0})
		v := p[name]
		for _, i := range order {
			binary.LittleEndian.PutUint64(buf[:], uint64(net.ID(i)))
			h.Write(buf[:])
			x := math.NaN()
			if i < len(v) {
				x = v[i]
			}
			binary.LittleEndian.PutUint64(buf[:], math.Float64bits(x))
			h.Write(buf[:])
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil)[:12])
}

// stateConventions are the options (defaults filled in) besides the IRF,
// its parameters and the sub-steps that change a routed series.
func stateConventions(o Options) map[string]string {
	c := map[string]string{
		"lateral": string(o.Lateral), "average": string(o.Average), "sampling": string(o.Sampling),
		"compat": string(o.Compat), "exclude_self": fmt.Sprint(o.ExcludeSelf),
	}
	if o.Method == Kernel {
		c["fft_pad"] = fmt.Sprint(o.FFTPad)
		c["relu"] = fmt.Sprint(o.ReLU)
		c["normalize"] = fmt.Sprint(o.Normalize)
	}
	return c
}

// newStateHeader describes a state of a router with options o (defaults
// filled in) over net.
func newStateHeader(o Options, net *Network, b int, steps int64) *State {
	return &State{Method: o.Method, IRF: o.IRF, SubSteps: o.SubSteps, MaxDelay: o.MaxDelay,
		Conventions: stateConventions(o), Params: ParamsChecksum(net, o.Params), Steps: steps, B: b,
		IDs: slices.Clone(net.IDs())}
}

// CheckState says why s cannot continue a run with options opts (defaults
// filled in) over net, in one line, or returns nil.
func CheckState(s *State, net *Network, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	switch {
	case s.Method != o.Method:
		return fmt.Errorf("diffroute: state is of the %s method, this run uses the %s method", s.Method, o.Method)
	case s.IRF != o.IRF:
		return fmt.Errorf("diffroute: state is for IRF %s, this run uses %s", s.IRF, o.IRF)
	case s.SubSteps != o.SubSteps:
		return fmt.Errorf("diffroute: state is for %d sub-steps per runoff step, this run uses %d", s.SubSteps, o.SubSteps)
	case s.MaxDelay != o.MaxDelay && (o.Method == Kernel || s.Var("inflow_history") != nil):
		return fmt.Errorf("diffroute: state is for a max delay of %d steps, this run uses %d", s.MaxDelay, o.MaxDelay)
	}
	want := stateConventions(o)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got := s.Conventions[k]; got != want[k] {
			return fmt.Errorf("diffroute: state has %s=%s, this run %s=%s", k, got, k, want[k])
		}
	}
	have := make(map[int64]bool, len(s.IDs))
	for _, id := range s.IDs {
		have[id] = true
	}
	for _, id := range net.IDs() {
		if !have[id] {
			return fmt.Errorf("diffroute: state covers %d reaches, the network %d, and reach %d is not in the state: another network", len(s.IDs), net.Len(), id)
		}
	}
	if len(s.IDs) != net.Len() {
		return fmt.Errorf("diffroute: state covers %d reaches, the network %d: another network", len(s.IDs), net.Len())
	}
	if sum := ParamsChecksum(net, o.Params); s.Params != sum {
		return fmt.Errorf("diffroute: state was routed with other IRF parameters (checksum %s, this run %s)", s.Params, sum)
	}
	return nil
}

// ---- Recursive router ----------------------------------------------------

// State returns a copy of the routing state left by the last call of Route:
// per reach and batch member the last output of each recursive section, the
// upstream and lateral inflow of the last sub-step, the last outflow, and
// for convolution reaches the last W−1 fine inflows, of which only those the
// reach's taps reach are kept: older ones (beyond the last non-negligible
// tap, never read) are 0.
func (r *RecursiveRouter) State() (*State, error) {
	if r.stopped != nil {
		return nil, fmt.Errorf("diffroute: an earlier call stopped part-way (%w): no consistent state", r.stopped)
	}
	if r.st == nil {
		return nil, fmt.Errorf("diffroute: no routing state yet: route some steps first")
	}
	st := r.st
	n := r.net.Len()
	s := newStateHeader(r.opts, r.net, st.b, st.steps)
	s.Vars = append(s.Vars,
		StateVar{Name: "upstream_inflow", Width: 1, Data: slices.Clone(st.uPrev)},
		StateVar{Name: "lateral_inflow", Width: 1, Data: widen(st.lPrev)},
		StateVar{Name: "outflow", Width: 1, Data: r.outflows()})
	secIDs, secRows, width := r.sectionReaches()
	if len(secIDs) > 0 {
		v := StateVar{Name: "section_output", IDs: secIDs, Width: width, Data: make([]float64, st.b*len(secIDs)*width)}
		if len(secIDs) == n {
			v.IDs = nil
		}
		for b := 0; b < st.b; b++ {
			for j, i := range secRows {
				lo, hi := int(r.secStart[i]), int(r.secStart[i+1])
				copy(v.Data[(b*len(secIDs)+j)*width:], st.ys[b*len(r.secs)+lo:b*len(r.secs)+hi])
			}
		}
		s.Vars = append(s.Vars, v)
	}
	if convIDs, convRows, w := r.convReaches(); len(convIDs) > 0 {
		v := StateVar{Name: "inflow_history", IDs: convIDs, Width: w, Data: make([]float64, st.b*len(convIDs)*w)}
		if len(convIDs) == n {
			v.IDs = nil
		}
		for b := 0; b < st.b; b++ {
			for j, i := range convRows {
				h := st.hist[b*n+i]
				copy(v.Data[(b*len(convIDs)+j+1)*w-len(h):], h)
			}
		}
		s.Vars = append(s.Vars, v)
	}
	return s, nil
}

// widen returns v in float64.
func widen(v []float32) []float64 {
	w := make([]float64, len(v))
	for k, x := range v {
		w[k] = float64(x)
	}
	return w
}

// outflows returns the last outflow of every reach and batch member: kept
// apart for convolution reaches, a section reach's last section output
// otherwise.
func (r *RecursiveRouter) outflows() []float64 {
	st := r.st
	if st.yLast != nil {
		return slices.Clone(st.yLast)
	}
	n := r.net.Len()
	y := make([]float64, st.b*n)
	for b := 0; b < st.b; b++ {
		for i := 0; i < n; i++ {
			if end := int(r.secStart[i+1]); end > int(r.secStart[i]) {
				y[b*n+i] = st.ys[b*len(r.secs)+end-1]
			}
		}
	}
	return y
}

// sectionReaches lists the reaches with recursive sections and the most
// sections any of them has.
func (r *RecursiveRouter) sectionReaches() (ids []int64, rows []int, width int) {
	for i := 0; i < r.net.Len(); i++ {
		if k := int(r.secStart[i+1] - r.secStart[i]); k > 0 {
			ids = append(ids, r.net.ID(i))
			rows = append(rows, i)
			width = max(width, k)
		}
	}
	return ids, rows, width
}

// convReaches lists the convolution reaches and their history length.
func (r *RecursiveRouter) convReaches() (ids []int64, rows []int, width int) {
	for i := 0; i < r.net.Len(); i++ {
		if r.hasFIR && r.conv[i].taps != nil {
			ids = append(ids, r.net.ID(i))
			rows = append(rows, i)
		}
	}
	return ids, rows, r.opts.MaxDelay*r.f - 1
}

// SetState makes the next Route continue from s (see State), which must
// have been written by a recursive router with the same IRF, parameters,
// sub-steps and conventions over a network with the same reach ids (in any
// order). It replaces the initial discharge of the options.
func (r *RecursiveRouter) SetState(s *State) error {
	if err := CheckState(s, r.net, r.opts); err != nil {
		return err
	}
	return r.loadState(s, "")
}

// loadState installs s's values for the router's reaches (by id) from the
// variables called prefix+name, without checking the header: a staged
// router's clusters each take their part of the whole network's state.
func (r *RecursiveRouter) loadState(s *State, prefix string) error {
	if err := s.Validate(); err != nil {
		return err
	}
	n := r.net.Len()
	ids := r.net.IDs()
	st := &recState{b: s.B, ys: make([]float64, s.B*len(r.secs)), steps: s.Steps}
	var err error
	if st.uPrev, err = s.gather(prefix+"upstream_inflow", ids, 1); err != nil {
		return err
	}
	lPrev, err := s.gather(prefix+"lateral_inflow", ids, 1)
	if err != nil {
		return err
	}
	// The lateral inflow of the last sub-step is a runoff value: float32.
	st.lPrev = make([]float32, len(lPrev))
	for k, v := range lPrev {
		st.lPrev[k] = float32(v)
	}
	if st.yLast, err = s.gather(prefix+"outflow", ids, 1); err != nil {
		return err
	}
	if !r.hasFIR {
		st.yLast = nil // each reach's outflow is its last section's output
	}
	if secIDs, secRows, width := r.sectionReaches(); len(secIDs) > 0 {
		ys, err := s.gather(prefix+"section_output", secIDs, width)
		if err != nil {
			return err
		}
		for b := 0; b < s.B; b++ {
			for j, i := range secRows {
				lo, hi := int(r.secStart[i]), int(r.secStart[i+1])
				copy(st.ys[b*len(r.secs)+lo:b*len(r.secs)+hi], ys[(b*len(secIDs)+j)*width:])
			}
		}
	}
	if convIDs, convRows, w := r.convReaches(); len(convIDs) > 0 {
		h, err := s.gather(prefix+"inflow_history", convIDs, w)
		if err != nil {
			return err
		}
		st.hist = r.historySlices(s.B)
		for b := 0; b < s.B; b++ {
			for j, i := range convRows {
				dst := st.hist[b*n+i]
				copy(dst, h[(b*len(convIDs)+j+1)*w-len(dst):(b*len(convIDs)+j+1)*w])
			}
		}
	}
	r.st, r.stopped = st, nil
	return nil
}

// ---- Kernel method -------------------------------------------------------

// WarmRouter routes runoff whose first warmup steps are history only
// (*KernelRouter, or a device router that does the same).
type WarmRouter interface {
	Network() *Network
	RouteWarm(ctx context.Context, runoff *DataTensor, warmup int) (*DataTensor, error)
}

// KernelStream routes a series in consecutive calls with the kernel method:
// it keeps the last MaxDelay−1 steps of runoff (the kernel's memory) and
// routes each call with them as warm-up, so that the calls together equal
// one run over the whole series. Its State is that runoff history.
// A KernelRouter itself keeps no state (it is safe for concurrent use); a
// KernelStream is not.
type KernelStream struct {
	r     WarmRouter
	opts  Options
	hist  *DataTensor // last MaxDelay−1 steps of runoff, network order; nil at the start
	steps int64
}

// NewKernelStream wraps a kernel router built with opts (as
// KernelRouter.Options returns them).
func NewKernelStream(r WarmRouter, opts Options) (*KernelStream, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	o.Method = Kernel
	return &KernelStream{r: r, opts: o}, nil
}

// Network returns the router's network.
func (ks *KernelStream) Network() *Network { return ks.r.Network() }

// Reset forgets the history: the next Route starts from rest.
func (ks *KernelStream) Reset() { ks.hist, ks.steps = nil, 0 }

// Route routes the next steps of the series.
func (ks *KernelStream) Route(ctx context.Context, runoff *DataTensor) (*DataTensor, error) {
	net := ks.r.Network()
	if _, err := alignRunoff(runoff, net); err != nil {
		return nil, err
	}
	x, err := runoff.SelectIDs(net.IDs())
	if err != nil {
		return nil, err
	}
	ext, warm := x, 0
	if ks.hist != nil {
		if ks.hist.B != x.B {
			return nil, fmt.Errorf("diffroute: runoff has %d batch members but the router's state has %d (Reset first)", x.B, ks.hist.B)
		}
		h := ks.hist
		h.Step, h.Units = x.Step, x.Units
		h.Times = nil
		if ext, err = ConcatTime(h, x); err != nil {
			return nil, err
		}
		warm = h.T
	}
	y, err := ks.r.RouteWarm(ctx, ext, warm)
	if err != nil {
		return nil, err
	}
	if len(runoff.Times) == runoff.T {
		y.Times = slices.Clone(runoff.Times)
	}
	ks.hist = lastSteps(ext, KernelWarmup(ks.opts))
	ks.steps += int64(runoff.T)
	return y, nil
}

// lastSteps returns the last h steps of x, preceded by zeros (runoff before
// the run's start) where x is shorter.
func lastSteps(x *DataTensor, h int) *DataTensor {
	y := &DataTensor{B: x.B, N: x.N, T: h, IDs: slices.Clone(x.IDs), Step: x.Step, Units: x.Units, Data: make([]float32, x.B*x.N*h)}
	k := min(h, x.T)
	for b := 0; b < x.B; b++ {
		for i := 0; i < x.N; i++ {
			copy(y.Series(b, i)[h-k:], x.Series(b, i)[x.T-k:])
		}
	}
	return y
}

// State returns the runoff history (the last MaxDelay−1 steps, zeros before
// the start of the run).
func (ks *KernelStream) State() (*State, error) {
	if ks.hist == nil {
		return nil, fmt.Errorf("diffroute: no routing state yet: route some steps first")
	}
	net := ks.r.Network()
	s := newStateHeader(ks.opts, net, ks.hist.B, ks.steps)
	if h := ks.hist.T; h > 0 {
		s.Vars = append(s.Vars, StateVar{Name: "runoff_history", Width: h, Data: float64s(ks.hist.Data)})
	}
	return s, nil
}

// SetState makes the next Route continue from s (see State).
func (ks *KernelStream) SetState(s *State) error {
	net := ks.r.Network()
	if err := CheckState(s, net, ks.opts); err != nil {
		return err
	}
	h, err := historyTensor(s, net.IDs(), KernelWarmup(ks.opts))
	if err != nil {
		return err
	}
	ks.hist, ks.steps = h, s.Steps
	return nil
}

// historyTensor gathers the runoff history of the reaches ids from s.
func historyTensor(s *State, ids []int64, h int) (*DataTensor, error) {
	x := &DataTensor{B: s.B, N: len(ids), T: h, IDs: slices.Clone(ids), Units: "m3/s"}
	if h == 0 {
		return x, nil
	}
	v, err := s.gather("runoff_history", ids, h)
	if err != nil {
		return nil, err
	}
	x.Data = float32s(v)
	return x, nil
}

func float64s(x []float32) []float64 {
	y := make([]float64, len(x))
	for k, v := range x {
		y[k] = float64(v)
	}
	return y
}

func float32s(x []float64) []float32 {
	y := make([]float32, len(x))
	for k, v := range x {
		y[k] = float32(v)
	}
	return y
}
