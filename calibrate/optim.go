package calibrate

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/optimize"
)

// Adam is the Adam optimizer (Kingma and Ba, 2015), DiffHydro's default.
// The zero value uses LR 0.1 (DiffHydro's rate for per-reach calibration),
// β1 0.9, β2 0.999, ε 1e-8.
type Adam struct {
	LR, Beta1, Beta2, Eps float64

	m, v []float64
	t    int
}

// Step moves z against gradient g.
func (a *Adam) Step(z, g []float64) {
	if a.LR == 0 {
		a.LR = 0.1
	}
	if a.Beta1 == 0 {
		a.Beta1 = 0.9
	}
	if a.Beta2 == 0 {
		a.Beta2 = 0.999
	}
	if a.Eps == 0 {
		a.Eps = 1e-8
	}
	if len(a.m) != len(z) {
		a.m, a.v, a.t = make([]float64, len(z)), make([]float64, len(z)), 0
	}
	a.t++
	c1 := 1 - math.Pow(a.Beta1, float64(a.t))
	c2 := 1 - math.Pow(a.Beta2, float64(a.t))
	for k, gk := range g {
		a.m[k] = a.Beta1*a.m[k] + (1-a.Beta1)*gk
		a.v[k] = a.Beta2*a.v[k] + (1-a.Beta2)*gk*gk
		z[k] -= a.LR * (a.m[k] / c1) / (math.Sqrt(a.v[k]/c2) + a.Eps)
	}
}

// errStop ends an L-BFGS run from its recorder (early stopping, or an
// error kept aside).
var errStop = errors.New("calibrate: stop")

// lbfgs minimises f (which writes its gradient) from z0 with gonum's
// L-BFGS for at most iters major iterations, calling onIter with each
// accepted point; onIter returning true stops the run. f's first error
// stops the run and is returned.
func lbfgs(f func(z, grad []float64) (float64, error), z0 []float64, iters int, onIter func(iter int, z []float64, fz float64) (stop bool, err error)) ([]float64, error) {
	var (
		lastX    []float64
		lastF    float64
		lastG    []float64
		firstErr error
	)
	eval := func(x []float64) {
		if lastX != nil && floatsEqual(lastX, x) {
			return
		}
		lastX = append(lastX[:0], x...)
		if lastG == nil {
			lastG = make([]float64, len(x))
		}
		v, err := f(lastX, lastG)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if err != nil {
			v = math.Inf(1)
		}
		lastF = v
	}
	p := optimize.Problem{
		Func: func(x []float64) float64 { eval(x); return lastF },
		Grad: func(g, x []float64) { eval(x); copy(g, lastG) },
		Status: func() (optimize.Status, error) {
			if firstErr != nil {
				return optimize.Failure, firstErr
			}
			return optimize.NotTerminated, nil
		},
	}
	rec := &iterRecorder{on: onIter}
	settings := &optimize.Settings{
		MajorIterations: iters,
		Converger:       &optimize.FunctionConverge{Absolute: 1e-12, Relative: 1e-10, Iterations: 20},
		Recorder:        rec,
	}
	res, err := optimize.Minimize(p, z0, settings, &optimize.LBFGS{})
	if firstErr != nil {
		return nil, firstErr
	}
	if rec.err != nil {
		return nil, rec.err
	}
	if err != nil && !errors.Is(err, errStop) && res == nil {
		return nil, err
	}
	if res == nil {
		return rec.last, nil
	}
	return res.X, nil
}

type iterRecorder struct {
	on   func(int, []float64, float64) (bool, error)
	n    int
	last []float64
	err  error
}

func (r *iterRecorder) Init() error { return nil }

func (r *iterRecorder) Record(loc *optimize.Location, op optimize.Operation, _ *optimize.Stats) error {
	if op != optimize.MajorIteration {
		return nil
	}
	r.n++
	r.last = append(r.last[:0], loc.X...)
	stop, err := r.on(r.n, loc.X, loc.F)
	if err != nil {
		r.err = err
		return errStop
	}
	if stop {
		return errStop
	}
	return nil
}

func floatsEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}
