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
// Muskingum (time-domain build) and Hayami (FFT build).
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
				t.Run(fmt.Sprintf("%s/%s/paths%d/nodes%d/chunk%d", o.IRF, o.Lateral, ct.maxPaths, ct.maxNodes, chunk), func(t *testing.T) {
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
