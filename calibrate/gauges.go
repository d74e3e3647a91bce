package calibrate

import (
	"fmt"
	"math"

	"github.com/diffroute-go/route/diffroute"
)

// Gauges are observed discharge series (m³/s) at some reaches, aligned in
// time with the runoff they will be compared against: Obs[g][t] is gauge g's
// observation at runoff step t, NaN where missing.
type Gauges struct {
	IDs []int64
	Obs [][]float64
}

// Check verifies the gauges against a network and a run of t steps: every id
// in the network and given once, t values per gauge, at least two
// observations per gauge. Errors name the reach.
func (g *Gauges) Check(net *diffroute.Network, t int) error {
	if g == nil || len(g.IDs) == 0 {
		return fmt.Errorf("calibrate: no gauges")
	}
	if len(g.Obs) != len(g.IDs) {
		return fmt.Errorf("calibrate: %d gauge ids for %d observed series", len(g.IDs), len(g.Obs))
	}
	seen := map[int64]bool{}
	for k, id := range g.IDs {
		if _, ok := net.Index(id); !ok {
			return fmt.Errorf("calibrate: gauge reach %d is not in the network", id)
		}
		if seen[id] {
			return fmt.Errorf("calibrate: gauge reach %d is given twice", id)
		}
		seen[id] = true
		if len(g.Obs[k]) != t {
			return fmt.Errorf("calibrate: gauge reach %d has %d observed steps for %d runoff steps", id, len(g.Obs[k]), t)
		}
		n := 0
		for _, v := range g.Obs[k] {
			if math.IsInf(v, 0) {
				return fmt.Errorf("calibrate: gauge reach %d has an infinite observation", id)
			}
			if !math.IsNaN(v) {
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("calibrate: gauge reach %d has no observations (all missing)", id)
		}
		if n < minValid {
			return fmt.Errorf("calibrate: gauge reach %d has %d observation; a loss needs at least %d", id, n, minValid)
		}
	}
	return nil
}

// Subset returns the gauges whose ids satisfy keep, sharing storage.
func (g *Gauges) Subset(keep func(id int64) bool) *Gauges {
	out := &Gauges{}
	for k, id := range g.IDs {
		if keep(id) {
			out.IDs = append(out.IDs, id)
			out.Obs = append(out.Obs, g.Obs[k])
		}
	}
	return out
}

// Window is the part of a run a loss sees: discharge step t of the routed
// tensor is runoff step Start+t, and the first Warmup steps are left out of
// the loss (the routing state is still filling up).
type Window struct{ Start, Warmup int }

// LossFunc returns the loss of discharge against the gauges, averaged over
// the gauges that have at least two observations in the window, as a
// diffroute.LossFunc. Discharge rows are located by reach id; gauges
// missing from the discharge are an error. Batch member 0 is used (runs
// are single-member).
func (g *Gauges) LossFunc(l Loss, w Window) diffroute.LossFunc {
	return func(y, gy *diffroute.DataTensor) (float64, error) { return g.eval(l, w, y, gy) }
}

// Eval is the loss of LossFunc without its gradient.
func (g *Gauges) Eval(l Loss, w Window, y *diffroute.DataTensor) (float64, error) {
	return g.eval(l, w, y, nil)
}

func (g *Gauges) eval(l Loss, w Window, y, gy *diffroute.DataTensor) (float64, error) {
	rows, err := rowsOf(y.IDs, g.IDs)
	if err != nil {
		return 0, err
	}
	T := y.T
	lo := min(w.Warmup, T)
	n := T - lo
	sim, obs := make([]float64, n), make([]float64, n)
	var grad []float64
	if gy != nil {
		grad = make([]float64, n)
	}
	total, used := 0.0, 0
	for k, row := range rows {
		if w.Start < 0 || w.Start+T > len(g.Obs[k]) {
			return 0, fmt.Errorf("calibrate: window [%d, %d) outside gauge reach %d's %d steps", w.Start, w.Start+T, g.IDs[k], len(g.Obs[k]))
		}
		copy(obs, g.Obs[k][w.Start+lo:w.Start+T])
		for t, v := range y.Series(0, row)[lo:] {
			sim[t] = float64(v)
		}
		v, ok := l.Series(sim, obs, grad)
		if !ok {
			continue
		}
		total += v
		used++
		if gy != nil {
			dst := gy.Series(0, row)[lo:]
			for t, d := range grad {
				dst[t] = float32(d) // scaled by 1/used below
			}
		}
	}
	if used == 0 {
		return 0, nil
	}
	if gy != nil {
		inv := float32(1 / float64(used))
		for _, row := range rows {
			s := gy.Series(0, row)
			for t := range s {
				s[t] *= inv
			}
		}
	}
	return total / float64(used), nil
}

func rowsOf(have, want []int64) ([]int, error) {
	pos := make(map[int64]int, len(want))
	for k, id := range want {
		pos[id] = k
	}
	rows := make([]int, len(want))
	found := 0
	for i, id := range have {
		if k, ok := pos[id]; ok {
			rows[k] = i
			found++
		}
	}
	if found != len(want) {
		for _, id := range want {
			ok := false
			for _, h := range have {
				ok = ok || h == id
			}
			if !ok {
				return nil, fmt.Errorf("calibrate: gauge reach %d is not in the routed discharge", id)
			}
		}
	}
	return rows, nil
}

// Scores returns, per gauge, the loss's score (Loss.Score) of discharge q
// (whose step 0 is runoff step w.Start) over q's steps from w.Warmup on.
func (g *Gauges) Scores(l Loss, q *diffroute.DataTensor, w Window, t1 int) ([]float64, error) {
	rows, err := rowsOf(q.IDs, g.IDs)
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(rows))
	lo := min(w.Warmup, q.T)
	hi := min(t1-w.Start, q.T)
	for k, row := range rows {
		if hi <= lo {
			out[k] = math.NaN()
			continue
		}
		sim := make([]float64, hi-lo)
		for t, v := range q.Series(0, row)[lo:hi] {
			sim[t] = float64(v)
		}
		out[k] = l.Score(sim, g.Obs[k][w.Start+lo:w.Start+hi])
	}
	return out, nil
}
