package diffroute

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func ensTmp(n, steps, f, members, workers int, batch bool, reps int) (time.Duration, time.Duration) {
	net := SyntheticNetwork(n, 1)
	xs := make([]*DataTensor, members)
	for m := range xs {
		xs[m] = SyntheticRunoff(net, 1, steps, uint64(m+1))
	}
	x, _ := StackBatch(xs...)
	p := testParams("muskingum", n, 1)
	ctx := context.Background()
	o := Options{IRF: "muskingum", Params: p, SubSteps: f, MaxDelay: 16, Workers: workers}
	best, bestc := time.Hour, time.Hour
	for r := 0; r < reps; r++ {
		t0, c0 := time.Now(), cpuTime()
		if batch {
			rr, _ := NewRecursiveRouter(ctx, net, o)
			rr.Route(ctx, x)
		} else {
			for m := range xs {
				rr, _ := NewRecursiveRouter(ctx, net, o)
				rr.Route(ctx, xs[m])
			}
		}
		best, bestc = min(best, time.Since(t0)), min(bestc, cpuTime()-c0)
	}
	return best, bestc
}

func TestTmpEns(t *testing.T) {
	for _, c := range []struct{ n, steps, w int }{{2000, 365, 1}, {2000, 365, 2}, {20000, 100, 1}, {20000, 100, 2}} {
		for k := 0; k < 2; k++ {
			bw, bc := ensTmp(c.n, c.steps, 24, 8, c.w, true, 5)
			sw, sc := ensTmp(c.n, c.steps, 24, 8, c.w, false, 5)
			fmt.Printf("n=%d T=%d w=%d: batch %v (cpu %v)  singles %v (cpu %v)\n", c.n, c.steps, c.w, bw.Round(time.Millisecond), bc.Round(time.Millisecond), sw.Round(time.Millisecond), sc.Round(time.Millisecond))
		}
	}
}
