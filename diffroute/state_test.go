package diffroute

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// restartRoute routes x in one go (whole) and as two runs, the second
// continuing from the state the first left (split at step cut), with the
// given way of routing; the state passes through a copy with its reaches in
// reversed order, so that alignment by id is exercised.
type restartWay struct {
	name string
	// run routes x continuing from state in (nil: from rest) and returns the
	// discharge and the state after it.
	run func(t *testing.T, in *State, x *DataTensor) (*DataTensor, *State)
}

// reversedState returns s with its reaches (and the rows of its variables
// over all reaches) in reversed order.
func reversedState(s *State) *State {
	r := *s
	r.IDs = slices.Clone(s.IDs)
	slices.Reverse(r.IDs)
	r.Vars = nil
	for _, v := range s.Vars {
		ids := s.rowIDs(&v)
		n := len(ids)
		nv := StateVar{Name: v.Name, Width: v.Width, Data: make([]float64, len(v.Data))}
		nv.IDs = slices.Clone(ids)
		slices.Reverse(nv.IDs)
		for b := 0; b < s.B; b++ {
			for j := 0; j < n; j++ {
				copy(nv.Data[(b*n+n-1-j)*v.Width:(b*n+n-j)*v.Width], v.Data[(b*n+j)*v.Width:(b*n+j+1)*v.Width])
			}
		}
		r.Vars = append(r.Vars, nv)
	}
	return &r
}

func TestRestartEqualsWholeRun(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(11, 12))
	net := kRandomNetwork(t, rng, 90, 1)
	const T, cut = 73, 31
	for _, irf := range []string{"muskingum", "linear_storage", "nash_cascade", "pure_lag", "hayami"} {
		for _, method := range []Method{Recursive, Kernel} {
			o := Options{IRF: irf, Params: kRandomParams(rng, irf, net.Len()), SubSteps: 3, Method: method, MaxDelay: 12, Workers: 2}
			if method == Kernel && irf == "muskingum" {
				o.Lateral = LateralLTI // both lateral rules are covered
			}
			x := kRandomRunoff(rng, net, 2, T)
			cl, err := Schedule(net, 150, 30)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Len() < 3 || len(cl.Transfers) == 0 {
				t.Fatalf("schedule has %d clusters, %d transfers: too few to test", cl.Len(), len(cl.Transfers))
			}
			ways := []restartWay{
				{"plain", func(t *testing.T, in *State, x *DataTensor) (*DataTensor, *State) {
					var r interface {
						Route(context.Context, *DataTensor) (*DataTensor, error)
						State() (*State, error)
						SetState(*State) error
					}
					if method == Recursive {
						rr, err := NewRecursiveRouter(context.Background(), net, o)
						if err != nil {
							t.Fatal(err)
						}
						r = rr
					} else {
						kr, err := NewKernelRouter(ctx, net, o)
						if err != nil {
							t.Fatal(err)
						}
						ks, err := NewKernelStream(kr, kr.Options())
						if err != nil {
							t.Fatal(err)
						}
						r = ks
					}
					if in != nil {
						if err := r.SetState(in); err != nil {
							t.Fatal(err)
						}
					}
					y, err := r.Route(ctx, x)
					if err != nil {
						t.Fatal(err)
					}
					s, err := r.State()
					if err != nil {
						t.Fatal(err)
					}
					return y, s
				}},
			}
			for _, chunk := range []int{0, 7} {
				name := "staged"
				if chunk > 0 {
					name = "staged+time-chunked"
				}
				ways = append(ways, restartWay{name, func(t *testing.T, in *State, x *DataTensor) (*DataTensor, *State) {
					sr, err := NewStagedRouter(o)
					if err != nil {
						t.Fatal(err)
					}
					sr.TimeChunk = chunk
					if in != nil {
						if err := sr.SetState(in, cl); err != nil {
							t.Fatal(err)
						}
					}
					y, err := sr.RouteNext(ctx, x, cl)
					if err != nil {
						t.Fatal(err)
					}
					s, err := sr.State()
					if err != nil {
						t.Fatal(err)
					}
					return y, s
				}})
			}
			for _, w := range ways {
				t.Run(irf+"/"+string(method)+"/"+w.name, func(t *testing.T) {
					whole, s := w.run(t, nil, x)
					if s.Steps != T {
						t.Errorf("state counts %d steps, want %d", s.Steps, T)
					}
					first, s1 := w.run(t, nil, x.SliceTime(0, cut))
					second, _ := w.run(t, reversedState(s1), x.SliceTime(cut, T))
					if d := stagedRelDiff(t, first, whole.SliceTime(0, cut)); d > 1e-6 {
						t.Errorf("first part differs from the whole run by %.3g", d)
					}
					d := stagedRelDiff(t, second, whole.SliceTime(cut, T))
					if d > 1e-6 {
						t.Errorf("restarted run differs from the whole run by %.3g (relative)", d)
					}
					// Without the state the second part starts from rest and
					// must differ: the comparison above can fail.
					cold, _ := w.run(t, nil, x.SliceTime(cut, T))
					if dc := stagedRelDiff(t, cold, whole.SliceTime(cut, T)); dc < 1e-3 {
						t.Errorf("a cold start differs from the whole run by only %.3g: the test cannot tell", dc)
					}
				})
			}
		}
	}
}

// A recursive state is the same whatever the cuts: one written by a staged
// run continues an unstaged run, and the other way round.
func TestRecursiveStateCrossesStaging(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	net := kRandomNetwork(t, rng, 60, 2)
	o := Options{IRF: "hayami", Params: kRandomParams(rng, "hayami", net.Len()), SubSteps: 2, MaxDelay: 10, Workers: 1}
	x := kRandomRunoff(rng, net, 1, 40)
	whole := plainRecursive(t, net, o, x)
	cl, err := Schedule(net, 100, 20)
	if err != nil {
		t.Fatal(err)
	}
	sr, _ := NewStagedRouter(o)
	if _, err := sr.RouteNext(ctx, x.SliceTime(0, 17), cl); err != nil {
		t.Fatal(err)
	}
	s, err := sr.State()
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := NewRecursiveRouter(context.Background(), net, o)
	if err := rr.SetState(s); err != nil {
		t.Fatal(err)
	}
	y, err := rr.Route(ctx, x.SliceTime(17, 40))
	if err != nil {
		t.Fatal(err)
	}
	if d := stagedRelDiff(t, y, whole.SliceTime(17, 40)); d > 1e-6 {
		t.Errorf("unstaged run continuing a staged state differs by %.3g", d)
	}
}

func TestSetStateRefusesMismatch(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	net := kRandomNetwork(t, rng, 30, 1)
	o := Options{IRF: "muskingum", Params: kRandomParams(rng, "muskingum", net.Len()), SubSteps: 2, Workers: 1}
	rr, _ := NewRecursiveRouter(context.Background(), net, o)
	if _, err := rr.Route(ctx, kRandomRunoff(rng, net, 1, 5)); err != nil {
		t.Fatal(err)
	}
	good, err := rr.State()
	if err != nil {
		t.Fatal(err)
	}
	other := kRandomNetwork(t, rng, 30, 1)
	mod := func(f func(o *Options)) Options { c := o; f(&c); return c }
	cases := []struct {
		name string
		net  *Network
		o    Options
		want string
	}{
		{"network", other, mod(func(*Options) {}), "another network"},
		{"substeps", net, mod(func(o *Options) { o.SubSteps = 3 }), "sub-steps"},
		{"irf", net, mod(func(o *Options) { o.IRF, o.Params = "linear_storage", kRandomParams(rng, "linear_storage", net.Len()) }), "IRF"},
		{"params", net, mod(func(o *Options) { o.Params = kRandomParams(rng, "muskingum", net.Len()) }), "parameters"},
		{"lateral", net, mod(func(o *Options) { o.Lateral = LateralLTI }), "lateral"},
		{"method", net, mod(func(o *Options) { o.Method = Kernel }), "method"},
	}
	for _, c := range cases {
		if err := CheckState(good, c.net, c.o); err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line naming %q", c.name, err, c.want)
		}
	}
	if err := CheckState(good, net, o); err != nil {
		t.Errorf("the matching state is refused: %v", err)
	}
	if err := CheckState(reversedState(good), net, o); err != nil {
		t.Errorf("the matching state with reaches in another order is refused: %v", err)
	}
}

// TestRecursiveStateValues: the state a recursive router exports holds, per
// reach and member, the last fine outflow (what the last step's sample
// reports: a section reach's is its last section's output, not kept apart)
// and the last step's lateral runoff (kept as float32: a runoff value), and
// routing on from it under either lateral rule equals the whole run.
func TestRecursiveStateValues(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(400, 7)
	const T, cut = 40, 17
	for _, irf := range []string{"muskingum", "nash_cascade", "hayami"} {
		for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
			o := Options{IRF: irf, Params: testParams(irf, net.Len(), 3), SubSteps: 4, MaxDelay: 8, Workers: 2, Sampling: SampleLast, Average: AverageEnd, Lateral: lat}
			x := SyntheticRunoff(net, 2, T, 8)
			rr, err := NewRecursiveRouter(ctx, net, o)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := rr.Route(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			s, err := rr.State()
			if err != nil {
				t.Fatal(err)
			}
			out, lp := s.Var("outflow"), s.Var("lateral_inflow")
			n := net.Len()
			for b := 0; b < x.B; b++ {
				for i := 0; i < n; i++ {
					if got, want := float32(out.Data[b*n+i]), whole.At(b, i, T-1); got != want {
						t.Fatalf("%s, %s: reach %d member %d: state outflow %g, last sample %g", irf, lat, net.ID(i), b, got, want)
					}
					want := float64(x.At(b, i, T-1))
					if irf == "hayami" {
						want = 0 // convolution reaches keep their inflows, not this
					}
					if lp.Data[b*n+i] != want {
						t.Fatalf("%s, %s: reach %d member %d: state lateral inflow %g, want %g", irf, lat, net.ID(i), b, lp.Data[b*n+i], want)
					}
				}
			}
			// Routing on from the state of the first cut steps.
			first, rest := x.SliceTime(0, cut), x.SliceTime(cut, T)
			rr.Reset()
			if _, err := rr.Route(ctx, first); err != nil {
				t.Fatal(err)
			}
			mid, err := rr.State()
			if err != nil {
				t.Fatal(err)
			}
			again, err := NewRecursiveRouter(ctx, net, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := again.SetState(reversedState(mid)); err != nil {
				t.Fatal(err)
			}
			y, err := again.Route(ctx, rest)
			if err != nil {
				t.Fatal(err)
			}
			for b := 0; b < x.B; b++ {
				for i := 0; i < n; i++ {
					if !slices.Equal(y.Series(b, i), whole.Series(b, i)[cut:]) {
						t.Fatalf("%s, %s: reach %d member %d: routed on from the state, it differs from the whole run", irf, lat, net.ID(i), b)
					}
				}
			}
		}
	}
}
