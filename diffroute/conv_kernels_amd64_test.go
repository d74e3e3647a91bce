package diffroute

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// BenchmarkConvDenseKernels times the AVX-512 dense convolution kernels on
// one chunk of 2,400 fine outputs (100 steps × 24) in cache, in multiply-adds
// per CPU-second, next to the machine's FMA peak (fmaPeak512: 16 independent
// register FMAs, no memory): "tab" is convDenseTab512 (lane-shifted taps,
// broadcast inflows), "unaligned" the older convDenseAVX512 (broadcast taps,
// unaligned inflow vectors).
func BenchmarkConvDenseKernels(b *testing.B) {
	if !haveConvAVX512 {
		b.Skip("no AVX-512 here")
	}
	b.Run("peak", func(b *testing.B) {
		const rounds = 1 << 16
		c0 := cpuTime()
		for b.Loop() {
			fmaPeak512(rounds)
		}
		cpu := (cpuTime() - c0).Seconds()
		b.ReportMetric(float64(rounds*16*8)*float64(b.N)/cpu/1e9, "GFMA/cpu-s")
	})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, l := range []int{16, 64, 203, 384} {
		rev := make([]float64, l)
		for k := range rev {
			rev[k] = rng.Float64()
		}
		const fl = 2400
		e := make([]float64, fl+l-1)
		for k := range e {
			e[k] = rng.Float64()
		}
		y := make([]float64, fl)
		for _, way := range []string{"tab", "unaligned"} {
			b.Run(fmt.Sprintf("L=%d/%s", l, way), func(b *testing.B) {
				buf := new([]float64)
				c0 := cpuTime()
				for b.Loop() {
					if way == "tab" {
						tab := convTab(buf, rev)
						convDenseTab512(unsafe.SliceData(tab), l+7, unsafe.SliceData(e), unsafe.SliceData(y), fl)
					} else {
						convDenseAVX512(unsafe.SliceData(rev), l, unsafe.SliceData(e), unsafe.SliceData(y), fl&^63)
					}
				}
				cpu := (cpuTime() - c0).Seconds()
				b.ReportMetric(float64(fl*l)*float64(b.N)/cpu/1e9, "GFMA/cpu-s")
				b.ReportMetric(float64(fl)*float64(b.N)/cpu/1e6, "M-out/cpu-s")
			})
		}
	}
}

// Machines without AVX-512 convolve on the four-wide kernel and the Go
// loops: the same checks with the AVX-512 paths off.
func TestConvWithoutAVX512(t *testing.T) {
	if !haveConvAVX512 {
		t.Skip("already without AVX-512")
	}
	defer func() { haveConvAVX512 = true }()
	haveConvAVX512 = false
	t.Run("fine", TestConvFineMatchesReference)
	t.Run("chunks", TestConvFineChunksEqualWhole)
	t.Run("convolve", TestConvolveChunksEqualWhole)
	t.Run("grad", TestGradConvPiecesMatchLoops)
}
