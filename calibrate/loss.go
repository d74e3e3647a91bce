package calibrate

import (
	"fmt"
	"math"
	"strings"
)

// Loss names a goodness-of-fit measure turned into a loss to minimise, per
// gauge: each is zero for a perfect fit.
type Loss string

const (
	// NSE is 1 − NSE = Σ(s−o)² / Σ(o−ō)², DiffHydro's loss.
	NSE Loss = "nse"
	// KGE is 1 − KGE = √((r−1)² + (α−1)² + (β−1)²) (Gupta et al., 2009),
	// with r the correlation, α = σs/σo and β = μs/μo.
	KGE Loss = "kge"
	// MSE is the mean squared error, in (m³/s)².
	MSE Loss = "mse"
	// LogNSE is 1 − NSE of log(q + ε), with ε = 1 % of the gauge's mean
	// observed discharge: it weighs low flows as NSE weighs floods.
	LogNSE Loss = "lognse"
)

// Losses lists the losses in the order the CLI documents them.
var Losses = []Loss{NSE, KGE, MSE, LogNSE}

// ParseLoss returns the loss with the given name.
func ParseLoss(s string) (Loss, error) {
	for _, l := range Losses {
		if strings.EqualFold(s, string(l)) {
			return l, nil
		}
	}
	return "", fmt.Errorf("calibrate: unknown loss %q (want nse, kge, mse or lognse)", s)
}

// minValid is the fewest observed values a gauge needs in a window for its
// loss to count (NSE and KGE need a variance).
const minValid = 2

// Series evaluates the loss of simulated discharge sim against observed obs
// (same length; NaN observations are missing and ignored) and, when grad is
// not nil, writes ∂loss/∂sim into grad (zero where obs is missing). ok is
// false when the gauge has fewer than two observations or no variance in
// them: it then has no loss and a zero gradient.
func (l Loss) Series(sim, obs, grad []float64) (loss float64, ok bool) {
	if len(sim) != len(obs) || (grad != nil && len(grad) != len(sim)) {
		panic("calibrate: sim, obs and grad lengths differ")
	}
	if grad != nil {
		clear(grad)
	}
	n, mo := 0, 0.0
	for _, o := range obs {
		if !math.IsNaN(o) {
			n++
			mo += o
		}
	}
	if n < minValid {
		return 0, false
	}
	mo /= float64(n)
	switch l {
	case NSE:
		return nseSeries(sim, obs, grad, mo, 0, false)
	case LogNSE:
		return nseSeries(sim, obs, grad, mo, logEps(mo), true)
	case MSE:
		s := 0.0
		for t, o := range obs {
			if math.IsNaN(o) {
				continue
			}
			d := sim[t] - o
			s += d * d
			if grad != nil {
				grad[t] = 2 * d / float64(n)
			}
		}
		return s / float64(n), true
	case KGE:
		return kgeSeries(sim, obs, grad, n, mo)
	}
	panic(fmt.Sprintf("calibrate: unknown loss %q", string(l)))
}

// logEps is the offset of log-NSE: 1 % of the mean observed discharge (a
// common choice that keeps zero flows finite), at least 1e-6.
func logEps(meanObs float64) float64 { return max(0.01*math.Abs(meanObs), 1e-6) }

// logFloor keeps log(s + ε) finite where a simulation dips below −ε (a
// Muskingum response with C0 < 0 can): below it the loss is flat.
func logFloor(eps float64) float64 { return 1e-3 * eps }

func nseSeries(sim, obs, grad []float64, mo, eps float64, logs bool) (float64, bool) {
	tr := func(v float64) float64 { return v }
	if logs {
		floor := logFloor(eps)
		tr = func(v float64) float64 { return math.Log(max(v+eps, floor)) }
		n := 0
		mo = 0
		for _, o := range obs {
			if !math.IsNaN(o) {
				mo += tr(o)
				n++
			}
		}
		mo /= float64(n)
	}
	den := 0.0
	for _, o := range obs {
		if !math.IsNaN(o) {
			d := tr(o) - mo
			den += d * d
		}
	}
	if !(den > 0) {
		return 0, false
	}
	num := 0.0
	for t, o := range obs {
		if math.IsNaN(o) {
			continue
		}
		d := tr(sim[t]) - tr(o)
		num += d * d
		if grad != nil {
			g := 2 * d / den
			if logs {
				if sim[t]+eps > logFloor(eps) {
					g /= sim[t] + eps
				} else {
					g = 0
				}
			}
			grad[t] = g
		}
	}
	return num / den, true
}

func kgeSeries(sim, obs, grad []float64, n int, mo float64) (float64, bool) {
	fn := float64(n)
	ms := 0.0
	for t, o := range obs {
		if !math.IsNaN(o) {
			ms += sim[t]
		}
	}
	ms /= fn
	var vs, vo, cov float64
	for t, o := range obs {
		if math.IsNaN(o) {
			continue
		}
		ds, do := sim[t]-ms, o-mo
		vs += ds * ds
		vo += do * do
		cov += ds * do
	}
	vs, vo, cov = vs/fn, vo/fn, cov/fn
	if !(vo > 0) || mo == 0 {
		return 0, false
	}
	ss, so := math.Sqrt(vs), math.Sqrt(vo)
	// A constant simulation has no correlation: r = 0, and r's gradient
	// is taken as that of the covariance alone.
	r := 0.0
	if ss > 0 {
		r = cov / (ss * so)
	}
	alpha, beta := ss/so, ms/mo
	ed := math.Sqrt((r-1)*(r-1) + (alpha-1)*(alpha-1) + (beta-1)*(beta-1))
	if grad == nil || ed == 0 {
		return ed, true
	}
	for t, o := range obs {
		if math.IsNaN(o) {
			continue
		}
		ds, do := sim[t]-ms, o-mo
		var dr, da float64
		if ss > 0 {
			// ∂σs/∂s_t = (s_t − μs)/(n σs); ∂cov/∂s_t = (o_t − μo)/n.
			dss := ds / (fn * ss)
			dr = do/(fn*ss*so) - r*dss/ss
			da = dss / so
		} else {
			dr = do / (fn * so * so)
		}
		db := 1 / (fn * mo)
		grad[t] = ((r-1)*dr + (alpha-1)*da + (beta-1)*db) / ed
	}
	return ed, true
}

// Score returns the goodness of fit the loss measures (NSE, KGE, log-NSE:
// 1 − loss; MSE: the loss), or NaN when the gauge has too few observations.
func (l Loss) Score(sim, obs []float64) float64 {
	v, ok := l.Series(sim, obs, nil)
	if !ok {
		return math.NaN()
	}
	if l == MSE {
		return v
	}
	return 1 - v
}
