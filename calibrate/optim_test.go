package calibrate

import (
	"math"
	"testing"
)

// rosenbrock in n dimensions, with its gradient.
func rosenbrock(z, g []float64) float64 {
	f := 0.0
	clear(g)
	for i := 0; i+1 < len(z); i++ {
		a, b := 1-z[i], z[i+1]-z[i]*z[i]
		f += a*a + 100*b*b
		g[i] += -2*a - 400*z[i]*b
		g[i+1] += 200 * b
	}
	return f
}

func TestAdamQuadratic(t *testing.T) {
	z := []float64{3, -2, 0.5}
	want := []float64{1, 2, -1}
	a := &Adam{LR: 0.05}
	g := make([]float64, 3)
	for range 2000 {
		for k := range z {
			g[k] = 2 * float64(k+1) * (z[k] - want[k])
		}
		a.Step(z, g)
	}
	for k := range z {
		if math.Abs(z[k]-want[k]) > 1e-3 {
			t.Errorf("z[%d] = %v, want %v", k, z[k], want[k])
		}
	}
}

func TestLBFGSRosenbrock(t *testing.T) {
	z0 := []float64{-1.2, 1, -1.2, 1}
	iters := 0
	z, err := lbfgs(func(z, g []float64) (float64, error) { return rosenbrock(z, g), nil }, z0, 500,
		func(int, []float64, float64) (bool, error) { iters++; return false, nil })
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range z {
		if math.Abs(v-1) > 1e-5 {
			t.Errorf("z[%d] = %v, want 1 (after %d iterations)", k, v, iters)
		}
	}
	// Stopping from the callback ends the run at that iteration.
	n := 0
	_, err = lbfgs(func(z, g []float64) (float64, error) { return rosenbrock(z, g), nil }, z0, 500,
		func(int, []float64, float64) (bool, error) { n++; return n == 3, nil })
	if err != nil || n != 3 {
		t.Errorf("stopped after %d iterations, err %v", n, err)
	}
}
