package diffroute

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// With ExcludeSelf a reach's own runoff joins its discharge unrouted, so the
// transfer out of a cluster must carry the source's own runoff as it is
// (plus its routed upstream flow): the staged kernel run then equals the
// unstaged one wherever MaxDelay covers the series. Random networks (three
// outlets, file order shuffled), several cuts, time chunks, both lateral
// rules (irrelevant under ExcludeSelf, which must hold for either),
// Muskingum, linear storage and Nash cascades (time-domain build) and
// Hayami (FFT build).
func TestStagedKernelExcludeSelfEqualsPlain(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 7))
	ctx := context.Background()
	type cut struct {
		maxPaths int64
		maxNodes int
	}
	for _, c := range []struct {
		o    Options
		T    int
		cuts []cut
	}{
		{o: Options{IRF: "muskingum", SubSteps: 3, MaxDelay: 20}, T: 20, cuts: []cut{{300, 40}, {700, 60}}},
		{o: Options{IRF: "muskingum", SubSteps: 2, MaxDelay: 16, Lateral: LateralLTI, Average: AverageEnd, Sampling: SampleLast}, T: 16, cuts: []cut{{400, 30}}},
		{o: Options{IRF: "linear_storage", SubSteps: 2, MaxDelay: 16, Lateral: LateralRAPID, Average: AverageEnd}, T: 14, cuts: []cut{{600, 60}}},
		{o: Options{IRF: "nash_cascade", SubSteps: 2, MaxDelay: 16}, T: 16, cuts: []cut{{400, 40}}},
		{o: Options{IRF: "hayami", SubSteps: 2, MaxDelay: 24, FFTPad: 4, Lateral: LateralLTI}, T: 12, cuts: []cut{{250, 30}, {600, 50}}},
	} {
		o := c.o
		const n = 400
		net := kRandomNetwork(t, rng, n, 3)
		o.Params, o.Method, o.ExcludeSelf, o.Workers = kRandomParams(rng, o.IRF, n), Kernel, true, 2
		x := kRandomRunoff(rng, net, 2, c.T)
		kr, err := NewKernelRouter(ctx, net, o)
		if err != nil {
			t.Fatal(err)
		}
		want, err := kr.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		for _, ct := range c.cuts {
			cl, err := Schedule(net, ct.maxPaths, ct.maxNodes)
			if err != nil {
				t.Fatal(err)
			}
			if cl.Len() < 3 || len(cl.Transfers) < 3 {
				t.Fatalf("want several clusters with transfers, got %v", cl)
			}
			for _, chunk := range []int{0, 5} {
				t.Run(fmt.Sprintf("%s/lateral=%q/paths%d/nodes%d/chunk%d", o.IRF, o.Lateral, ct.maxPaths, ct.maxNodes, chunk), func(t *testing.T) {
					sr, err := NewStagedRouter(o)
					if err != nil {
						t.Fatal(err)
					}
					sr.TimeChunk = chunk
					got, err := sr.Route(ctx, x, cl)
					if err != nil {
						t.Fatal(err)
					}
					d := stagedRelDiff(t, got, want)
					t.Logf("%d clusters, %d transfers: max relative difference %.3g", cl.Len(), len(cl.Transfers), d)
					if d > 1e-5 {
						t.Errorf("staged kernel run with ExcludeSelf differs from the unstaged one by %.3g", d)
					}
				})
			}
		}
	}
}

// A staged kernel run with ExcludeSelf resumed from its State (the sources'
// recursion included) equals the uninterrupted one.
func TestStagedKernelExcludeSelfRestart(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(62, 8))
	net := kRandomNetwork(t, rng, 120, 2)
	const T, cut = 40, 17
	o := Options{IRF: "muskingum", Params: kRandomParams(rng, "muskingum", net.Len()), SubSteps: 3, Method: Kernel, MaxDelay: 10, Workers: 2, ExcludeSelf: true}
	x := kRandomRunoff(rng, net, 2, T)
	cl, err := Schedule(net, 150, 30)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Len() < 3 || len(cl.Transfers) == 0 {
		t.Fatalf("schedule has %d clusters, %d transfers: too few to test", cl.Len(), len(cl.Transfers))
	}
	for _, chunk := range []int{0, 7} {
		run := func(in *State, x *DataTensor) (*DataTensor, *State) {
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
		}
		whole, _ := run(nil, x)
		_, s1 := run(nil, x.SliceTime(0, cut))
		second, _ := run(reversedState(s1), x.SliceTime(cut, T))
		if d := stagedRelDiff(t, second, whole.SliceTime(cut, T)); d > 1e-6 {
			t.Errorf("time chunk %d: the resumed run differs from the whole one by %.3g", chunk, d)
		}
		cold, _ := run(nil, x.SliceTime(cut, T))
		if d := stagedRelDiff(t, cold, whole.SliceTime(cut, T)); d < 1e-3 {
			t.Errorf("time chunk %d: a cold start differs by only %.3g: the test cannot tell", chunk, d)
		}
	}
}
