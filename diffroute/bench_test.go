package diffroute

import (
	"context"
	"testing"
)

func benchRecursive(b *testing.B, n, steps, f, workers int, irf string) {
	net := SyntheticNetwork(n, 1)
	x := SyntheticRunoff(net, 1, steps, 1)
	p := testParams(irf, n, 1)
	rr, err := NewRecursiveRouter(context.Background(), net, Options{IRF: irf, Params: p, SubSteps: f, Workers: workers, MaxDelay: 16})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := rr.Route(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*steps*f)*float64(b.N)/b.Elapsed().Seconds()/1e6, "M-reach-substeps/s")
}

func BenchmarkRecursiveMuskingum100k(b *testing.B) {
	benchRecursive(b, 100000, 100, 24, 0, "muskingum")
}
func BenchmarkRecursiveMuskingum100k1(b *testing.B) {
	benchRecursive(b, 100000, 100, 24, 1, "muskingum")
}
func BenchmarkRecursiveNash20k(b *testing.B)    { benchRecursive(b, 20000, 100, 24, 0, "nash_cascade") }
func BenchmarkRecursivePureLag20k(b *testing.B) { benchRecursive(b, 20000, 100, 24, 0, "pure_lag") }

func BenchmarkRecursiveHayami20k(b *testing.B) { benchRecursive(b, 20000, 100, 24, 0, "hayami") }
