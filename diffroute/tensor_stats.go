package diffroute

import (
	"fmt"
	"math"
)

// Row returns the row of reach id (an index for Series), or false when x
// has no such reach.
func (x *DataTensor) Row(id int64) (int, bool) {
	for i, v := range x.IDs {
		if v == id {
			return i, true
		}
	}
	return 0, false
}

// SeriesOf returns the series of reach id for batch member b, sharing
// storage with x.
func (x *DataTensor) SeriesOf(b int, id int64) ([]float32, error) {
	i, ok := x.Row(id)
	if !ok {
		return nil, fmt.Errorf("diffroute: no reach %d in %s", id, x)
	}
	if b < 0 || b >= x.B {
		return nil, fmt.Errorf("diffroute: batch member %d out of range [0, %d)", b, x.B)
	}
	return x.Series(b, i), nil
}

// SeriesStats summarises one series: its peak and the step it occurs at
// (the first, when repeated), sum and mean. NaN values are skipped.
type SeriesStats struct {
	Peak      float64
	PeakStep  int
	Sum, Mean float64
	Count     int // values that were not NaN
}

// Stats summarises series s.
func Stats(s []float32) SeriesStats {
	st := SeriesStats{Peak: math.Inf(-1), PeakStep: -1}
	for t, v := range s {
		if math.IsNaN(float64(v)) {
			continue
		}
		if float64(v) > st.Peak {
			st.Peak, st.PeakStep = float64(v), t
		}
		st.Sum += float64(v)
		st.Count++
	}
	if st.Count > 0 {
		st.Mean = st.Sum / float64(st.Count)
	} else {
		st.Peak = math.NaN()
	}
	return st
}

// NSE is the Nash–Sutcliffe efficiency of sim against obs:
// 1 − Σ(sim−obs)² / Σ(obs−mean(obs))². 1 is a perfect match, 0 no better
// than the mean of obs. Steps where obs is NaN are skipped; NaN when fewer
// than two steps remain or obs is constant. sim and obs must have the same
// length (a programmer error otherwise).
func NSE(sim, obs []float32) float64 {
	if len(sim) != len(obs) {
		panic(fmt.Sprintf("diffroute: NSE of series of lengths %d and %d", len(sim), len(obs)))
	}
	mo := Stats(obs)
	if mo.Count < 2 {
		return math.NaN()
	}
	var num, den float64
	for t, o := range obs {
		if math.IsNaN(float64(o)) {
			continue
		}
		e := float64(sim[t]) - float64(o)
		d := float64(o) - mo.Mean
		num += e * e
		den += d * d
	}
	if den == 0 {
		return math.NaN()
	}
	return 1 - num/den
}

// KGE is the Kling–Gupta efficiency of sim against obs (Gupta et al. 2009):
// 1 − √((r−1)² + (α−1)² + (β−1)²) with r the correlation, α the ratio of
// standard deviations and β the ratio of means. Steps where obs is NaN are
// skipped; NaN when fewer than two remain or either series is constant.
func KGE(sim, obs []float32) float64 {
	if len(sim) != len(obs) {
		panic(fmt.Sprintf("diffroute: KGE of series of lengths %d and %d", len(sim), len(obs)))
	}
	var n, ms, mo float64
	for t, o := range obs {
		if !math.IsNaN(float64(o)) {
			n++
			ms += float64(sim[t])
			mo += float64(o)
		}
	}
	if n < 2 {
		return math.NaN()
	}
	ms, mo = ms/n, mo/n
	var vs, vo, cov float64
	for t, o := range obs {
		if math.IsNaN(float64(o)) {
			continue
		}
		ds, do := float64(sim[t])-ms, float64(o)-mo
		vs += ds * ds
		vo += do * do
		cov += ds * do
	}
	if vs == 0 || vo == 0 || mo == 0 {
		return math.NaN()
	}
	r := cov / math.Sqrt(vs*vo)
	alpha := math.Sqrt(vs / vo)
	beta := ms / mo
	return 1 - math.Sqrt((r-1)*(r-1)+(alpha-1)*(alpha-1)+(beta-1)*(beta-1))
}
