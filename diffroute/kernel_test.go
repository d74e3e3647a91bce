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
// per runoff step. x[i][t] is indexed by network position; so is the result.
func kRefRoute(t *testing.T, net *Network, o kRefOpts, x [][]float64, inflow map[int][]float64) [][]float64 {
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
	res := make([][]float64, n)
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
	net := kRandomNetwork(t, rng, 240, 4)
	t.Logf("%v", net)
	const f, maxDelay, T = 3, 80, 120
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
}
