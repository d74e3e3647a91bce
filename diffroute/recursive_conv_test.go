package diffroute

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// refConv is the plain causal convolution the kernels must reproduce:
// y[n] = Σ_k taps[k]·ext[h+n−idx[k]], with the bound Σ_k |taps[k]·ext[…]|
// that scales its rounding error.
func refConv(taps []float64, idx []int32, ext []float64, h, n int) (y, bound float64) {
	for k, c := range taps {
		v := c * ext[h+n-int(idx[k])]
		y += v
		bound += math.Abs(v)
	}
	return y, bound
}

// rawTaps is an IRF as the router's constructor sees it (taps at ascending
// positions idx) next to the form the kernels use: the reference always
// works from the former.
type rawTaps struct {
	taps []float64
	idx  []int32
	c    convTaps
}

// randomTaps draws an IRF over a window of w fine steps: contiguous taps
// (gather-free kernel) at a random offset, or sparse ones (gather kernel).
func randomTaps(rng *rand.Rand, w int, contiguous bool) rawTaps {
	var taps []float64
	var idx []int32
	if contiguous {
		l := 1 + rng.IntN(w)
		lo := rng.IntN(w - l + 1)
		for k := 0; k < l; k++ {
			idx = append(idx, int32(lo+k))
			taps = append(taps, rng.Float64()-0.2)
		}
	} else {
		for k := 0; k < w; k++ {
			if rng.IntN(5) == 0 {
				idx = append(idx, int32(k))
				taps = append(taps, rng.Float64()-0.2)
			}
		}
		if len(idx) < 2 || int(idx[len(idx)-1])-int(idx[0]) == len(idx)-1 {
			idx = []int32{0, int32(w - 1)} // force a gap
			taps = []float64{0.3, 0.7}
		}
	}
	return rawTaps{taps: taps, idx: idx, c: newConvTaps(slices.Clone(taps), slices.Clone(idx))}
}

// checkConv compares y with the reference convolution over ext.
func checkConv(t *testing.T, what string, r rawTaps, ext []float64, h int, y []float64) {
	t.Helper()
	for n, v := range y {
		want, bound := refConv(r.taps, r.idx, ext, h, n)
		if math.Abs(v-want) > 1e-12*bound || (bound == 0 && v != 0) {
			t.Fatalf("%s: y[%d] = %.17g, reference %.17g", what, n, v, want)
		}
	}
}

// The convolution kernels against a plain loop, on random taps (contiguous
// and sparse, lengths 1 … W) and inflows, for chunks of every short length
// (all lane/tail splits) and long ones.
func TestConvFineMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, w := range []int{1, 2, 3, 5, 8, 17, 40, 96, 384} {
		h := w - 1
		for trial := 0; trial < 12; trial++ {
			contiguous := trial%3 != 0 || w < 3 // a gap needs three positions
			r := randomTaps(rng, w, contiguous)
			if r.c.dense != contiguous {
				t.Fatalf("w=%d: contiguous=%v but dense=%v (idx %v)", w, contiguous, r.c.dense, r.idx)
			}
			lengths := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 100, 150, 263, 1003}
			for _, fl := range lengths {
				ext := make([]float64, h+fl)
				for k := range ext {
					ext[k] = rng.Float64()*10 - 1
				}
				y := make([]float64, fl)
				for k := range y {
					y[k] = math.NaN() // every output must be written
				}
				convFine(r.c, ext, h, y, nil)
				checkConv(t, fmt.Sprintf("w=%d L=%d contiguous=%v fl=%d", w, len(r.taps), contiguous, fl), r, ext, h, y)
			}
		}
	}
	// Taps of every length from 1 to 40 at the end of the window (the
	// largest offset the router allows) for the unrolled kernel's tails.
	for l := 1; l <= 40; l++ {
		h := 47
		taps := make([]float64, l)
		idx := make([]int32, l)
		for k := range taps {
			taps[k], idx[k] = rng.Float64(), int32(h-l+1+k)
		}
		r := rawTaps{taps: taps, idx: idx, c: newConvTaps(slices.Clone(taps), slices.Clone(idx))}
		ext := make([]float64, h+37)
		for k := range ext {
			ext[k] = rng.Float64()
		}
		y := make([]float64, 37)
		convFine(r.c, ext, h, y, nil)
		checkConv(t, fmt.Sprintf("l=%d at end", l), r, ext, h, y)
	}
}

// Routing a series in chunks, carrying the last W−1 inflows as convolve
// does, must give bit-identical outflows to routing it whole, and both must
// match the reference over the whole series.
func TestConvFineChunksEqualWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for _, w := range []int{3, 24, 384} {
		for _, contiguous := range []bool{true, false} {
			r := randomTaps(rng, w, contiguous)
			c := r.c
			h := w - 1
			total := 2000
			series := make([]float64, h+total) // h values of history, then the series
			for k := range series {
				series[k] = rng.Float64() * 100
			}
			whole := make([]float64, total)
			convFine(c, series, h, whole, nil)
			checkConv(t, fmt.Sprintf("w=%d whole", w), r, series, h, whole)

			hist := append([]float64(nil), series[:h]...)
			var got []float64
			for pos := 0; pos < total; {
				fl := min(total-pos, []int{1, 2, 3, 5, 24, 7, 130, 4}[rng.IntN(8)])
				ext := append(append([]float64(nil), hist...), series[h+pos:h+pos+fl]...)
				y := make([]float64, fl)
				convFine(c, ext, h, y, nil)
				got = append(got, y...)
				copy(hist, ext[fl:])
				pos += fl
			}
			for n := range whole {
				if got[n] != whole[n] {
					t.Fatalf("w=%d contiguous=%v: chunked y[%d] = %.17g, whole %.17g", w, contiguous, n, got[n], whole[n])
				}
			}
		}
	}
}

// convolve (inflow assembly, history, step aggregation, dst) in chunks
// equals one whole call bit for bit.
func TestConvolveChunksEqualWhole(t *testing.T) {
	for _, f := range []int{4, 24} { // scalar and (f a multiple of 8) vector loads
		for _, headwater := range []bool{false, true} {
			t.Run(fmt.Sprintf("f=%d/headwater=%v", f, headwater), func(t *testing.T) {
				testConvolveChunksEqualWhole(t, f, headwater)
			})
		}
	}
}

func testConvolveChunksEqualWhole(t *testing.T, f int, headwater bool) {
	rng := rand.New(rand.NewPCG(9, uint64(f)))
	w := 32
	r := randomTaps(rng, w, true)
	c := r.c
	steps := 60
	lat := make([]float32, steps)
	inflow := make([]float32, steps*f)
	for k := range lat {
		lat[k] = float32(rng.Float64())
	}
	for k := range inflow {
		inflow[k] = float32(rng.Float64() * 5)
		if headwater {
			inflow[k] = 0
		}
	}
	for _, p := range []reachParams{{f: f}, {f: f, start: true}, {f: f, sample: true}, {f: f, sample: true, start: true}} {
		run := func(cuts []int, add bool) ([]float32, []float32) {
			wk := &recWorker{}
			hist := make([]float64, w-1)
			yLast := 0.0
			out := make([]float32, steps)
			dst := make([]float32, steps*f)
			for k := range dst {
				if !add {
					dst[k] = float32(math.NaN()) // must be overwritten
				}
			}
			for k := 0; k+1 < len(cuts); k++ {
				a, b := cuts[k], cuts[k+1]
				in := inflow[a*f : b*f]
				if headwater {
					in = nil
				}
				wk.convolve(p, c, hist, &yLast, in, lat[a:b], dst[a*f:b*f], out[a:b], add)
			}
			return out, dst
		}
		wantOut, wantDst := run([]int{0, steps}, true)
		gotOut, gotDst := run([]int{0, 1, 2, 9, 10, 33, steps}, true)
		storeOut, storeDst := run([]int{0, 7, steps}, false)
		{
			// An outlet: no downstream inflow to write.
			wk := &recWorker{}
			hist := make([]float64, w-1)
			yLast := 0.0
			out := make([]float32, steps)
			var in []float32
			if !headwater {
				in = inflow
			}
			wk.convolve(p, c, hist, &yLast, in, lat, nil, out, false)
			for k := range wantOut {
				if out[k] != wantOut[k] {
					t.Fatalf("%+v: out[%d] without dst %v, with %v", p, k, out[k], wantOut[k])
				}
			}
		}
		for k := range wantOut {
			if storeOut[k] != wantOut[k] {
				t.Fatalf("%+v: out[%d] storing %v adding %v", p, k, storeOut[k], wantOut[k])
			}
		}
		for k := range wantDst {
			if storeDst[k] != wantDst[k] {
				t.Fatalf("%+v: dst[%d] storing %v adding %v", p, k, storeDst[k], wantDst[k])
			}
		}
		for k := range wantOut {
			if gotOut[k] != wantOut[k] {
				t.Fatalf("%+v: out[%d] chunked %v whole %v", p, k, gotOut[k], wantOut[k])
			}
		}
		for k := range wantDst {
			if gotDst[k] != wantDst[k] {
				t.Fatalf("%+v: dst[%d] chunked %v whole %v", p, k, gotDst[k], wantDst[k])
			}
		}
		// The whole call against a direct evaluation.
		ext := make([]float64, w-1+steps*f)
		for n := range inflow {
			ext[w-1+n] = float64(inflow[n]) + float64(lat[n/f])
		}
		ref := make([]float64, steps*f)
		for n := range wantDst {
			want, bound := refConv(r.taps, r.idx, ext, w-1, n)
			if math.Abs(float64(wantDst[n])-want) > 1e-6*bound+1e-30 {
				t.Fatalf("%+v: dst[%d] = %v, reference %v", p, n, wantDst[n], want)
			}
			ref[n] = want
		}
		// Each step's reported value from the reference outflows: the mean
		// of the values at the sub-steps' ends or starts, or the last one
		// (at the start: the one before it).
		prevLast := 0.0
		for q := range steps {
			seg := ref[q*f : q*f+f]
			var want float64
			switch {
			case p.sample && p.start:
				want = seg[f-2]
			case p.sample:
				want = seg[f-1]
			case p.start:
				want = prevLast
				for _, v := range seg[:f-1] {
					want += v
				}
				want /= float64(f)
			default:
				for _, v := range seg {
					want += v
				}
				want /= float64(f)
			}
			if math.Abs(float64(wantOut[q])-want) > 1e-6*math.Abs(want)+1e-30 {
				t.Fatalf("%+v: out[%d] = %v, reference %v", p, q, wantOut[q], want)
			}
			prevLast = seg[f-1]
		}
	}
}

// runCascade2 and runCascade3 do runCascade's arithmetic in the same
// order, so they must agree with it bit for bit, under every rule.
func TestCascadeSpecialisationsEqualGeneric(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	f, steps := 5, 23
	lat := make([]float32, steps)
	inflow := make([]float32, steps*f)
	for k := range lat {
		lat[k] = float32(rng.Float64() * 3)
	}
	for k := range inflow {
		inflow[k] = float32(rng.Float64() * 10)
	}
	for _, ns := range []int{2, 3} {
		secs := make([]Section, ns)
		for k := range secs {
			secs[k] = Section{B0: rng.Float64() * 0.5, B1: rng.Float64() * 0.3, A1: rng.Float64() * 0.6}
		}
		for _, p := range []reachParams{{f: f}, {f: f, rapid: true}, {f: f, start: true}, {f: f, sample: true}, {f: f, sample: true, start: true}} {
			run := func(fn func(reachParams, []Section, []float64, *float64, *float64, []float32, []float32, []float32, []float32)) ([]float32, []float32, []float64, [2]float64) {
				ys := make([]float64, ns)
				for k := range ys {
					ys[k] = float64(k) + 0.5
				}
				up, lp := 1.25, 0.75
				out := make([]float32, steps)
				dst := make([]float32, steps*f)
				for k := range dst {
					dst[k] = float32(k % 3) // dst accumulates
				}
				// Two calls: state must carry.
				fn(p, secs, ys, &up, &lp, inflow[:7*f], lat[:7], dst[:7*f], out[:7])
				fn(p, secs, ys, &up, &lp, inflow[7*f:], lat[7:], dst[7*f:], out[7:])
				return out, dst, ys, [2]float64{up, lp}
			}
			special := runCascade2
			if ns == 3 {
				special = runCascade3
			}
			wo, wd, wy, ws := run(runCascade)
			go_, gd, gy, gs := run(special)
			if !slices.Equal(go_, wo) || !slices.Equal(gd, wd) || !slices.Equal(gy, wy) || gs != ws {
				t.Fatalf("%d sections %+v: specialised cascade differs from the generic loop", ns, p)
			}
		}
	}
}

// Nash cascades of 1 … 5 sections (and fractional ones, routed by dense
// convolution) mixed in one network, against the reference loop; headwaters
// (zero inflow buffer) and outlets (sink buffer) of every length occur.
func TestCascadeLengthsMatchReference(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(400, 5)
	x := SyntheticRunoff(net, 1, 30, 2)
	p := testParams("nash_cascade", net.Len(), 3)
	ns := make([]float64, net.Len())
	for i := range ns {
		ns[i] = []float64{1, 2, 3, 4, 5, 2.5}[i%6]
	}
	p["n"] = ns
	for _, lat := range []LateralRule{LateralRAPID, LateralLTI} {
		f := 3
		opts := Options{IRF: "nash_cascade", Params: p, SubSteps: f, Lateral: lat, Average: AverageEnd, Sampling: SampleAvg, MaxDelay: 12, Workers: 2}
		rr, err := NewRecursiveRouter(context.Background(), net, opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rr.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		irf, _ := LookupIRF("nash_cascade")
		want := referenceRoute(t, net, x, irf, p, refOpts{f: f, rapid: lat == LateralRAPID, useSections: true, w: 12 * f})
		if e := maxRelErr(t, got, want); e > 2e-6 {
			t.Errorf("%s: max rel err %.3g", lat, e)
		}
	}
}

func BenchmarkConvFine(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range []int{2, 24, 190, 383} {
		taps := make([]float64, l)
		idx := make([]int32, l)
		for k := range taps {
			taps[k], idx[k] = rng.Float64(), int32(k)
		}
		dense := newConvTaps(taps, idx)
		sparse := convTaps{taps: taps, idx: idx} // same taps through the gather kernel
		h, fl := 383, 4080
		ext := make([]float64, h+fl)
		for k := range ext {
			ext[k] = rng.Float64()
		}
		y := make([]float64, fl)
		for _, v := range []struct {
			name string
			c    convTaps
		}{{"dense", dense}, {"gather", sparse}} {
			b.Run(fmt.Sprintf("%s/L%d", v.name, l), func(b *testing.B) {
				for b.Loop() {
					convFine(v.c, ext, h, y, nil)
				}
				b.ReportMetric(float64(fl)*float64(b.N)/b.Elapsed().Seconds()/1e6, "M-out/s")
			})
		}
	}
}

// The vector section kernel evaluates runSection's recurrence four sub-steps
// at a time: its outputs must equal the scalar loop's to float32 rounding
// under every rule, with the state carried across calls.
func TestSectionVectorMatchesScalar(t *testing.T) {
	if !haveSectionVector() {
		t.Skip("no vector section kernel on this machine")
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for _, f := range []int{4, 8, 24} {
		steps := 37
		lat := make([]float32, steps)
		inflow := make([]float32, steps*f)
		for k := range lat {
			lat[k] = float32(rng.Float64() * 3)
		}
		for k := range inflow {
			inflow[k] = float32(rng.Float64() * 10)
			if k%97 == 5 {
				inflow[k] = 0
			}
		}
		for trial := 0; trial < 6; trial++ {
			s := Section{B0: rng.Float64() * 0.5, B1: rng.Float64() * 0.3, A1: rng.Float64() * 0.99}
			for _, p := range []reachParams{{f: f}, {f: f, rapid: true}, {f: f, start: true}, {f: f, sample: true}, {f: f, rapid: true, start: true}} {
				type res struct {
					out, dst []float32
					st       [3]float64
				}
				// add: dst accumulates; else the kernel stores over garbage and
				// the scalar loop adds to zeros.
				run := func(vec, add bool) res {
					y, up, lp := 2.5, 1.25, 0.75
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
					for _, c := range [][2]int{{0, 1}, {1, 9}, {9, steps}} { // state must carry
						in, l, d, o := inflow[c[0]*f:c[1]*f], lat[c[0]:c[1]], dst[c[0]*f:c[1]*f], out[c[0]:c[1]]
						if vec {
							if !runSectionVector(p, s, &y, &up, &lp, in, l, d, o, add) {
								t.Fatalf("vector kernel refused %+v", p)
							}
						} else {
							runSection(p, s, &y, &up, &lp, in, l, d, o)
						}
					}
					return res{out, dst, [3]float64{y, up, lp}}
				}
				add := trial%2 == 0
				want, got := run(false, add), run(true, add)
				close := func(a, b float64) bool { return math.Abs(a-b) <= 4e-7*math.Abs(b)+1e-30 }
				for q := range want.out {
					if !close(float64(got.out[q]), float64(want.out[q])) {
						t.Fatalf("f=%d %+v %+v: out[%d] = %v, scalar %v", f, s, p, q, got.out[q], want.out[q])
					}
				}
				for n := range want.dst {
					if !close(float64(got.dst[n]), float64(want.dst[n])) {
						t.Fatalf("f=%d %+v %+v: dst[%d] = %v, scalar %v", f, s, p, n, got.dst[n], want.dst[n])
					}
				}
				if !close(got.st[0], want.st[0]) || got.st[1] != want.st[1] || got.st[2] != want.st[2] {
					t.Fatalf("f=%d %+v %+v: state %v, scalar %v", f, s, p, got.st, want.st)
				}
			}
		}
	}
}

// The vector cascade runs the sections one after the other over the block,
// four sub-steps at a time: it must equal runCascade to float32 rounding
// under every rule, with the state carried across calls.
func TestCascadeVectorMatchesScalar(t *testing.T) {
	if !haveSectionVector() {
		t.Skip("no vector section kernel on this machine")
	}
	rng := rand.New(rand.NewPCG(9, 13))
	for _, f := range []int{4, 24} {
		steps := 29
		lat := make([]float32, steps)
		inflow := make([]float32, steps*f)
		for k := range lat {
			lat[k] = float32(rng.Float64() * 3)
		}
		for k := range inflow {
			inflow[k] = float32(rng.Float64() * 10)
		}
		for _, ns := range []int{2, 3, 5} {
			secs := make([]Section, ns)
			for k := range secs {
				secs[k] = Section{B0: rng.Float64() * 0.5, B1: rng.Float64() * 0.3, A1: rng.Float64() * 0.9}
			}
			for trial, p := range []reachParams{{f: f}, {f: f, rapid: true}, {f: f, start: true}, {f: f, sample: true}, {f: f, rapid: true, start: true}} {
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
					for _, c := range [][2]int{{0, 1}, {1, 8}, {8, steps}} {
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
						t.Fatalf("f=%d %d sections %+v: out[%d] = %v, scalar %v", f, ns, p, q, gout[q], wo[q])
					}
				}
				for n := range wd {
					if !close(float64(gd[n]), float64(wd[n])) {
						t.Fatalf("f=%d %d sections %+v: dst[%d] = %v, scalar %v", f, ns, p, n, gd[n], wd[n])
					}
				}
				for k := range wy {
					if !close(gy[k], wy[k]) {
						t.Fatalf("f=%d %d sections %+v: state %v, scalar %v", f, ns, p, gy, wy)
					}
				}
				if gs != ws {
					t.Fatalf("f=%d %d sections %+v: inflow state %v, scalar %v", f, ns, p, gs, ws)
				}
			}
		}
	}
}
