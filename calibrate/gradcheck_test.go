package calibrate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// checkGrad compares an analytic gradient g of f at x with central
// differences (step 1e-6·max(|x_k|, scale)), returning an error when the
// largest difference exceeds tol times the largest gradient component.
func checkGrad(f func(x []float64) float64, x, g []float64, scale, tol float64) error {
	fd := make([]float64, len(x))
	top := 0.0
	for k := range x {
		h := 1e-6 * max(math.Abs(x[k]), scale)
		old := x[k]
		x[k] = old + h
		fp := f(x)
		x[k] = old - h
		fm := f(x)
		x[k] = old
		fd[k] = (fp - fm) / (2 * h)
		top = max(top, math.Abs(fd[k]))
	}
	if top == 0 {
		return fmt.Errorf("finite-difference gradient is zero: nothing is checked")
	}
	worst, at := 0.0, -1
	for k := range x {
		if d := math.Abs(g[k] - fd[k]); d > worst {
			worst, at = d, k
		}
	}
	if worst > tol*top {
		return fmt.Errorf("gradient[%d] = %.12g, finite differences %.12g (rel. error %.3g > %.1g)", at, g[at], fd[at], worst/top, tol)
	}
	return nil
}

// series draws a positive hydrograph-like observation with some missing
// values, and a simulation near it.
func series(rng *rand.Rand, n int) (sim, obs []float64) {
	sim, obs = make([]float64, n), make([]float64, n)
	v := 5.0
	for t := range obs {
		v = 0.8*v + 1 + 4*rng.ExpFloat64()*float64(rng.IntN(4)/3)
		obs[t] = v
		sim[t] = v * (0.7 + 0.6*rng.Float64())
		if rng.IntN(7) == 0 {
			obs[t] = math.NaN()
		}
	}
	return sim, obs
}

func TestLossGradients(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range Losses {
		for trial := range 3 {
			sim, obs := series(rng, 40+trial*13)
			g := make([]float64, len(sim))
			if _, ok := l.Series(sim, obs, g); !ok {
				t.Fatalf("%s: no loss", l)
			}
			f := func(s []float64) float64 { v, _ := l.Series(s, obs, nil); return v }
			if err := checkGrad(f, sim, g, 1, 1e-6); err != nil {
				t.Errorf("%s trial %d: %v", l, trial, err)
			}
			for k, o := range obs {
				if math.IsNaN(o) && g[k] != 0 {
					t.Errorf("%s: gradient %v at a missing observation", l, g[k])
				}
			}
		}
	}
}

// A planted error (one gradient component off by 1e-4 relative) must fail
// the check: the check can see what it is there to see.
func TestGradCheckSeesPlantedError(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sim, obs := series(rng, 50)
	g := make([]float64, len(sim))
	NSE.Series(sim, obs, g)
	k := 0
	for math.IsNaN(obs[k]) {
		k++
	}
	g[k] *= 1 + 1e-4
	f := func(s []float64) float64 { v, _ := NSE.Series(s, obs, nil); return v }
	if err := checkGrad(f, sim, g, 1, 1e-6); err == nil {
		t.Fatal("a wrong gradient passed the finite-difference check")
	}
}

// Reference values computed by explicit formulas, independent of the
// loss code: NSE, KGE (Gupta 2009) and MSE of a small series.
func TestLossValues(t *testing.T) {
	obs := []float64{1, 2, 3, math.NaN(), 5}
	sim := []float64{1.5, 2, 2, 100, 6}
	// Valid pairs: (1,1.5) (2,2) (3,2) (5,6); mean obs 2.75.
	num := 0.25 + 0 + 1 + 1
	den := 1.75*1.75 + 0.75*0.75 + 0.25*0.25 + 2.25*2.25
	if got, want := NSE.Score(sim, obs), 1-num/den; math.Abs(got-want) > 1e-14 {
		t.Errorf("NSE = %v, want %v", got, want)
	}
	if got, want := MSE.Score(sim, obs), num/4; math.Abs(got-want) > 1e-14 {
		t.Errorf("MSE = %v, want %v", got, want)
	}
	s, o := []float64{1.5, 2, 2, 6}, []float64{1, 2, 3, 5}
	ms, mo := 11.5/4, 11.0/4
	var vs, vo, c float64
	for i := range s {
		vs += (s[i] - ms) * (s[i] - ms) / 4
		vo += (o[i] - mo) * (o[i] - mo) / 4
		c += (s[i] - ms) * (o[i] - mo) / 4
	}
	r := c / math.Sqrt(vs*vo)
	kge := 1 - math.Sqrt((r-1)*(r-1)+(math.Sqrt(vs/vo)-1)*(math.Sqrt(vs/vo)-1)+(ms/mo-1)*(ms/mo-1))
	if got := KGE.Score(sim, obs); math.Abs(got-kge) > 1e-14 {
		t.Errorf("KGE = %v, want %v", got, kge)
	}
	if got := NSE.Score(obs, obs); got != 1 {
		t.Errorf("NSE of a perfect fit = %v", got)
	}
	if got := KGE.Score(obs, obs); got != 1 {
		t.Errorf("KGE of a perfect fit = %v", got)
	}
	if _, ok := NSE.Series([]float64{1, 2}, []float64{math.NaN(), 3}, nil); ok {
		t.Error("a gauge with one observation has a loss")
	}
	if _, ok := NSE.Series([]float64{1, 2}, []float64{3, 3}, nil); ok {
		t.Error("a gauge with constant observations has an NSE")
	}
}

func TestTransforms(t *testing.T) {
	for _, tr := range []Transform{Sigmoid{0.5, 24}, Sigmoid{0, 0.5}, Exp{0}, Exp{0.2}} {
		for _, u := range []float64{-30, -3, -0.4, 0, 0.7, 5, 30} {
			th, d := tr.Param(u)
			f := func(x []float64) float64 { v, _ := tr.Param(x[0]); return v }
			if d > 1e-9 {
				if err := checkGrad(f, []float64{u}, []float64{d}, 1, 1e-6); err != nil {
					t.Errorf("%v at %v: %v", tr, u, err)
				}
			}
			if math.Abs(u) < 10 {
				back, err := tr.Free(th)
				if err != nil || math.Abs(back-u) > 1e-8*max(1, math.Abs(u)) {
					t.Errorf("%v: Free(Param(%v)) = %v, %v", tr, u, back, err)
				}
			}
		}
	}
	if _, err := (Sigmoid{1, 2}).Free(3); err == nil {
		t.Error("a value above the bounds has a free variable")
	}
	if _, err := (Exp{0}).Free(0); err == nil {
		t.Error("zero has a log")
	}
}

func TestParseBounds(t *testing.T) {
	b, err := ParseBounds("k=1800:86400, x=0:0.5", []string{"k", "x"}, map[string]float64{"k": 1.0 / 3600})
	if err != nil {
		t.Fatal(err)
	}
	if b["k"] != (Sigmoid{0.5, 24}) || b["x"] != (Sigmoid{0, 0.5}) {
		t.Errorf("bounds = %v", b)
	}
	if b, err := ParseBounds("k=0:inf", []string{"k"}, nil); err != nil || b["k"] != (Exp{0}) {
		t.Errorf("k=0:inf gives %v, %v", b, err)
	}
	for _, bad := range []string{"k=5:5", "k=6:2", "k=a:3", "k", "k=1:2:3", "q=0:1", "k=0:1,k=0:2", "k=nan:1"} {
		if _, err := ParseBounds(bad, []string{"k", "x"}, nil); err == nil {
			t.Errorf("bounds %q accepted", bad)
		}
	}
}
