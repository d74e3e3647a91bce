package diffroute

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Section is a first-order recursive filter
//
//	y[n] = B0·x[n] + B1·x[n−1] + A1·y[n−1].
//
// A cascade of sections is an exact recursive form of an IRF: Muskingum is one
// section, linear storage one with B1 = 0, a Nash cascade of n reservoirs n
// identical ones.
type Section struct{ B0, B1, A1 float64 }

// IRF describes a family of impulse response functions on the fine grid of
// sub-steps dt = Δ/f. Parameters are in units of the runoff step Δ unless the
// IRF says otherwise; r = 1/f is the sub-step in those units.
type IRF struct {
	Name   string
	Params []string // parameter names, in the order Impulse and Sections receive them
	// Defaults gives values for parameters that a Params table may omit.
	Defaults map[string]float64
	// Impulse fills h[k], k = 0..len(h)−1, with the IRF for parameters p, or
	// returns an error naming the bad parameter.
	Impulse func(h, p []float64, r float64) error
	// Sections, when set, returns the IRF as an exact cascade of recursive
	// sections appended to dst, or nil (and no error) when these parameters
	// have no recursive form. Routers then run it in O(1) work per sub-step
	// instead of a causal convolution.
	Sections func(dst []Section, p []float64, r float64) ([]Section, error)

	// GradParams names the parameters with a gradient (a subset of Params);
	// asking a gradient of an IRF with none is an error.
	GradParams []string
	// SectionsGrad writes, for the recursive form, ∂(B0, B1, A1)/∂p of each
	// section for each parameter: dst[j][s] is section s's derivative with
	// respect to Params[j] (dst has len(Params) rows of len(sections)).
	SectionsGrad func(dst [][]Section, p []float64, r float64) error
	// ImpulseGrad fills dh[j][k] = ∂h[k]/∂p_j for the convolution form
	// (dh has len(Params) rows of len(h)).
	ImpulseGrad func(dh [][]float64, p []float64, r float64) error
	// NoGrad says, for parameters without a gradient, why (and what to use
	// instead); GradParam returns it as the error.
	NoGrad map[string]string

	// impulseVJP, for built-in IRFs, sets out[j] = Σ_k g[k]·∂h[k]/∂p_j
	// given the taps h that Impulse made for p: what the recursive adjoint
	// needs of ImpulseGrad, without evaluating the IRF again.
	impulseVJP func(out, g, h, p []float64, r float64)
}

// GradParam returns nil if the IRF has a gradient with respect to the
// parameter name, else a one-line error saying why not.
func (irf IRF) GradParam(name string) error {
	switch {
	case slices.Contains(irf.GradParams, name):
		return nil
	case !slices.Contains(irf.Params, name):
		return fmt.Errorf("diffroute: IRF %s has no parameter %q (it takes %s)", irf.Name, name, strings.Join(irf.Params, ", "))
	case irf.NoGrad[name] != "":
		return fmt.Errorf("diffroute: IRF %s has no gradient with respect to %s: %s", irf.Name, name, irf.NoGrad[name])
	case len(irf.GradParams) == 0:
		return errNoParamGrad(irf)
	}
	return fmt.Errorf("diffroute: IRF %s has no gradient with respect to %s (it has one for %s)", irf.Name, name, strings.Join(irf.GradParams, ", "))
}

var (
	registryMu sync.RWMutex
	registry   = map[string]IRF{}
)

// Register adds an IRF to the registry so routers can use it by name. It
// returns an error if the name is taken or the description is incomplete.
func Register(irf IRF) error {
	if irf.Name == "" || irf.Impulse == nil {
		return fmt.Errorf("diffroute: IRF needs a name and an Impulse function")
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[irf.Name]; dup {
		return fmt.Errorf("diffroute: IRF %q is already registered", irf.Name)
	}
	registry[irf.Name] = irf
	return nil
}

// LookupIRF returns the registered IRF with the given name.
func LookupIRF(name string) (IRF, error) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	irf, ok := registry[name]
	if !ok {
		return IRF{}, fmt.Errorf("diffroute: unknown IRF %q (registered: %s)", name, strings.Join(irfNamesLocked(), ", "))
	}
	return irf, nil
}

// IRFNames lists the registered IRFs, sorted.
func IRFNames() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return irfNamesLocked()
}

func irfNamesLocked() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func mustRegister(irf IRF) {
	if err := Register(irf); err != nil {
		panic(err)
	}
}

func init() {
	mustRegister(IRF{Name: "muskingum", Params: []string{"k", "x"}, Impulse: muskingumImpulse, Sections: muskingumSections,
		GradParams: []string{"k", "x"}, SectionsGrad: muskingumSectionsGrad})
	mustRegister(IRF{Name: "linear_storage", Params: []string{"tau"}, Impulse: linearStorageImpulse, Sections: linearStorageSections,
		GradParams: []string{"tau"}, SectionsGrad: storageSectionsGrad})
	// n, the number of reservoirs, is a structural choice: only tau has a
	// gradient (integer n routes recursively, fractional n by convolution).
	mustRegister(IRF{Name: "nash_cascade", Params: []string{"tau", "n"}, Defaults: map[string]float64{"n": 3}, Impulse: nashImpulse, Sections: nashSections,
		GradParams: []string{"tau"}, SectionsGrad: storageSectionsGrad, ImpulseGrad: nashImpulseGrad,
		NoGrad: map[string]string{"n": "n counts whole reservoirs (recursive sections); use IRF nash_gamma, the cascade with a continuous n, for a gradient with respect to n"}})
	// The continuous cascade: the gamma unit hydrograph, n any positive real.
	mustRegister(IRF{Name: "nash_gamma", Params: []string{"tau", "n"}, Defaults: map[string]float64{"n": 3}, Impulse: nashGammaImpulse,
		GradParams: []string{"tau", "n"}, ImpulseGrad: nashGammaImpulseGrad})
	// A pure lag moves the pulse between whole sub-steps: no gradient.
	mustRegister(IRF{Name: "pure_lag", Params: []string{"delay"}, Impulse: pureLagImpulse,
		NoGrad: map[string]string{"delay": "the lag moves its pulse between whole sub-steps; gradients with respect to runoff and the initial discharge are available"}})
	mustRegister(IRF{Name: "hayami", Params: []string{"L", "D", "c"}, Impulse: hayamiImpulse(true),
		GradParams: []string{"L", "D", "c"}, ImpulseGrad: hayamiImpulseGrad(true), impulseVJP: hayamiImpulseVJP(true)})
	mustRegister(IRF{Name: "hayami_unshifted", Params: []string{"L", "D", "c"}, Impulse: hayamiImpulse(false),
		GradParams: []string{"L", "D", "c"}, ImpulseGrad: hayamiImpulseGrad(false), impulseVJP: hayamiImpulseVJP(false)})
}

// MuskingumCoefficients returns RAPID's C0, C1, C2 for storage constant k and
// weight x (k in units of Δ) on a sub-step r.
func MuskingumCoefficients(k, x, r float64) (c0, c1, c2 float64, err error) {
	if !(k >= 0) {
		return 0, 0, 0, fmt.Errorf("muskingum k = %v must be ≥ 0", k)
	}
	if !(x >= 0 && x <= 0.5) {
		return 0, 0, 0, fmt.Errorf("muskingum x = %v must be in [0, 0.5]", x)
	}
	den := k*(1-x) + r/2
	c0 = (r/2 - k*x) / den
	c1 = (r/2 + k*x) / den
	c2 = (k*(1-x) - r/2) / den
	return c0, c1, c2, nil
}

func muskingumSections(dst []Section, p []float64, r float64) ([]Section, error) {
	c0, c1, c2, err := MuskingumCoefficients(p[0], p[1], r)
	if err != nil {
		return nil, err
	}
	return append(dst, Section{c0, c1, c2}), nil
}

func muskingumImpulse(h, p []float64, r float64) error {
	c0, c1, c2, err := MuskingumCoefficients(p[0], p[1], r)
	if err != nil {
		return err
	}
	if len(h) == 0 {
		return nil
	}
	h[0] = c0
	v := c1 + c2*c0
	for k := 1; k < len(h); k++ {
		h[k] = v
		v *= c2
	}
	return nil
}

func storageCoefficient(tau, r float64) (float64, error) {
	if !(tau >= 0) || math.IsInf(tau, 0) {
		return 0, fmt.Errorf("tau = %v must be finite and ≥ 0", tau)
	}
	return 1 / (1 + tau/r), nil
}

func linearStorageSections(dst []Section, p []float64, r float64) ([]Section, error) {
	a, err := storageCoefficient(p[0], r)
	if err != nil {
		return nil, err
	}
	return append(dst, Section{B0: a, A1: 1 - a}), nil
}

func linearStorageImpulse(h, p []float64, r float64) error {
	a, err := storageCoefficient(p[0], r)
	if err != nil {
		return err
	}
	v := a
	for k := range h {
		h[k] = v
		v *= 1 - a
	}
	return nil
}

func nashCheck(p []float64, r float64) (a, n float64, err error) {
	a, err = storageCoefficient(p[0], r)
	if err != nil {
		return 0, 0, err
	}
	n = p[1]
	if !(n > 0) || n > 1e4 {
		return 0, 0, fmt.Errorf("nash cascade n = %v must be in (0, 1e4]", n)
	}
	return a, n, nil
}

func nashSections(dst []Section, p []float64, r float64) ([]Section, error) {
	a, n, err := nashCheck(p, r)
	if err != nil {
		return nil, err
	}
	if n != math.Trunc(n) {
		return nil, nil // fractional cascades only have the gamma form
	}
	for range int(n) {
		dst = append(dst, Section{B0: a, A1: 1 - a})
	}
	return dst, nil
}

// nashImpulse: h[k] = C(k+n−1, k)·aⁿ·(1−a)^k, evaluated with lgamma so that
// fractional n works too.
func nashImpulse(h, p []float64, r float64) error {
	a, n, err := nashCheck(p, r)
	if err != nil {
		return err
	}
	if a == 1 { // tau = 0: the identity
		clear(h)
		if len(h) > 0 {
			h[0] = 1
		}
		return nil
	}
	ln1a := math.Log1p(-a)
	lgn, _ := math.Lgamma(n)
	base := n * math.Log(a)
	for k := range h {
		lk, _ := math.Lgamma(float64(k) + n)
		lf, _ := math.Lgamma(float64(k) + 1)
		h[k] = math.Exp(lk - lf - lgn + base + float64(k)*ln1a)
	}
	return nil
}

func pureLagImpulse(h, p []float64, r float64) error {
	d := p[0]
	if !(d >= 0) || math.IsInf(d, 0) {
		return fmt.Errorf("pure_lag delay = %v must be finite and ≥ 0", d)
	}
	pos := d / r
	if pos > float64(len(h)-1)*(1+1e-12) {
		// The lagged pulse would fall (partly) outside the window: the
		// reach would silently lose that runoff.
		return fmt.Errorf("pure_lag delay = %v steps does not fit the IRF window of %v steps: raise the max delay (Options.MaxDelay; --max-delay in the CLI)", d, float64(len(h))*r)
	}
	for k := range h {
		h[k] = max(0, 1-math.Abs(float64(k)-pos))
	}
	return nil
}

// hayamiImpulse evaluates the Hayami diffusive-wave kernel in log space and
// normalises it with log-sum-exp so that Σh = 1 over the window. shifted
// reproduces DiffRoute, which delays only the advective term by one sub-step.
func hayamiImpulse(shifted bool) func(h, p []float64, r float64) error {
	return func(h, p []float64, r float64) error {
		L, D, c := p[0], p[1], p[2]
		if !(L > 0) || !(D > 0) || !(c >= 0) || math.IsInf(L+D+c, 0) {
			return fmt.Errorf("hayami needs L > 0, D > 0, c ≥ 0 (got L = %v, D = %v, c = %v)", L, D, c)
		}
		if len(h) == 0 {
			return nil
		}
		shift := 0.0
		if shifted {
			shift = r
		}
		top := math.Inf(-1)
		base := math.Log(L) - math.Ln2 - 0.5*(math.Log(math.Pi)+math.Log(D)) - 1.5*math.Log(r) // per reach
		logk := intLogTable(len(h))                                                            // log t = log(k+1) + log r
		for k := range h {
			t := float64(k+1) * r
			adv := L - c*(t-shift)
			v := base - 1.5*logk[k] - adv*adv/(4*D*t)
			h[k] = v
			top = max(top, v)
		}
		// Normalised with log-sum-exp: h = exp(v − top) / Σ exp(v − top).
		sum := 0.0
		for k, v := range h {
			e := math.Exp(v - top)
			h[k] = e
			sum += e
		}
		inv := 1 / sum
		for k := range h {
			h[k] *= inv
		}
		return nil
	}
}

// reachIRF is one reach's response in the form routers use.
type reachIRF struct {
	sections []Section // exact recursive form, when the IRF has one
	taps     []float64 // fine-grid impulse response of length W otherwise
}

// irfTable evaluates an IRF for every reach of a network.
type irfTable struct {
	irf    IRF
	names  []string
	params [][]float64 // per reach, in irf.Params order
	r      float64
	w      int // fine window length for convolution IRFs (MaxDelay·f)
}

// fullParams returns p with the IRF's defaults for the parameters it
// omits, checked: every parameter present with a finite value per reach.
func fullParams(irf IRF, p Params, net *Network) (Params, error) {
	n := net.Len()
	full := Params{}
	for k, v := range p {
		full[k] = v
	}
	for name, def := range irf.Defaults {
		if _, ok := full[name]; !ok {
			full[name] = Constant(n, map[string]float64{name: def})[name]
		}
	}
	if err := full.check(irf.Params, n, net); err != nil {
		return nil, err
	}
	return full, nil
}

func newIRFTable(irf IRF, p Params, net *Network, f, w int) (*irfTable, error) {
	n := net.Len()
	full, err := fullParams(irf, p, net)
	if err != nil {
		return nil, err
	}
	t := &irfTable{irf: irf, names: slices.Clone(irf.Params), params: make([][]float64, n), r: 1 / float64(f), w: w}
	// One backing array: millions of reaches make millions of small
	// allocations otherwise.
	m := len(irf.Params)
	flat := make([]float64, n*m)
	for i := 0; i < n; i++ {
		t.params[i] = full.row(flat[i*m:i*m:(i+1)*m], irf.Params, i)
	}
	return t, nil
}

// reach evaluates reach i's IRF, preferring the recursive form.
func (t *irfTable) reach(i int, net *Network, recursive bool) (reachIRF, error) {
	p := t.params[i]
	if recursive && t.irf.Sections != nil {
		s, err := t.irf.Sections(nil, p, t.r)
		if err != nil {
			return reachIRF{}, reachIRFError(net.ID(i), t.irf.Name, err)
		}
		if s != nil {
			return reachIRF{sections: s}, nil
		}
	}
	h := make([]float64, t.w)
	if err := t.impulse(h, i, net); err != nil {
		return reachIRF{}, err
	}
	return reachIRF{taps: h}, nil
}

// impulse fills h with reach i's fine-grid IRF.
func (t *irfTable) impulse(h []float64, i int, net *Network) error {
	if err := t.irf.Impulse(h, t.params[i], t.r); err != nil {
		return reachIRFError(net.ID(i), t.irf.Name, err)
	}
	return nil
}

// reachIRFError places an IRF's parameter error at its reach, naming the
// IRF unless the message already starts with its name.
func reachIRFError(id int64, irf string, err error) error {
	if strings.HasPrefix(err.Error(), irf) {
		return fmt.Errorf("diffroute: reach %d: %w", id, err)
	}
	return fmt.Errorf("diffroute: reach %d: %s: %w", id, irf, err)
}

// intLogs caches log 1, log 2, …: the Hayami kernel needs log t at every
// fine step t = (k+1)·r, that is log(k+1) + log r, for every reach.
var intLogs atomic.Pointer[[]float64]

// intLogTable returns log(k+1) for k < n.
func intLogTable(n int) []float64 {
	if p := intLogs.Load(); p != nil && len(*p) >= n {
		return (*p)[:n]
	}
	t := make([]float64, max(n, 1024))
	for i := range t {
		t[i] = math.Log(float64(i + 1))
	}
	intLogs.Store(&t) // a concurrent caller may store its own, equal table
	return t[:n]
}
