package diffroute

import (
	"math"
	"testing"
	"time"
	"unsafe"
)

// TestSec8KernelLayout pins the offsets sectionAVX512 reads its argument
// block at.
func TestSec8KernelLayout(t *testing.T) {
	var k sec8Kernel
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{
		{"nq", unsafe.Offsetof(k.nq), 32}, {"b0", unsafe.Offsetof(k.b0), 48}, {"a", unsafe.Offsetof(k.a), 72},
		{"a8", unsafe.Offsetof(k.a8), 96}, {"pw", unsafe.Offsetof(k.pw), 104}, {"y", unsafe.Offsetof(k.y), 168},
		{"lp", unsafe.Offsetof(k.lp), 184}, {"rapid", unsafe.Offsetof(k.rapid), 192}, {"add", unsafe.Offsetof(k.add), 200},
		{"wprev", unsafe.Offsetof(k.wprev), 224}, {"lat64", unsafe.Offsetof(k.lat64), 232}, {"step64", unsafe.Offsetof(k.step64), 240},
	} {
		if c.got != c.off {
			t.Errorf("sec8Kernel.%s at offset %d, the assembly reads %d", c.name, c.got, c.off)
		}
	}
}

// TestSectionBothKernelsMatchScalar runs the vector-vs-scalar test with the
// eight-wide kernel off (four-wide only) as well as on, where there is one.
func TestSectionBothKernelsMatchScalar(t *testing.T) {
	if !useSectionAVX512 {
		t.Skip("no AVX-512 here: TestSectionVectorMatchesScalar covers the four-wide kernel")
	}
	defer func() { useSectionAVX512 = true }()
	useSectionAVX512 = false
	t.Run("avx2", TestSectionVectorMatchesScalar)
	t.Run("avx2-adjoint", TestAdjointVectorEqualsScalar)
	if testing.Short() {
		// The race run (-short) has routed these with the AVX-512 kernels;
		// the same Go code around the four-wide ones adds 15 s under -race.
		return
	}
	t.Run("avx2-reorder", TestReorderRoutesTheSame)
	t.Run("avx2-tiled", TestTiledAdjointEqualsReference)
}

// TestAdjKernelLayout pins the offsets adjointAVX512 reads past those of
// adjointAVX2.
func TestAdjKernelLayout(t *testing.T) {
	var k adjKernel
	for _, c := range []struct {
		name     string
		got, off uintptr
	}{
		{"lam", unsafe.Offsetof(k.lam), 184}, {"dy", unsafe.Offsetof(k.dy), 256}, {"a", unsafe.Offsetof(k.a), 264},
		{"a8", unsafe.Offsetof(k.a8), 272}, {"p8", unsafe.Offsetof(k.p8), 280},
	} {
		if c.got != c.off {
			t.Errorf("adjKernel.%s at offset %d, the assembly reads %d", c.name, c.got, c.off)
		}
	}
}

// The four-wide kernel on the same case, for comparison.
func BenchmarkRecursiveMuskingum100kOrderedAVX2(b *testing.B) {
	defer func(u bool) { useSectionAVX512 = u }(useSectionAVX512)
	useSectionAVX512 = false
	benchRecursiveOrdered(b, 100000, 100, 24, 0, "muskingum")
}

// benchSectionKernel times the section kernel alone on one reach's block
// (170 steps × 24 sub-steps, in cache).
func benchSectionKernel(b *testing.B, wide bool) {
	defer func(u bool) { useSectionAVX512 = u }(useSectionAVX512)
	useSectionAVX512 = wide && useSectionAVX512
	const steps, f = 170, 24
	lat := make([]float32, steps)
	in := make([]float32, steps*f)
	dst := make([]float32, steps*f)
	out := make([]float32, steps)
	for k := range in {
		in[k] = float32(k%17) * 0.5
	}
	s := Section{B0: 0.2, B1: 0.3, A1: 0.5}
	p := reachParams{f: f}
	y, up, lp := 0.0, 0.0, 0.0
	var cpu time.Duration
	for b.Loop() {
		c0 := cpuTime()
		for range 100 {
			runSectionVector(p, s, &y, &up, &lp, in, lat, dst, out, true)
		}
		cpu += cpuTime() - c0
	}
	work := float64(steps*f*100) * float64(b.N)
	b.ReportMetric(work/cpu.Seconds()/1e6, "M/cpu-s")
}

func BenchmarkSectionKernelAVX2(b *testing.B)   { benchSectionKernel(b, false) }
func BenchmarkSectionKernelAVX512(b *testing.B) { benchSectionKernel(b, true) }

// TestSection64BothKernels compares sectionVector64 on the eight-wide
// kernel with the four-wide one: float32 and float64 runoff and reported
// values, both lateral rules, every reporting rule, state carried over
// three calls.
func TestSection64BothKernels(t *testing.T) {
	if !useSectionAVX512 {
		t.Skip("no AVX-512 here")
	}
	defer func() { useSectionAVX512 = true }()
	const steps, f = 13, 24
	s := Section{B0: 0.21, B1: 0.33, A1: 0.46}
	in := make([]float64, 3*steps*f)
	for k := range in {
		in[k] = 1 + math.Sin(float64(k)*0.37)
	}
	lat64 := make([]float64, 3*steps)
	lat32 := make([]float32, 3*steps)
	for k := range lat64 {
		lat32[k] = float32(0.5 + 0.4*math.Cos(float64(k)))
		lat64[k] = float64(lat32[k])
	}
	type result struct {
		dst, out  []float64
		y, up, lp float64
	}
	run := func(wide, rapid, l64, o64 bool, w [3]float64) result {
		useSectionAVX512 = wide
		r := result{dst: make([]float64, len(in)), out: make([]float64, 3*steps), y: 0.7, up: 0.9, lp: 0.2}
		out32 := make([]float32, 3*steps)
		for c := 0; c < 3; c++ {
			lat := mixedSeries{s32: lat32[c*steps : (c+1)*steps]}
			if l64 {
				lat = mixedSeries{s64: lat64[c*steps : (c+1)*steps]}
			}
			out := mixedSeries{s32: out32[c*steps : (c+1)*steps]}
			if o64 {
				out = mixedSeries{s64: r.out[c*steps : (c+1)*steps]}
			}
			if !sectionVector64(s, f, rapid, w, &r.y, &r.up, &r.lp, in[c*steps*f:(c+1)*steps*f], r.dst[c*steps*f:(c+1)*steps*f], lat, out) {
				t.Fatal("sectionVector64 did not run")
			}
		}
		if !o64 {
			for k, v := range out32 {
				r.out[k] = float64(v)
			}
		}
		return r
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*(1+math.Abs(b)) }
	for _, rapid := range []bool{false, true} {
		for _, l64 := range []bool{false, true} {
			for _, o64 := range []bool{false, true} {
				for _, w := range [][3]float64{{1.0 / f, 0, 0}, {0, 1, 0}, {1.0 / f, -1.0 / f, 1.0 / f}} {
					got, want := run(true, rapid, l64, o64, w), run(false, rapid, l64, o64, w)
					if !near(got.y, want.y) || !near(got.up, want.up) || !near(got.lp, want.lp) {
						t.Fatalf("rapid %v lat64 %v out64 %v w %v: state %v %v %v, four-wide %v %v %v", rapid, l64, o64, w, got.y, got.up, got.lp, want.y, want.up, want.lp)
					}
					for k := range want.dst {
						if !near(got.dst[k], want.dst[k]) {
							t.Fatalf("rapid %v lat64 %v out64 %v: dst[%d] = %v, four-wide %v", rapid, l64, o64, k, got.dst[k], want.dst[k])
						}
					}
					for k := range want.out {
						tol := 1e-12
						if !o64 {
							tol = 1e-6
						}
						if math.Abs(got.out[k]-want.out[k]) > tol*(1+math.Abs(want.out[k])) {
							t.Fatalf("rapid %v lat64 %v out64 %v w %v: out[%d] = %v, four-wide %v", rapid, l64, o64, w, k, got.out[k], want.out[k])
						}
					}
				}
			}
		}
	}
}
