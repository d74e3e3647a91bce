package diffroute

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// kRefOpts are the conventions the sequential reference understands.
type kRefOpts struct {
	irf         string
	params      Params
	f, window   int // sub-steps; fine window of convolution IRFs (MaxDelay·f)
	lateral     LateralRule
	sampling    Sampling
	average     Average
	excludeSelf bool
}

// kRefRoute is the obviously-correct reference: a time-major loop over fine
// sub-steps; at each sub-step the reaches in topological order (upstream
// first) take as inflow the current outflow of their upstream reaches plus
// their lateral runoff, and run their section recursion (with the rapid or lti
// lateral rule on the first section) or a direct causal convolution. The fine
// outflow at the end (or start) of each sub-step is then averaged (or sampled)
// per runoff step (kRefRoute). x[i][t] is indexed by network position; so is
// the result, the fine outflow at the end of each sub-step. inflow[v] adds a
// fine upstream inflow series into reach v.
func kRefRouteFine(t *testing.T, net *Network, o kRefOpts, x [][]float64, inflow map[int][]float64) [][]float64 {
	t.Helper()
	irf, err := LookupIRF(o.irf)
	if err != nil {
		t.Fatal(err)
	}
	n := net.Len()
	T := len(x[0])
	nf := T * o.f
	r := 1 / float64(o.f)
	type reachState struct {
		secs   []Section
		h      []float64
		px, py []float64 // per section: previous input and output
		plat   float64   // previous sub-step's lateral
		pup    float64   // previous sub-step's upstream inflow
		in     []float64 // full inflow history (convolution IRFs)
	}
	st := make([]reachState, n)
	for i := 0; i < n; i++ {
		p := make([]float64, len(irf.Params))
		for j, name := range irf.Params {
			if v, ok := o.params[name]; ok {
				p[j] = v[i]
			} else {
				p[j] = irf.Defaults[name]
			}
		}
		var secs []Section
		if irf.Sections != nil {
			if secs, err = irf.Sections(nil, p, r); err != nil {
				t.Fatal(err)
			}
		}
		if secs != nil {
			st[i].secs = secs
			st[i].px = make([]float64, len(secs))
			st[i].py = make([]float64, len(secs))
		} else {
			st[i].h = make([]float64, o.window)
			if err := irf.Impulse(st[i].h, p, r); err != nil {
				t.Fatal(err)
			}
			st[i].in = make([]float64, nf)
		}
	}
	// Topological order, upstream first: repeatedly take reaches whose
	// upstream reaches are all done (Kahn), independent of Network's orders.
	topo := make([]int, 0, n)
	pending := make([]int, n)
	for i := 0; i < n; i++ {
		pending[i] = len(net.Upstream(i))
		if pending[i] == 0 {
			topo = append(topo, i)
		}
	}
	for k := 0; k < len(topo); k++ {
		if d := net.Down(topo[k]); d >= 0 {
			pending[d]--
			if pending[d] == 0 {
				topo = append(topo, d)
			}
		}
	}
	if len(topo) != n {
		t.Fatal("reference: network not a forest")
	}
	y := make([][]float64, n) // fine outflow at the end of each sub-step
	for i := range y {
		y[i] = make([]float64, nf)
	}
	for m := 0; m < nf; m++ {
		for _, i := range topo {
			up := 0.0
			for _, u := range net.Upstream(i) {
				up += y[u][m]
			}
			if z, ok := inflow[i]; ok {
				up += z[m]
			}
			lat := x[i][m/o.f]
			s := &st[i]
			routedLat := lat
			if o.excludeSelf {
				routedLat = 0
			}
			var out float64
			if s.secs != nil {
				// First section: y = B0·I(n) + B1·I(n−1) + A1·y(n−1) where the lateral
				// part of I(n−1) is the current step's under the rapid rule.
				prevLat := s.plat
				if o.lateral == LateralRAPID {
					prevLat = routedLat
				}
				in := up + routedLat
				sec := s.secs[0]
				v := sec.B0*in + sec.B1*(s.pup+prevLat) + sec.A1*s.py[0]
				s.py[0] = v
				s.pup, s.plat = up, routedLat
				for j := 1; j < len(s.secs); j++ {
					sec := s.secs[j]
					w := sec.B0*v + sec.B1*s.px[j] + sec.A1*s.py[j]
					s.px[j], s.py[j] = v, w
					v = w
				}
				out = v
			} else {
				s.in[m] = up + routedLat
				for k := 0; k < len(s.h) && k <= m; k++ {
					out += s.h[k] * s.in[m-k]
				}
			}
			if o.excludeSelf {
				out += lat
			}
			y[i][m] = out
		}
	}
	return y
}

// kRefRoute is kRefRouteFine followed by averaging (or sampling) per runoff
// step.
func kRefRoute(t *testing.T, net *Network, o kRefOpts, x [][]float64, inflow map[int][]float64) [][]float64 {
	t.Helper()
	y := kRefRouteFine(t, net, o, x, inflow)
	T := len(x[0])
	res := make([][]float64, net.Len())
	for i := range res {
		res[i] = make([]float64, T)
		fine := func(m int) float64 { // the fine value representing sub-step m
			if o.average == AverageStart {
				m--
			}
			if m < 0 {
				return 0
			}
			return y[i][m]
		}
		for q := 0; q < T; q++ {
			if o.sampling == SampleLast {
				res[i][q] = fine(q*o.f + o.f - 1)
				continue
			}
			s := 0.0
			for j := 0; j < o.f; j++ {
				s += fine(q*o.f + j)
			}
			res[i][q] = s / float64(o.f)
		}
	}
	return res
}

// kRandomNetwork builds a forest of n reaches with several outlets, random
// ids and positions not in topological order. Depth grows with n (about half
// the reaches continue the previous one's path).
func kRandomNetwork(t testing.TB, rng *rand.Rand, n, outlets int) *Network {
	t.Helper()
	down := make([]int, n) // in generation order: down[i] < i or -1
	for i := range down {
		switch {
		case i < outlets:
			down[i] = -1
		case rng.IntN(2) == 0:
			down[i] = i - 1 - rng.IntN(min(i, 3))
		default:
			down[i] = rng.IntN(i)
		}
	}
	perm := rng.Perm(n) // generation index → position
	ids := make([]int64, n)
	pos := make([]int, n)
	used := map[int64]bool{}
	for g := 0; g < n; g++ {
		id := int64(1 + rng.IntN(1_000_000_000))
		for used[id] {
			id = int64(1 + rng.IntN(1_000_000_000))
		}
		used[id] = true
		ids[perm[g]] = id
	}
	for g := 0; g < n; g++ {
		if down[g] < 0 {
			pos[perm[g]] = -1
		} else {
			pos[perm[g]] = perm[down[g]]
		}
	}
	net, err := NewNetworkIndex(ids, pos)
	if err != nil {
		t.Fatal(err)
	}
	return net
}

// kRandomParams draws per-reach parameters for an IRF, in Δ units.
func kRandomParams(rng *rand.Rand, irf string, n int) Params {
	u := func(lo, hi float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = lo + (hi-lo)*rng.Float64()
		}
		return v
	}
	switch irf {
	case "muskingum":
		return Params{"k": u(0.05, 0.6), "x": u(0, 0.45)}
	case "linear_storage":
		return Params{"tau": u(0.05, 0.5)}
	case "nash_cascade":
		return Params{"tau": u(0.03, 0.2)} // n = 3 by default
	case "nash_fractional":
		return Params{"tau": u(0.03, 0.2), "n": u(1.5, 3.5)}
	case "nash_gamma":
		return Params{"tau": u(0.03, 0.2), "n": u(0.7, 3.5)}
	case "pure_lag":
		return Params{"delay": u(0, 1.5)}
	case "hayami", "hayami_unshifted":
		return Params{"L": u(0.5, 1.5), "D": u(0.05, 0.3), "c": u(1, 3)}
	}
	panic(irf)
}

func kRandomRunoff(rng *rand.Rand, net *Network, batch, T int) *DataTensor {
	// Rows in an order of their own (reversed ids) to exercise alignment by id.
	ids := slices.Clone(net.IDs())
	slices.Reverse(ids)
	x := NewDataTensor(batch, ids, T)
	for i := range x.Data {
		v := rng.Float64()
		if rng.IntN(10) == 0 {
			v *= 20
		}
		x.Data[i] = float32(v)
	}
	return x
}

// kSeriesOf returns x's rows for batch member b in network order, as float64.
func kSeriesOf(x *DataTensor, net *Network, b int) [][]float64 {
	row := map[int64]int{}
	for j, id := range x.IDs {
		row[id] = j
	}
	out := make([][]float64, net.Len())
	for i, id := range net.IDs() {
		s := x.Series(b, row[id])
		out[i] = make([]float64, len(s))
		for t, v := range s {
			out[i][t] = float64(v)
		}
	}
	return out
}

// kCompareRef returns the median NSE over reaches and the max relative error
// (max over reaches of max_t |y − ref| / max_t |ref|).
func kCompareRef(net *Network, y *DataTensor, b int, ref [][]float64) (medNSE, maxRel float64) {
	var nses []float64
	for i := range ref {
		if !slices.Equal(y.IDs, net.IDs()) {
			panic("output not in network order")
		}
		got := y.Series(b, i)
		mean, peak := 0.0, 0.0
		for _, v := range ref[i] {
			mean += v
			peak = max(peak, math.Abs(v))
		}
		mean /= float64(len(ref[i]))
		num, den, worst := 0.0, 0.0, 0.0
		for t, v := range ref[i] {
			e := float64(got[t]) - v
			num += e * e
			den += (v - mean) * (v - mean)
			worst = max(worst, math.Abs(e))
		}
		if den > 0 {
			nses = append(nses, 1-num/den)
		}
		if peak > 0 {
			maxRel = max(maxRel, worst/peak)
		} else if worst > 0 {
			maxRel = math.Inf(1)
		}
	}
	sort.Float64s(nses)
	if len(nses) == 0 {
		return math.NaN(), maxRel
	}
	return nses[len(nses)/2], maxRel
}

// kIRFCases maps test names to registered IRFs.
var kIRFCases = []struct{ name, irf string }{
	{"muskingum", "muskingum"},
	{"linear_storage", "linear_storage"},
	{"nash_cascade", "nash_cascade"},
	{"nash_fractional", "nash_cascade"},
	{"pure_lag", "pure_lag"},
	{"hayami", "hayami"},
	{"hayami_unshifted", "hayami_unshifted"},
}

func TestKernelMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n, T := 240, 120
	if testing.Short() {
		// The race run (-short) keeps every IRF and option on a smaller
		// case: the reference loop under -race took two minutes.
		n, T = 80, 40
	}
	net := kRandomNetwork(t, rng, n, 4)
	t.Logf("%v", net)
	const f, maxDelay = 3, 80
	x := kRandomRunoff(rng, net, 2, T)
	ctx := context.Background()
	for _, ic := range kIRFCases {
		params := kRandomParams(rng, ic.name, net.Len())
		for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
			for _, smp := range []Sampling{SampleAvg, SampleLast} {
				for _, avg := range []Average{AverageStart, AverageEnd} {
					for _, excl := range []bool{false, true} {
						name := fmt.Sprintf("%s/%s/%s/%s/exclude=%v", ic.name, lat, smp, avg, excl)
						opts := Options{IRF: ic.irf, Params: params, SubSteps: f, MaxDelay: maxDelay,
							Lateral: lat, Sampling: smp, Average: avg, ExcludeSelf: excl}
						kr, err := NewKernelRouter(ctx, net, opts)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						y, err := kr.Route(ctx, x)
						if err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						ro := kRefOpts{irf: ic.irf, params: params, f: f, window: maxDelay * f,
							lateral: lat, sampling: smp, average: avg, excludeSelf: excl}
						worstNSE, worstRel := 1.0, 0.0
						for b := 0; b < x.B; b++ {
							ref := kRefRoute(t, net, ro, kSeriesOf(x, net, b), nil)
							nse, rel := kCompareRef(net, y, b, ref)
							worstNSE, worstRel = min(worstNSE, nse), max(worstRel, rel)
						}
						if !(worstNSE >= 0.9999) || !(worstRel < 1e-3) {
							t.Errorf("%s: median NSE %.7f, max rel error %.3g", name, worstNSE, worstRel)
						} else if testing.Verbose() && !excl && smp == SampleAvg {
							t.Logf("%s: median NSE %.9f, max rel error %.3g (%v)", name, worstNSE, worstRel, kr.Stats())
						}
					}
				}
			}
		}
	}
}

// kReadCSV parses a small numeric CSV. With a header it returns the
// header fields too.
func kReadCSV(t *testing.T, path string, header bool) ([]string, [][]float64) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Skipf("rapid_xx9 data not available: %v", err)
	}
	defer fh.Close()
	r := csv.NewReader(fh)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var head []string
	if header {
		head, recs = recs[0], recs[1:]
	}
	rows := make([][]float64, len(recs))
	for i, rec := range recs {
		for _, s := range rec {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				t.Fatalf("%s line %d: %v", path, i+1, err)
			}
			rows[i] = append(rows[i], v)
		}
	}
	return head, rows
}

// kRapidXX9 loads the 9-reach RAPID basin: network (rapid_connect order),
// Muskingum parameters in Δ units, runoff in m³/s and RAPID's Qout by id.
func kRapidXX9(t *testing.T) (*Network, Params, *DataTensor, map[int64][]float64) {
	dir := filepath.Join("..", "..", "shared", "data", "rapid_xx9")
	if _, err := os.Stat(dir); err != nil {
		dir = "/work/shared/data/rapid_xx9"
	}
	const delta = 10800.0
	_, conn := kReadCSV(t, filepath.Join(dir, "rapid_connect.csv"), false)
	_, kk := kReadCSV(t, filepath.Join(dir, "k.csv"), false)
	_, xx := kReadCSV(t, filepath.Join(dir, "x.csv"), false)
	ids := make([]int64, len(conn))
	downs := make([]int64, len(conn))
	p := Params{"k": make([]float64, len(conn)), "x": make([]float64, len(conn))}
	for i, row := range conn {
		ids[i], downs[i] = int64(row[0]), int64(row[1])
		p["k"][i] = kk[i][0] / delta
		p["x"][i] = xx[i][0]
	}
	net, err := NewNetwork(ids, downs)
	if err != nil {
		t.Fatal(err)
	}
	head, m3 := kReadCSV(t, filepath.Join(dir, "m3_riv.csv"), true)
	rids := make([]int64, len(head)-1)
	for j, s := range head[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		rids[j] = v
	}
	rows := make([][]float32, len(m3))
	for tt, row := range m3 {
		for _, v := range row[1:] {
			rows[tt] = append(rows[tt], float32(v/delta))
		}
	}
	x, err := FromTimeMajor(rids, rows)
	if err != nil {
		t.Fatal(err)
	}
	qhead, qrows := kReadCSV(t, filepath.Join(dir, "qout_rapid.csv"), true)
	qout := map[int64][]float64{}
	for j, s := range qhead[1:] {
		id, _ := strconv.ParseInt(s, 10, 64)
		for _, row := range qrows {
			qout[id] = append(qout[id], row[j+1])
		}
	}
	return net, p, x, qout
}

func TestKernelRapidXX9(t *testing.T) {
	net, p, x, qout := kRapidXX9(t)
	ctx := context.Background()
	for _, md := range []int{16, 32, 64} {
		for _, pad := range []int{1, 2} {
			kr, err := NewKernelRouter(ctx, net, Options{Params: p, SubSteps: 12, MaxDelay: md, FFTPad: pad,
				Lateral: LateralRAPID, Sampling: SampleAvg, Average: AverageStart})
			if err != nil {
				t.Fatal(err)
			}
			y, err := kr.Route(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			for i, id := range net.IDs() {
				ref := qout[id]
				peak := 0.0
				for _, v := range ref {
					peak = max(peak, math.Abs(v))
				}
				for tt, v := range ref {
					if peak > 0 {
						worst = max(worst, math.Abs(float64(y.At(0, i, tt))-v)/peak)
					}
				}
			}
			t.Logf("rapid_xx9 MaxDelay %d FFTPad %d: max relative error vs RAPID Qout %.3g (truncated mass max %.3g)", md, pad, worst, kr.Stats().TruncatedMassMax)
			if worst > 1e-5 {
				t.Errorf("MaxDelay %d FFTPad %d: max relative error %.3g > 1e-5", md, pad, worst)
			}
		}
	}
	// DiffRoute's conventions (lti + tri + ReLU + renormalise, end) for comparison.
	for _, o := range []Options{{Compat: "diffroute"}, {Lateral: LateralLTI}} {
		o.Params, o.SubSteps, o.MaxDelay = p, 12, 16
		kr, err := NewKernelRouter(ctx, net, o)
		if err != nil {
			t.Fatal(err)
		}
		y, err := kr.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		ref := make([][]float64, net.Len())
		for i, id := range net.IDs() {
			ref[i] = qout[id]
		}
		var nses []float64
		for i := range ref {
			mean := 0.0
			for _, v := range ref[i] {
				mean += v
			}
			mean /= float64(len(ref[i]))
			num, den := 0.0, 0.0
			for tt, v := range ref[i] {
				e := float64(y.At(0, i, tt)) - v
				num += e * e
				den += (v - mean) * (v - mean)
			}
			if den > 0 {
				nses = append(nses, 1-num/den)
			}
		}
		slices.Sort(nses)
		t.Logf("rapid_xx9 %+v vs RAPID Qout: NSE median %.6f, min %.6f", struct{ Compat, Lateral string }{string(o.Compat), string(o.Lateral)}, nses[len(nses)/2], nses[0])
	}
}

// TestKernelPlantedBugs checks that the reference comparison can fail: a
// kernel built with the wrong lateral rule or the wrong averaging must miss
// the reference by far more than the tolerance.
func TestKernelPlantedBugs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	net := kRandomNetwork(t, rng, 150, 3)
	const f, md, T = 4, 64, 80
	x := kRandomRunoff(rng, net, 1, T)
	p := Params{"k": make([]float64, net.Len()), "x": make([]float64, net.Len())}
	for i := range p["k"] {
		p["k"][i], p["x"][i] = 0.3+0.3*rng.Float64(), 0.4 // C0 < 0, large C1
	}
	ctx := context.Background()
	ref := kRefRoute(t, net, kRefOpts{irf: "muskingum", params: p, f: f, window: md * f,
		lateral: LateralRAPID, sampling: SampleAvg, average: AverageStart}, kSeriesOf(x, net, 0), nil)
	for _, bug := range []Options{
		{Lateral: LateralLTI, Average: AverageStart},
		{Lateral: LateralRAPID, Average: AverageEnd},
		{Lateral: LateralRAPID, Average: AverageStart, ExcludeSelf: true},
		{Lateral: LateralRAPID, Average: AverageStart, MaxDelay: 2},
	} {
		bug.Params, bug.SubSteps, bug.Sampling = p, f, SampleAvg
		if bug.MaxDelay == 0 {
			bug.MaxDelay = md
		}
		kr, err := NewKernelRouter(ctx, net, bug)
		if err != nil {
			t.Fatal(err)
		}
		y, err := kr.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		nse, rel := kCompareRef(net, y, 0, ref)
		t.Logf("planted %+v: median NSE %.6f, max rel error %.3g", struct {
			L        LateralRule
			A        Average
			Exclude  bool
			MaxDelay int
		}{bug.Lateral, bug.Average, bug.ExcludeSelf, bug.MaxDelay}, nse, rel)
		if rel < 1e-3 {
			t.Errorf("planted bug %+v not detected (max rel error %.3g)", bug, rel)
		}
	}
}

// TestKernelFFTPad reports the routing error of FFT lengths W and 2W when
// MaxDelay is short enough that the circular wrap-around matters, and checks
// tap by tap, against the exact path kernels (the reference's response to a
// unit runoff step at the deepest source), that padding reduces the
// wrap-around error. The time-domain build (tapErr[0]), which has no
// wrap-around, must be at least as close as either.
func TestKernelFFTPad(t *testing.T) {
	defer func(v bool) { kernelForceFFT = v }(kernelForceFFT)
	rng := rand.New(rand.NewPCG(5, 6))
	net := kRandomNetwork(t, rng, 200, 2)
	const f, T = 4, 150
	x := kRandomRunoff(rng, net, 1, T)
	p := kRandomParams(rng, "muskingum", net.Len())
	ctx := context.Background()
	deep := 0
	for i := 0; i < net.Len(); i++ {
		if net.Depth(i) > net.Depth(deep) {
			deep = i
		}
	}
	for _, md := range []int{12, 24, 48, 96} {
		ro := kRefOpts{irf: "muskingum", params: p, f: f, window: md * f,
			lateral: LateralRAPID, sampling: SampleAvg, average: AverageStart}
		ref := kRefRoute(t, net, ro, kSeriesOf(x, net, 0), nil)
		unit := make([][]float64, net.Len())
		for i := range unit {
			unit[i] = make([]float64, md)
		}
		unit[deep][0] = 1
		exact := kRefRoute(t, net, ro, unit, nil)
		var tapErr [3]float64
		for pad := 0; pad <= 2; pad++ {
			kernelForceFFT = pad > 0 // pad 0: the time-domain build
			kr, err := NewKernelRouter(ctx, net, Options{Params: p, SubSteps: f, MaxDelay: md, FFTPad: max(pad, 1)})
			if err != nil {
				t.Fatal(err)
			}
			y, err := kr.Route(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			nse, rel := kCompareRef(net, y, 0, ref)
			bs := kr.BlockSparse()
			for d := deep; d >= 0; d = net.Down(d) {
				for q, v := range bs.entry(net.Pre(d), net.Pre(deep)) {
					tapErr[pad] = max(tapErr[pad], math.Abs(float64(v)-exact[d][q]))
				}
			}
			st := kr.Stats()
			build := fmt.Sprintf("FFTPad %d  ", pad)
			if pad == 0 {
				build = "time-domain"
			}
			t.Logf("MaxDelay %3d %s: routing median NSE %.9f, max rel error %.3g; path taps max abs error %.3g; truncated mass max %.3g median %.3g",
				md, build, nse, rel, tapErr[pad], st.TruncatedMassMax, st.TruncatedMassMedian)
		}
		if tapErr[2] > tapErr[1] && tapErr[2] > 1e-6 {
			t.Errorf("MaxDelay %d: padding made the path taps worse (%.3g > %.3g)", md, tapErr[2], tapErr[1])
		}
		if md == 12 && !(tapErr[2] < tapErr[1]/2) {
			t.Errorf("MaxDelay 12: expected padding to cut the wrap-around error (%.3g vs %.3g)", tapErr[2], tapErr[1])
		}
		if tapErr[0] > max(1e-7, min(tapErr[1], tapErr[2])) {
			t.Errorf("MaxDelay %d: time-domain taps off by %.3g, FFT by %.3g (pad 1) and %.3g (pad 2)", md, tapErr[0], tapErr[1], tapErr[2])
		}
	}
}

func TestKernelCOOEqualsBlockSparse(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	net := kRandomNetwork(t, rng, 300, 5)
	x := kRandomRunoff(rng, net, 2, 60)
	ctx := context.Background()
	for _, b := range []int{1, 5, 16} {
		kr, err := NewKernelRouter(ctx, net, Options{Params: kRandomParams(rng, "muskingum", net.Len()), SubSteps: 2, MaxDelay: 30, BlockSize: b, Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		y, err := kr.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		coo := kr.COO()
		if int64(len(coo.Coords)/2) != net.Pairs() || len(coo.Vals) != len(coo.Coords)/2*coo.Taps {
			t.Fatalf("COO has %d pairs, network %d", len(coo.Coords)/2, net.Pairs())
		}
		// Every pair is (downstream, source) with the source in the closure.
		for pi := 0; pi < len(coo.Coords)/2; pi++ {
			d, s := int(coo.Coords[2*pi]), int(coo.Coords[2*pi+1])
			v := s
			for v >= 0 && v != d {
				v = net.Down(v)
			}
			if v != d {
				t.Fatalf("pair (%d, %d) is not on a downstream path", d, s)
			}
		}
		y2, err := coo.Route(net, x)
		if err != nil {
			t.Fatal(err)
		}
		for i := range y.Data {
			if d := math.Abs(float64(y.Data[i] - y2.Data[i])); d > 1e-5*(1+math.Abs(float64(y.Data[i]))) {
				t.Fatalf("B=%d: block-sparse %v != COO %v at %d", b, y.Data[i], y2.Data[i], i)
			}
		}
		est, err := EstimateKernelBytes(net, kr.Options())
		if err != nil {
			t.Fatal(err)
		}
		st := kr.Stats()
		if est.Tiles != st.Tiles || est.BlockBytes != st.BlockBytes || est.COOBytes != st.COOBytes || est.Pairs != st.Pairs {
			t.Errorf("estimate %+v differs from built %+v", est, st)
		}
		if bs := kr.BlockSparse(); int64(len(bs.Vals)) != st.Tiles*int64(b*b*bs.Taps) {
			t.Errorf("tile values: %d floats for %d tiles", len(bs.Vals), st.Tiles)
		}
	}
}

func TestKernelWarmChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	net := kRandomNetwork(t, rng, 200, 3)
	const md, T = 20, 97
	x := kRandomRunoff(rng, net, 2, T)
	x.Times = make([]string, T)
	for i := range x.Times {
		x.Times[i] = strconv.Itoa(i)
	}
	ctx := context.Background()
	kr, err := NewKernelRouter(ctx, net, Options{Params: kRandomParams(rng, "muskingum", net.Len()), SubSteps: 3, MaxDelay: md})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := kr.Route(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	var parts []*DataTensor
	for t0 := 0; t0 < T; t0 += 25 {
		t1 := min(T, t0+25)
		w0 := max(0, t0-(md-1))
		part, err := kr.RouteWarm(ctx, x.SliceTime(w0, t1), t0-w0)
		if err != nil {
			t.Fatal(err)
		}
		if part.T != t1-t0 || part.Times[0] != strconv.Itoa(t0) {
			t.Fatalf("chunk [%d,%d): got %d steps starting %q", t0, t1, part.T, part.Times[0])
		}
		parts = append(parts, part)
	}
	joined, err := ConcatTime(parts...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(joined.Data, whole.Data) {
		t.Fatal("chunks with warm-up differ from the whole run")
	}
	// Fine inflow (transfers) chunked the same way: each chunk gets the inflow
	// of its warm-up and its own steps.
	f := kr.Options().SubSteps
	var inflow []FineInflow
	for _, v := range []int{3, 17, 17, 101} {
		z := make([]float32, x.B*T*f)
		for i := range z {
			z[i] = float32(rng.Float64() * 5)
		}
		inflow = append(inflow, FineInflow{Reach: v, Q: z})
	}
	wholeIn, err := kr.RouteInflow(ctx, x, inflow)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(wholeIn.Data, whole.Data) {
		t.Fatal("inflow changed nothing")
	}
	parts = parts[:0]
	for t0 := 0; t0 < T; t0 += 30 {
		t1 := min(T, t0+30)
		w0 := max(0, t0-(md-1))
		var in []FineInflow
		for _, fi := range inflow {
			q := make([]float32, 0, x.B*(t1-w0)*f)
			for b := 0; b < x.B; b++ {
				q = append(q, fi.Q[(b*T+w0)*f:(b*T+t1)*f]...)
			}
			in = append(in, FineInflow{Reach: fi.Reach, Q: q})
		}
		part, err := kr.RouteWith(ctx, x.SliceTime(w0, t1), in, t0-w0)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, part)
	}
	if joined, _ = ConcatTime(parts...); !slices.Equal(joined.Data, wholeIn.Data) {
		t.Fatal("chunks with warm-up and fine inflow differ from the whole run")
	}
	// Too short a warm-up must show.
	short, _ := kr.RouteWarm(ctx, x.SliceTime(40, T), 3)
	if slices.Equal(short.Data, whole.SliceTime(43, T).Data) {
		t.Error("a 3-step warm-up reproduced the whole run; the check cannot fail")
	}
}

// TestKernelFineInflow cuts the network at random edges u → v and feeds u's
// fine outflow (from the reference) to v as fine inflow; the kernel router on
// the cut network must match the reference on the whole network.
func TestKernelFineInflow(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	full := kRandomNetwork(t, rng, 200, 2)
	const f, md, T = 3, 60, 70
	n := full.Len()
	for _, ic := range []string{"muskingum", "hayami"} {
		for _, avg := range []Average{AverageStart, AverageEnd} {
			for _, smp := range []Sampling{SampleAvg, SampleLast} {
				params := kRandomParams(rng, ic, n)
				// Cut a few edges.
				downs := make([]int64, n)
				cut := map[int]int{} // u → v
				for i := 0; i < n; i++ {
					d := full.Down(i)
					if d >= 0 && rng.IntN(8) == 0 {
						cut[i] = d
						d = -1
					}
					downs[i] = -1
					if d >= 0 {
						downs[i] = full.ID(d)
					}
				}
				net, err := NewNetwork(full.IDs(), downs)
				if err != nil {
					t.Fatal(err)
				}
				x := kRandomRunoff(rng, net, 1, T)
				ro := kRefOpts{irf: ic, params: params, f: f, window: md * f, lateral: LateralRAPID, sampling: smp, average: avg}
				ref := kRefRoute(t, full, ro, kSeriesOf(x, full, 0), nil)
				// The fine outflow of each cut reach u on the whole network enters v.
				fine := kRefRouteFine(t, full, ro, kSeriesOf(x, full, 0), nil)
				var inflow []FineInflow
				for u, v := range cut {
					z := make([]float32, T*f)
					for m := range z {
						z[m] = float32(fine[u][m])
					}
					inflow = append(inflow, FineInflow{Reach: v, Q: z})
				}
				kr, err := NewKernelRouter(context.Background(), net, Options{IRF: ic, Params: params, SubSteps: f, MaxDelay: md,
					Sampling: smp, Average: avg})
				if err != nil {
					t.Fatal(err)
				}
				y, err := kr.RouteInflow(context.Background(), x, inflow)
				if err != nil {
					t.Fatal(err)
				}
				nse, rel := kCompareRef(net, y, 0, ref)
				t.Logf("%s/%s/%s: %d transfers, median NSE %.9f, max rel error %.3g", ic, avg, smp, len(inflow), nse, rel)
				if !(nse >= 0.9999) || rel > 1e-4 {
					t.Errorf("%s/%s/%s: fine inflow: median NSE %.7f, max rel error %.3g", ic, avg, smp, nse, rel)
				}
				// Without the transfers the cut reaches must differ.
				y0, _ := kr.Route(context.Background(), x)
				if _, rel0 := kCompareRef(net, y0, 0, ref); rel0 < 1e-2 {
					t.Errorf("dropping the transfers changed little (%.3g): the check cannot fail", rel0)
				}
			}
		}
	}
}

var negOnce sync.Once

// TestKernelCompatAndNormalize checks DiffRoute's post-processing: under
// --compat diffroute every path kernel is non-negative and sums to 1, and a
// kernel that sums to zero is an error naming the pair.
func TestKernelCompatAndNormalize(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	net := kRandomNetwork(t, rng, 120, 2)
	ctx := context.Background()
	p := kRandomParams(rng, "muskingum", net.Len())
	for i := range p["x"] {
		p["x"][i] = 0.45 // C0 < 0 for k·x > r/2: ReLU has work to do
	}
	for _, excl := range []bool{false, true} {
		kr, err := NewKernelRouter(ctx, net, Options{Params: p, SubSteps: 4, MaxDelay: 40, Compat: "diffroute", ExcludeSelf: excl})
		if err != nil {
			t.Fatal(err)
		}
		if o := kr.Options(); o.Lateral != LateralLTI || o.FFTPad != 1 || !o.ReLU || !o.Normalize || o.Average != AverageEnd {
			t.Fatalf("compat options not applied: %+v", o)
		}
		coo := kr.COO()
		for pi := 0; pi < len(coo.Coords)/2; pi++ {
			sum := 0.0
			for _, v := range coo.Vals[pi*coo.Taps : (pi+1)*coo.Taps] {
				if v < 0 {
					t.Fatalf("negative tap %v under ReLU", v)
				}
				sum += float64(v)
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Fatalf("pair %d sums to %v under Normalize", pi, sum)
			}
			if excl && coo.Coords[2*pi] == coo.Coords[2*pi+1] && coo.Vals[pi*coo.Taps] != 1 {
				t.Fatalf("ExcludeSelf: own runoff should pass directly, got taps %v", coo.Vals[pi*coo.Taps:(pi+1)*coo.Taps])
			}
		}
	}
	negOnce.Do(func() {
		err := Register(IRF{Name: "test_negative_delta", Params: []string{"a"}, Impulse: func(h, p []float64, r float64) error {
			clear(h)
			h[0] = -p[0]
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
	})
	_, err := NewKernelRouter(ctx, net, Options{IRF: "test_negative_delta", Params: Constant(net.Len(), map[string]float64{"a": 1}),
		SubSteps: 2, MaxDelay: 8, ReLU: true, Normalize: true})
	if err == nil || !strings.Contains(err.Error(), "sums to zero") || !strings.Contains(err.Error(), "reach") {
		t.Fatalf("zero-sum kernel under Normalize: got %v", err)
	}
}

func TestKernelErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	net := kRandomNetwork(t, rng, 50, 1)
	p := kRandomParams(rng, "muskingum", net.Len())
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewKernelRouter(cctx, net, Options{Params: p}); err == nil {
		t.Error("cancelled build succeeded")
	}
	ctx := context.Background()
	if _, err := NewKernelRouter(ctx, net, Options{Params: p, InitialQ: make([]float64, net.Len())}); err == nil {
		t.Error("qinit accepted by the kernel method")
	}
	bad := Params{"k": slices.Clone(p["k"]), "x": slices.Clone(p["x"])}
	bad["x"][7] = 0.9
	if _, err := NewKernelRouter(ctx, net, Options{Params: bad}); err == nil || !strings.Contains(err.Error(), strconv.FormatInt(net.ID(7), 10)) {
		t.Errorf("bad parameter: got %v, want an error naming reach %d", err, net.ID(7))
	}
	kr, err := NewKernelRouter(ctx, net, Options{Params: p, SubSteps: 2, MaxDelay: 10})
	if err != nil {
		t.Fatal(err)
	}
	x := kRandomRunoff(rng, net, 1, 20)
	missing, _ := x.SelectIDs(x.IDs[1:])
	if _, err := kr.Route(ctx, missing); err == nil {
		t.Error("runoff lacking a reach accepted")
	}
	if _, err := kr.RouteWarm(ctx, x, 21); err == nil {
		t.Error("warm-up beyond T accepted")
	}
	if _, err := kr.RouteInflow(ctx, x, []FineInflow{{Reach: 3, Q: make([]float32, 20)}}); err == nil {
		t.Error("inflow of the wrong length accepted")
	}
	if _, err := kr.RouteInflow(ctx, x, []FineInflow{{Reach: net.Len(), Q: make([]float32, 40)}}); err == nil {
		t.Error("inflow into a reach outside the network accepted")
	}
}

// benchKernelN is the benchmark network size (20k: ~2 M pairs).
// KERNEL_BENCH_N overrides it.
var benchKernelN = func() int {
	if n, err := strconv.Atoi(os.Getenv("KERNEL_BENCH_N")); err == nil && n > 0 {
		return n
	}
	return 20000
}()

// benchKernelNet is the benchmark network: ~20k reaches shaped by Hack's law.
func benchKernelNet(b *testing.B) (*Network, Options) {
	net := SyntheticNetwork(benchKernelN, 1)
	rng := rand.New(rand.NewPCG(1, 1))
	return net, Options{Params: kRandomParams(rng, "muskingum", net.Len()), SubSteps: 8, MaxDelay: 32}
}

func BenchmarkKernelBuild20k(b *testing.B) {
	net, opts := benchKernelNet(b)
	b.Logf("%v", net)
	if os.Getenv("KERNEL_LOG_PREFIX") == "1" {
		defer func(v bool) { kernelLogPrefix = v }(kernelLogPrefix)
		kernelLogPrefix = true
	}
	if os.Getenv("KERNEL_FORCE_FFT") == "1" { // the FFT build instead of the time-domain one
		defer func(v bool) { kernelForceFFT = v }(kernelForceFFT)
		kernelForceFFT = true
	}
	var st KernelStats
	for b.Loop() {
		kr, err := NewKernelRouter(context.Background(), net, opts)
		if err != nil {
			b.Fatal(err)
		}
		st = kr.Stats()
	}
	b.ReportMetric(float64(st.Pairs)*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
	b.Logf("%v", st)
}

func BenchmarkKernelRoute20k(b *testing.B) {
	net, opts := benchKernelNet(b)
	kr, err := NewKernelRouter(context.Background(), net, opts)
	if err != nil {
		b.Fatal(err)
	}
	const T = 365
	x := SyntheticRunoff(net, 1, T, 2)
	for b.Loop() {
		if _, err := kr.Route(context.Background(), x); err != nil {
			b.Fatal(err)
		}
	}
	pairTaps := float64(kr.Stats().Pairs) * float64(opts.MaxDelay) * T
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(pairTaps/sec, "pair-taps/s")
	b.ReportMetric(2*pairTaps/sec/1e9, "GFLOP/s")
}

// TestKernelLogPrefixAgrees checks that on the FFT path the running-product
// walk (CPU default) and the log-domain prefix sums (docs/design.md, the GPU
// form) give the same kernel.
func TestKernelLogPrefixAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	net := kRandomNetwork(t, rng, 200, 3)
	ctx := context.Background()
	defer func(v bool) { kernelLogPrefix = v }(kernelLogPrefix)
	defer func(v bool) { kernelForceFFT = v }(kernelForceFFT)
	kernelForceFFT = true
	for _, c := range []Options{
		{IRF: "muskingum", Lateral: LateralRAPID},
		{IRF: "muskingum", Lateral: LateralLTI, ExcludeSelf: true},
		{IRF: "hayami", Compat: "diffroute", ExcludeSelf: true},
		{IRF: "nash_cascade", Lateral: LateralRAPID, Sampling: SampleLast},
	} {
		c.Params, c.SubSteps, c.MaxDelay = kRandomParams(rng, c.IRF, net.Len()), 3, 40
		var vals [2][]float32
		for m, logMode := range []bool{false, true} {
			kernelLogPrefix = logMode
			kr, err := NewKernelRouter(ctx, net, c)
			if err != nil {
				t.Fatal(err)
			}
			vals[m] = kr.BlockSparse().Vals
		}
		worst := 0.0
		for i := range vals[0] {
			worst = max(worst, math.Abs(float64(vals[0][i]-vals[1][i])))
		}
		t.Logf("%s lateral=%s exclude=%v compat=%q: max tap difference %.3g", c.IRF, c.Lateral, c.ExcludeSelf, c.Compat, worst)
		if worst > 1e-6 {
			t.Errorf("%+v: running product and log prefix differ by %.3g", c, worst)
		}
	}
}

// TestKernelStagedFine cuts the network at random edges and routes it the way
// staged routing does: each cut reach's fine outflow (RouteFine, itself fed by
// the transfers further upstream) enters its downstream reach as fine inflow.
// The result must equal the reference on the uncut network, whole and in time
// chunks with a warm-up of MaxDelay−1 steps.
func TestKernelStagedFine(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	full := kRandomNetwork(t, rng, 180, 2)
	const f, md, T = 3, 50, 64
	n := full.Len()
	ctx := context.Background()
	for _, c := range []struct {
		irf string
		lat LateralRule
		avg Average
		exc bool
	}{{"muskingum", LateralRAPID, AverageStart, false}, {"hayami", LateralLTI, AverageEnd, false}, {"muskingum", LateralLTI, AverageStart, true}} {
		params := kRandomParams(rng, c.irf, n)
		downs := make([]int64, n)
		var cuts []int
		for i := 0; i < n; i++ {
			d := full.Down(i)
			downs[i] = -1
			if d >= 0 && rng.IntN(6) == 0 {
				cuts = append(cuts, i)
			} else if d >= 0 {
				downs[i] = full.ID(d)
			}
		}
		// Upstream cuts first.
		slices.SortFunc(cuts, func(a, b int) int { return full.Depth(b) - full.Depth(a) })
		net, err := NewNetwork(full.IDs(), downs)
		if err != nil {
			t.Fatal(err)
		}
		x := kRandomRunoff(rng, net, 2, T)
		kr, err := NewKernelRouter(ctx, net, Options{IRF: c.irf, Params: params, SubSteps: f, MaxDelay: md,
			Lateral: c.lat, Average: c.avg, ExcludeSelf: c.exc})
		if err != nil {
			t.Fatal(err)
		}
		stage := func(x *DataTensor, warmup int) (*DataTensor, []FineInflow) {
			var inflow []FineInflow
			for _, u := range cuts {
				q, err := kr.RouteFine(ctx, x, inflow, 0, []int{u})
				if err != nil {
					t.Fatal(err)
				}
				inflow = append(inflow, FineInflow{Reach: full.Down(u), Q: q[0]})
			}
			y, err := kr.RouteWith(ctx, x, inflow, warmup)
			if err != nil {
				t.Fatal(err)
			}
			return y, inflow
		}
		whole, inflow := stage(x, 0)
		ro := kRefOpts{irf: c.irf, params: params, f: f, window: md * f, lateral: c.lat, sampling: SampleAvg, average: c.avg, excludeSelf: c.exc}
		worstNSE, worstRel := 1.0, 0.0
		for b := 0; b < x.B; b++ {
			ref := kRefRoute(t, full, ro, kSeriesOf(x, full, b), nil)
			nse, rel := kCompareRef(net, whole, b, ref)
			worstNSE, worstRel = min(worstNSE, nse), max(worstRel, rel)
		}
		t.Logf("%+v: %d cuts, median NSE %.9f, max rel error %.3g", c, len(cuts), worstNSE, worstRel)
		if !(worstNSE >= 0.9999) || worstRel > 1e-4 {
			t.Errorf("%+v: staged fine routing: median NSE %.7f, max rel error %.3g", c, worstNSE, worstRel)
		}
		// RouteFine in chunks with warm-up equals the whole fine series.
		// The cut reach receiving the most transfers in its closure.
		u, most := cuts[0], -1
		for _, c := range cuts {
			k := 0
			for _, fi := range inflow {
				if p := net.Pre(fi.Reach); p >= net.Pre(c) && p < net.Pre(c)+net.Size(c) {
					k++
				}
			}
			if k > most {
				u, most = c, k
			}
		}
		if most < 1 {
			t.Fatal("no cut reach receives a transfer: the chunk check would not cover fine inflow")
		}
		wholeQ, err := kr.RouteFine(ctx, x, inflow, 0, []int{u})
		if err != nil {
			t.Fatal(err)
		}
		for t0 := 0; t0 < T; t0 += 20 {
			t1 := min(T, t0+20)
			w0 := max(0, t0-(md-1))
			var in []FineInflow
			for _, fi := range inflow {
				q := make([]float32, 0, x.B*(t1-w0)*f)
				for b := 0; b < x.B; b++ {
					q = append(q, fi.Q[(b*T+w0)*f:(b*T+t1)*f]...)
				}
				in = append(in, FineInflow{Reach: fi.Reach, Q: q})
			}
			part, err := kr.RouteFine(ctx, x.SliceTime(w0, t1), in, t0-w0, []int{u})
			if err != nil {
				t.Fatal(err)
			}
			for b := 0; b < x.B; b++ {
				got := part[0][b*(t1-t0)*f : (b+1)*(t1-t0)*f]
				want := wholeQ[0][(b*T+t0)*f : (b*T+t1)*f]
				for i := range got {
					if math.Abs(float64(got[i]-want[i])) > 1e-6*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("RouteFine chunk [%d,%d) batch %d sub-step %d: %v, whole run %v", t0, t1, b, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestKernelEstimateBlockSizes checks EstimateKernelBytes without building
// and logs how the block size trades tile fill against tile count.
func TestKernelEstimateBlockSizes(t *testing.T) {
	net := SyntheticNetwork(20000, 1)
	for _, b := range []int{1, 4, 8, 16, 32} {
		st, err := EstimateKernelBytes(net, Options{MaxDelay: 32, SubSteps: 8, BlockSize: b})
		if err != nil {
			t.Fatal(err)
		}
		if st.Pairs != net.Pairs() || st.COOBytes != st.Pairs*(8+4*32) {
			t.Fatalf("B=%d: %+v", b, st)
		}
		if st.Tiles*int64(b*b) < st.Pairs || (b == 1 && st.Tiles != st.Pairs) {
			t.Fatalf("B=%d: %d tiles cannot hold %d pairs", b, st.Tiles, st.Pairs)
		}
		t.Logf("B=%2d: %d pairs, %d tiles, fill %.0f%%, COO %.0f MiB, block-sparse %.0f MiB, build peak %.0f MiB",
			b, st.Pairs, st.Tiles, 100*st.Fill(), float64(st.COOBytes)/(1<<20), float64(st.BlockBytes)/(1<<20), float64(st.BuildPeakBytes)/(1<<20))
	}
}
