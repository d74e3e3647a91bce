package diffroute

import (
	"context"
	"testing"
)

// WindowTail without a router agrees with the router's, for convolution,
// section and mixed IRFs, cut and not.
func TestWindowTailMatchesRouter(t *testing.T) {
	net := SyntheticNetwork(300, 1)
	for _, c := range []struct {
		irf      string
		p        map[string]float64
		maxDelay int
	}{
		{"nash_gamma", map[string]float64{"tau": 20, "n": 3}, 16},
		{"nash_gamma", map[string]float64{"tau": 0.5, "n": 3}, 64},
		{"hayami", map[string]float64{"L": 10, "D": 1, "c": 1}, 4},
		{"pure_lag", map[string]float64{"delay": 6.5}, 11},
		{"nash_cascade", map[string]float64{"tau": 3, "n": 4}, 4},
		{"muskingum", map[string]float64{"k": 0.4, "x": 0.2}, 4},
	} {
		p := Params{}
		for k, v := range c.p {
			p[k] = make([]float64, net.Len())
			for i := range p[k] {
				p[k][i] = v
			}
		}
		// Vary one parameter by reach so that the worst reach is one.
		for k := range p {
			for i := range p[k] {
				p[k][i] *= 1 + float64(i%7)/10
			}
			break
		}
		o := Options{IRF: c.irf, Params: p, SubSteps: 4, MaxDelay: c.maxDelay}
		rr, err := NewRecursiveRouter(context.Background(), net, o)
		if err != nil {
			t.Fatal(err)
		}
		wr, wi := rr.WindowTail()
		gr, gi, err := WindowTail(net, o)
		if err != nil || gr != wr || gi != wi {
			t.Errorf("%s %v: WindowTail %v, %d, %v; the router's %v, %d", c.irf, c.p, gr, gi, err, wr, wi)
		}
		t.Logf("%s: %.3g at reach %d", c.irf, gr, gi)
	}
}
