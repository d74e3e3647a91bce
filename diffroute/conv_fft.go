package diffroute

import (
	"math/bits"

	"gonum.org/v1/gonum/dsp/fourier"
)

// convFFTMinTaps is the crossover between the direct dense convolution and
// FFT overlap-save: kernels with at least this many contiguous taps are
// convolved by FFT. The direct kernel costs one multiply-add per tap and
// output on wide vectors; overlap-save a few tens of flops per output (about
// 5·log2 M per transform, two transforms per block) on gonum's scalar real
// FFT, so on vector hardware it only wins for long kernels
// (BenchmarkConvDenseVsFFT measures both; convFFTCrossover holds the
// figures for each kernel).
var convFFTMinTaps = convFFTCrossover()

// convSpectrum is the overlap-save form of one dense kernel: its spectrum at
// FFT length m, divided by m (gonum's inverse transform is unnormalized).
type convSpectrum struct {
	m int
	g []complex128
}

// convFFTLen is the FFT length for l taps: the power of two at least 2·l, so
// that each transform yields at least half its length in outputs. Longer
// transforms save a little per output on long series but waste most of a
// block on chunks of a few thousand sub-steps, and cost memory per reach.
func convFFTLen(l int) int {
	return 1 << bits.Len(uint(2*l-1))
}

// convSpectrumBytes is the memory of the spectrum of a kernel with l
// contiguous taps (0 when it is convolved directly).
func convSpectrumBytes(l int) int64 {
	if l < convFFTMinTaps {
		return 0
	}
	return int64(convFFTLen(l)/2+1) * 16
}

// newConvSpectrum transforms the kernel whose taps, reversed, are rev.
func newConvSpectrum(rev []float64) *convSpectrum {
	l := len(rev)
	m := convFFTLen(l)
	g := make([]float64, m)
	for k := range l {
		g[k] = rev[l-1-k] / float64(m)
	}
	return &convSpectrum{m: m, g: fourier.NewFFT(m).Coefficients(nil, g)}
}

// convFFTWork is one worker's transform and scratch for one FFT length
// (gonum's FFT keeps work space and is not safe for concurrent use).
type convFFTWork struct {
	fft *fourier.FFT
	seg []float64
	x   []complex128
}

func newConvFFTWork(m int) *convFFTWork {
	return &convFFTWork{fft: fourier.NewFFT(m), seg: make([]float64, m), x: make([]complex128, m/2+1)}
}

// convOverlapSave computes y[n] = Σ_j rev[j]·e[n+j] (l = len(rev) taps,
// len(e) ≥ len(y)+l−1) by overlap-save with the kernel spectrum s: each
// block of m inflows gives m−l+1 outputs free of circular wrap-around. The
// sums are the direct convolution's up to float64 rounding of the
// transforms (relative 1e-15 of the largest inflow·tap sum), far below
// float32 resolution of the discharge.
func convOverlapSave(s *convSpectrum, l int, w *convFFTWork, e, y []float64) {
	m := s.m
	b := m - l + 1
	e = e[:len(y)+l-1]
	for n0 := 0; n0 < len(y); n0 += b {
		seg := w.seg
		c := copy(seg, e[n0:])
		clear(seg[c:])
		x := w.fft.Coefficients(w.x, seg)
		for k, g := range s.g {
			x[k] *= g
		}
		w.fft.Sequence(seg, x)
		copy(y[n0:min(n0+b, len(y))], seg[l-1:])
	}
}
