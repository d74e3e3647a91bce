package diffroute

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"
)

func TestCasc8KernelLayout(t *testing.T) {
	var k casc8Kernel
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{
		{"secs", unsafe.Offsetof(k.secs), 32}, {"ring", unsafe.Offsetof(k.ring), 40}, {"nq", unsafe.Offsetof(k.nq), 48},
		{"nsec", unsafe.Offsetof(k.nsec), 64}, {"tileBytes", unsafe.Offsetof(k.tileBytes), 80}, {"add", unsafe.Offsetof(k.add), 88},
		{"wsum", unsafe.Offsetof(k.wsum), 96}, {"wprev", unsafe.Offsetof(k.wprev), 112}, {"tile", unsafe.Offsetof(k.tile), 120},
		{"ntiles", unsafe.Offsetof(k.ntiles), 128},
	} {
		if c.got != c.off {
			t.Errorf("casc8Kernel.%s at offset %d, the assembly reads %d", c.name, c.got, c.off)
		}
	}
}

// TestNashCascadeVectorMatchesScalar checks the one-pass cascade kernel
// (sections without an inflow-lag term, as Nash's) against runCascade for
// every lateral rule and averaging (sampling at the start excepted: the
// vector kernels refuse it), adding and storing, 2 to 17 sections (the
// longest section after section), one to twelve vectors a step, tiles of
// one step to whole chunks (partial last tiles included), and the state
// carried across chunks of 1, 2 and more steps.
func TestNashCascadeVectorMatchesScalar(t *testing.T) {
	if !useSectionAVX512 {
		t.Skip("no AVX-512 here: the one-pass cascade kernel does not run")
	}
	defer func(old int) { cascadeTileSubsteps = old }(cascadeTileSubsteps)
	for _, ts := range []int{8, 128, 1000} {
		cascadeTileSubsteps = ts
		testNashCascadeVector(t)
	}
}

func testNashCascadeVector(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 77))
	for _, f := range []int{8, 24, 96} {
		const steps = 23
		lat := make([]float32, steps)
		inflow := make([]float32, steps*f)
		for k := range lat {
			lat[k] = float32(rng.Float64() * 3)
		}
		for k := range inflow {
			inflow[k] = float32(rng.Float64() * 10)
		}
		for _, ns := range []int{2, 3, 4, 5, 9, cascadeMaxSections, cascadeMaxSections + 1} {
			secs := make([]Section, ns)
			for k := range secs {
				a := 0.05 + 0.9*rng.Float64()
				secs[k] = Section{B0: a, A1: 1 - a}
			}
			for trial, p := range []reachParams{{f: f}, {f: f, rapid: true}, {f: f, start: true}, {f: f, sample: true}, {f: f, rapid: true, start: true}, {f: f, rapid: true, sample: true}} {
				add := trial%2 == 0
				run := func(vec bool) ([]float32, []float32, []float64, [2]float64) {
					ys := make([]float64, ns)
					for k := range ys {
						ys[k] = float64(k) + 0.5
					}
					up, lp := 1.25, 0.75
					out := make([]float32, steps)
					dst := make([]float32, steps*f)
					for k := range dst {
						switch {
						case add:
							dst[k] = float32(k % 3)
						case vec:
							dst[k] = float32(math.NaN())
						}
					}
					wk := &recWorker{}
					for _, c := range [][2]int{{0, 1}, {1, 3}, {3, 4}, {4, steps}} {
						in, l, d, o := inflow[c[0]*f:c[1]*f], lat[c[0]:c[1]], dst[c[0]*f:c[1]*f], out[c[0]:c[1]]
						if vec {
							if !wk.runCascadeVector(p, secs, ys, &up, &lp, in, l, d, o, add) {
								t.Fatalf("vector cascade refused %+v", p)
							}
						} else {
							runCascade(p, secs, ys, &up, &lp, in, l, d, o)
						}
					}
					return out, dst, ys, [2]float64{up, lp}
				}
				wo, wd, wy, ws := run(false)
				gout, gd, gy, gs := run(true)
				close := func(a, b float64) bool { return math.Abs(a-b) <= 4e-7*math.Abs(b)+1e-30 }
				for q := range wo {
					if !close(float64(gout[q]), float64(wo[q])) {
						t.Fatalf("tiles of %d sub-steps, f=%d %d sections %+v: out[%d] = %v, scalar %v", cascadeTileSubsteps, f, ns, p, q, gout[q], wo[q])
					}
				}
				for n := range wd {
					if !close(float64(gd[n]), float64(wd[n])) {
						t.Fatalf("tiles of %d sub-steps, f=%d %d sections %+v: dst[%d] = %v, scalar %v", cascadeTileSubsteps, f, ns, p, n, gd[n], wd[n])
					}
				}
				for k := range wy {
					if !close(gy[k], wy[k]) {
						t.Fatalf("tiles of %d sub-steps, f=%d %d sections %+v: state %v, scalar %v", cascadeTileSubsteps, f, ns, p, gy, wy)
					}
				}
				if gs != ws {
					t.Fatalf("tiles of %d sub-steps, f=%d %d sections %+v: inflow state %v, scalar %v", cascadeTileSubsteps, f, ns, p, gs, ws)
				}
			}
		}
	}
}
