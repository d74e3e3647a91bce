package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"testing"
)

// TestDeviceMath compares dr_math.h's exp and sincos with Go's math over
// the ranges path spectra use: log magnitudes down to underflow, phases of
// hundreds of radians.
func TestDeviceMath(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var x []float64
	for range 20000 {
		x = append(x, (rng.Float64()-0.5)*2*math.Pow(10, rng.Float64()*4))
	}
	x = append(x, 0, -0, 1e-300, 709, -708, -745.5, 710, -1e4, math.Pi/4, math.Pi/2, math.Pi, 3*math.Pi/2, 1e5)
	ex, sn, cs := Math(x)
	worstE, worstS := 0.0, 0.0
	for i, v := range x {
		we := math.Exp(v)
		if v > 709 && v < 709.78 { // Go's amd64 Exp overflows early here
			we = math.Exp(v-1) * math.E
		}
		var re float64
		switch {
		case math.IsInf(we, 1):
			if !math.IsInf(ex[i], 1) {
				t.Errorf("exp(%g) = %g, want +Inf", v, ex[i])
			}
		case we < 1e-300:
			re = math.Abs(ex[i] - we) // subnormal and underflow: absolute
			if re > 1e-300 {
				t.Errorf("exp(%g) = %g, want %g", v, ex[i], we)
			}
		default:
			re = math.Abs(ex[i]-we) / we
		}
		worstE = max(worstE, re)
		ws, wc := math.Sincos(v)
		worstS = max(worstS, math.Abs(sn[i]-ws), math.Abs(cs[i]-wc))
	}
	t.Logf("%d points: exp %.2g relative, sin/cos %.2g absolute", len(x), worstE, worstS)
	if worstE > 4e-16 || worstS > 1e-13 {
		t.Errorf("exp %.3g relative, sin/cos %.3g absolute: want ≤ 4e-16 and 1e-13", worstE, worstS)
	}
}

// TestMaxFoldMatchesSource keeps MaxFold equal to pairs.cu's DR_MAX_FOLD.
func TestMaxFoldMatchesSource(t *testing.T) {
	src, err := Sources.ReadFile("pairs.cu")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`#define DR_MAX_FOLD (\d+)`).FindSubmatch(src)
	if m == nil || string(m[1]) != fmt.Sprint(MaxFold) {
		t.Fatalf("pairs.cu defines DR_MAX_FOLD %q, MaxFold is %d", m, MaxFold)
	}
}
