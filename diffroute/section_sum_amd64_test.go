package diffroute

import (
	"math"
	"testing"
)

// TestSectionSum64MatchesAddSeries checks the kernel that adds a
// junction's two inflows itself against addSeries and the one-inflow
// kernel: the same values to the bit (one rounding of the same sum), with
// the state carried over several calls, both lateral rules, the runoff and
// reported values in either precision or none reported, the sum kept or not.
func TestSectionSum64MatchesAddSeries(t *testing.T) {
	const steps, f, calls = 7, 24, 3
	if !sumVector64(f) {
		t.Skip("no eight-wide kernel here: the tiled passes add junction inflows with addSeries")
	}
	s := Section{B0: 0.21, B1: 0.33, A1: 0.46}
	fl := steps * f
	in1, in2 := make([]float64, calls*fl), make([]float64, calls*fl)
	for k := range in1 {
		in1[k] = 1 + math.Sin(float64(k)*0.37)
		in2[k] = 0.3 + math.Cos(float64(k)*0.11)/7
	}
	lat64, lat32 := make([]float64, calls*steps), make([]float32, calls*steps)
	for k := range lat64 {
		lat32[k] = float32(0.5 + 0.4*math.Cos(float64(k)))
		lat64[k] = float64(lat32[k])
	}
	type result struct {
		dst, usum, out []float64
		y, up, lp      float64
	}
	run := func(fused, rapid, l64, keep bool, outKind int, w [3]float64) result {
		r := result{dst: make([]float64, calls*fl), usum: make([]float64, calls*fl), out: make([]float64, calls*steps), y: 0.7, up: 0.9, lp: 0.2}
		out32 := make([]float32, calls*steps)
		for c := range calls {
			lat := mixedSeries{s32: lat32[c*steps : (c+1)*steps]}
			if l64 {
				lat = mixedSeries{s64: lat64[c*steps : (c+1)*steps]}
			}
			var out mixedSeries
			switch outKind {
			case 1:
				out = mixedSeries{s32: out32[c*steps : (c+1)*steps]}
			case 2:
				out = mixedSeries{s64: r.out[c*steps : (c+1)*steps]}
			}
			a, b := in1[c*fl:(c+1)*fl], in2[c*fl:(c+1)*fl]
			dst, usum := r.dst[c*fl:(c+1)*fl], r.usum[c*fl:(c+1)*fl]
			if !fused {
				addSeries(usum, a, b)
				if !sectionVector64(s, f, rapid, w, &r.y, &r.up, &r.lp, usum, dst, lat, out) {
					t.Fatal("sectionVector64 did not run")
				}
				continue
			}
			if !keep {
				usum = nil
			}
			if !sectionSum64(s, f, rapid, w, &r.y, &r.up, &r.lp, a, b, usum, dst, lat, out) {
				t.Fatal("sectionSum64 did not run")
			}
		}
		if outKind == 1 {
			for k, v := range out32 {
				r.out[k] = float64(v)
			}
		}
		return r
	}
	same := func(what string, got, want []float64) {
		t.Helper()
		for k := range want {
			if math.Float64bits(got[k]) != math.Float64bits(want[k]) {
				t.Fatalf("%s[%d] = %v, addSeries and one inflow %v", what, k, got[k], want[k])
			}
		}
	}
	for _, rapid := range []bool{false, true} {
		for _, l64 := range []bool{false, true} {
			for outKind := range 3 {
				for _, keep := range []bool{false, true} {
					w := [3]float64{1.0 / f, -1.0 / f, 1.0 / f}
					got, want := run(true, rapid, l64, keep, outKind, w), run(false, rapid, l64, keep, outKind, w)
					if got.y != want.y || got.up != want.up || got.lp != want.lp {
						t.Fatalf("rapid %v lat64 %v out %d keep %v: state %v %v %v, want %v %v %v", rapid, l64, outKind, keep, got.y, got.up, got.lp, want.y, want.up, want.lp)
					}
					same("dst", got.dst, want.dst)
					if outKind > 0 {
						same("out", got.out, want.out)
					}
					if keep {
						same("usum", got.usum, want.usum)
					}
				}
			}
		}
	}
}
