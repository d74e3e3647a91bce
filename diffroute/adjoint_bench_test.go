package diffroute

import "testing"

// The kernels alone on one reach's block in cache: ns per sub-step.
func BenchmarkKernelForward64(b *testing.B) {
	const f, nq = 24, 100
	u, y, lat, out := make([]float64, f*nq), make([]float64, f*nq), make([]float64, nq), make([]float64, nq)
	s := Section{B0: 0.2, B1: 0.1, A1: 0.7}
	var ys, up, lp float64
	for b.Loop() {
		sectionVector64(s, f, true, [3]float64{1.0 / f, 0, 0}, &ys, &up, &lp, u, y, mixedSeries{s64: lat}, mixedSeries{s64: out})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*f*nq), "ns/substep")
}

func BenchmarkKernelForward32(b *testing.B) {
	const f, nq = 24, 100
	u, y, lat, out := make([]float32, f*nq), make([]float32, f*nq), make([]float32, nq), make([]float32, nq)
	s := Section{B0: 0.2, B1: 0.1, A1: 0.7}
	var ys, up, lp float64
	for b.Loop() {
		sectionVector(s, f, true, true, [3]float64{1.0 / f, 0, 0}, &ys, &up, &lp, u, lat, y, out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*f*nq), "ns/substep")
}

func BenchmarkKernelAdjoint(b *testing.B) {
	const f, nq = 24, 100
	a := &adjArgs{s: Section{B0: 0.2, B1: 0.1, A1: 0.7}, f: f, ubd: make([]float64, f*nq), y: make([]float64, f*nq), u: make([]float64, f*nq),
		gy: make([]float64, nq), w: [3]float64{1.0 / f, 0, 0}, sumL: make([]float64, nq), firstL: make([]float64, nq)}
	for b.Loop() {
		adjointVector(a)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*f*nq), "ns/substep")
}
