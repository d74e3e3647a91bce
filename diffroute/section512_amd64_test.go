package diffroute

import (
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
		{"wprev", unsafe.Offsetof(k.wprev), 224},
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
	t.Run("avx2-reorder", TestReorderRoutesTheSame)
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
