package diffroute

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randSeries is n uniform values in [−shift, 1−shift).
func randSeries(rng *rand.Rand, n int, shift float64) []float64 {
	v := make([]float64, n)
	for k := range v {
		v[k] = rng.Float64() - shift
	}
	return v
}

// chunkForward (the chunked layout's recursion and its second pass)
// against the scalar section loop, one to three steps a lane.
func TestChunkForwardMatchesScalar(t *testing.T) {
	if !useChunks {
		t.Skip("no AVX-512 here")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const f = 24
	for _, S := range []int{1, 2, 3} {
		L := S * f
		nb := 16 * L
		nq := nb / f
		u, lat := randSeries(rng, nb, 0), randSeries(rng, nq, 0)
		s := Section{B0: 0.2, B1: 0.15, A1: 0.6}
		w := [3]float64{1.0 / f, 0.3, 0.2}
		yr := make([]float64, nb)
		y, up, lp := 0.3, 0.7, 0.0
		out := make([]float64, nq)
		sectionScalar64(s, f, true, w, &y, &up, &lp, u, yr, mixedSeries{s64: lat}, mixedSeries{s64: out})
		uc, yc := make([]float64, nb), make([]float64, nb)
		toChunked(uc, u, L)
		c := make([]float64, 16*S)
		for j := 0; j < 16; j++ {
			for s2 := 0; s2 < S; s2++ {
				c[16*s2+j] = (s.B0 + s.B1) * lat[j*S+s2]
			}
		}
		oc := make([]float64, 16*S)
		chunkForward(s, f, L, powInt(s.A1, L), 0.3, 0.7, uc, nil, nil, yc, c, nil, oc, nil, w)
		yrc := make([]float64, nb)
		toChunked(yrc, yr, L)
		for k := range yc {
			if math.Abs(yc[k]-yrc[k]) > 1e-12*(1+math.Abs(yrc[k])) {
				t.Fatalf("S=%d k=%d: %g want %g", S, k, yc[k], yrc[k])
			}
		}
		for j := 0; j < 16; j++ {
			for s2 := 0; s2 < S; s2++ {
				if got, want := oc[16*s2+j], out[j*S+s2]; math.Abs(got-want) > 1e-12*(1+math.Abs(want)) {
					t.Fatalf("S=%d step %d: reported %g want %g", S, j*S+s2, got, want)
				}
			}
		}
	}
}

// The chunked kernels against the eight-wide ones on one section's block
// of 1,152 sub-steps (f = 24) in cache: ns per vector of eight sub-steps.
func BenchmarkKernelChunkForward(b *testing.B) {
	if !useChunks {
		b.Skip("no AVX-512 here")
	}
	const f, S = 24, 3
	L := S * f
	nb := 16 * L
	nq := nb / f
	u, y, lat := make([]float64, nb), make([]float64, nb), make([]float64, nq)
	s := Section{B0: 0.2, B1: 0.1, A1: 0.7}
	b.Run("eight-wide", func(b *testing.B) {
		var ys, up, lp float64
		for b.Loop() {
			sectionVector64(s, f, true, [3]float64{1.0 / f, 0, 0}, &ys, &up, &lp, u, y, mixedSeries{s64: lat}, mixedSeries{})
		}
		reportPerVector(b, nb)
	})
	c := make([]float64, 16*S)
	b.Run("chunked", func(b *testing.B) {
		for b.Loop() {
			chunkForward(s, f, L, powInt(s.A1, L), 0.1, 0.2, u, nil, nil, y, c, nil, nil, nil, [3]float64{})
		}
		reportPerVector(b, nb)
	})
}

// chunkAdjoint against the scalar adjoint, with the loss's share on every
// sub-step and on each step's last (the step after's too).
func TestChunkAdjointMatchesScalar(t *testing.T) {
	if !useChunks {
		t.Skip("no AVX-512 here")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	const f = 24
	for _, S := range []int{1, 2, 3} {
		L := S * f
		nb := 16 * L
		nq := nb / f
		ubd, y, u, gy := randSeries(rng, nb, 0.3), randSeries(rng, nb, 0.3), randSeries(rng, nb, 0.3), randSeries(rng, nq, 0.3)
		s := Section{B0: 0.2, B1: 0.15, A1: 0.6}
		w := [3]float64{1.0 / f, 0.3, 0.2}
		a := &adjArgs{s: s, f: f, ubd: ubd, y: append([]float64(nil), y...), u: u, gy: gy, w: w, gyn: 0.7, y0: 0.4, up0: 0.9, lam: 1.3,
			sumL: make([]float64, nq), firstL: make([]float64, nq)}
		adjointScalar(a)
		uc, yc, ubdc := make([]float64, nb), make([]float64, nb), make([]float64, nb)
		toChunked(uc, u, L)
		toChunked(yc, y, L)
		toChunked(ubdc, ubd, L)
		cs, es := make([]float64, 16*S), make([]float64, 16*S)
		for j := 0; j < 16; j++ {
			for s2 := 0; s2 < S; s2++ {
				q := j*S + s2
				gn := 0.7
				if q+1 < nq {
					gn = gy[q+1]
				}
				cs[16*s2+j] = w[0] * gy[q]
				es[16*s2+j] = w[1]*gy[q] + w[2]*gn
			}
		}
		sl, fl := make([]float64, 16*S), make([]float64, 16*S)
		du, dup, dy, lam0, _ := chunkAdjoint(s, f, L, powInt(s.A1, L), 1.3, 0.4, 0.9, ubdc, yc, uc, make([]float64, nb), cs, es, sl, fl, nil, 0, nil, nil)
		close := func(name string, got, want float64) {
			if math.Abs(got-want) > 1e-11*(1+math.Abs(want)) {
				t.Fatalf("S=%d %s: %.15g want %.15g", S, name, got, want)
			}
		}
		close("du", du, a.du)
		close("dup", dup, a.dup)
		close("dy", dy, a.dy)
		close("lam0", lam0, a.lam)
		want := make([]float64, nb)
		toChunked(want, a.y, L)
		for k := range yc {
			close("dLdu", yc[k], want[k])
		}
		for j := 0; j < 16; j++ {
			for s2 := 0; s2 < S; s2++ {
				close("sumL", sl[16*s2+j], a.sumL[j*S+s2])
				close("firstL", fl[16*s2+j], a.firstL[j*S+s2])
			}
		}
	}
}

func BenchmarkKernelChunkAdjoint(b *testing.B) {
	if !useChunks {
		b.Skip("no AVX-512 here")
	}
	const f, S = 24, 3
	L := S * f
	nb := 16 * L
	nq := nb / f
	a := &adjArgs{s: Section{B0: 0.2, B1: 0.1, A1: 0.7}, f: f, ubd: make([]float64, nb), y: make([]float64, nb), u: make([]float64, nb),
		gy: make([]float64, nq), w: [3]float64{1.0 / f, 0, 0}, sumL: make([]float64, nq), firstL: make([]float64, nq)}
	b.Run("eight-wide", func(b *testing.B) {
		for b.Loop() {
			adjointVector(a)
		}
		reportPerVector(b, nb)
	})
	lam, cs, es, sl, fl := make([]float64, nb), make([]float64, 16*S), make([]float64, 16*S), make([]float64, 16*S), make([]float64, 16*S)
	b.Run("chunked", func(b *testing.B) {
		for b.Loop() {
			chunkAdjoint(a.s, f, L, powInt(a.s.A1, L), 0.1, 0.2, 0.3, a.ubd, a.y, a.u, lam, cs, es, sl, fl, nil, 0, nil, nil)
		}
		reportPerVector(b, nb)
	})
}

// chunkAdjoint with ∂L/∂y gathered from a float32 series in time order and
// ∂L/∂runoff scattered into one (and Σ runoff·Σλ) against chunkAdjoint with
// per-lane loss terms and the same sums taken from its per-lane results.
func TestChunkAdjointGathersAndScatters(t *testing.T) {
	if !useChunks {
		t.Skip("no AVX-512 here")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	const f = 8
	for _, S := range []int{1, 2, 5} {
		L := S * f
		nb, nq := 16*L, 16*S
		ubd, y, u := randSeries(rng, nb, 0.3), randSeries(rng, nb, 0.3), randSeries(rng, nb, 0.3)
		gy32, lat32 := make([]float32, nq), make([]float32, nq)
		for q := range gy32 {
			gy32[q], lat32[q] = float32(rng.Float64()), float32(rng.Float64())
		}
		s := Section{B0: 0.25, B1: 0.1, A1: 0.55}
		const w0 = 1.0 / f
		cs, es := make([]float64, nq), make([]float64, nq)
		for j := range 16 {
			for s2 := range S {
				cs[16*s2+j] = w0 * float64(gy32[j*S+s2])
			}
		}
		y1 := append([]float64(nil), y...)
		sl, fl := make([]float64, nq), make([]float64, nq)
		du, dup, dy, lam0, _ := chunkAdjoint(s, f, L, powInt(s.A1, L), 0.8, 0.2, 0.4, ubd, y1, u, make([]float64, nb), cs, es, sl, fl, nil, 0, nil, nil)
		y2 := append([]float64(nil), y...)
		sl2, fl2, dx := make([]float64, nq), make([]float64, nq), make([]float32, nq)
		du2, dup2, dy2, lam02, dl := chunkAdjoint(s, f, L, powInt(s.A1, L), 0.8, 0.2, 0.4, ubd, y2, u, make([]float64, nb), nil, nil, sl2, fl2, gy32, w0, dx, lat32)
		for _, c := range [][2]float64{{du2, du}, {dup2, dup}, {dy2, dy}, {lam02, lam0}} {
			if math.Abs(c[0]-c[1]) > 1e-12*(1+math.Abs(c[1])) {
				t.Fatalf("S=%d: %v", S, c)
			}
		}
		want := 0.0
		for j := range 16 {
			for s2 := range S {
				q, k := j*S+s2, 16*s2+j
				want += float64(lat32[q]) * sl[k]
				if d := float32((s.B0 + s.B1) * sl[k]); dx[q] != d {
					t.Fatalf("S=%d step %d: ∂L/∂runoff %g want %g", S, q, dx[q], d)
				}
			}
		}
		if math.Abs(dl-want) > 1e-12*(1+math.Abs(want)) {
			t.Fatalf("S=%d: Σ runoff·Σλ %g want %g", S, dl, want)
		}
	}
}

// reportPerVector reports a kernel benchmark's ns per vector of eight
// sub-steps, for blocks of nb sub-steps.
func reportPerVector(b *testing.B, nb int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nb)*8, "ns/vec")
}
