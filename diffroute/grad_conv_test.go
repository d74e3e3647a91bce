package diffroute

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The adjoint engine's convolution pieces against plain loops (the
// definitions), for windows and blocks long enough to run the wide vector
// blocks and every tail: forward outflow, tap adjoint, inflow adjoint and
// the history's adjoint.
func TestGradConvPiecesMatchLoops(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 4))
	for _, W := range []int{3, 40, 384} {
		H := W - 1
		for _, nb := range []int{1, 7, 24, 150, 696} {
			taps := make([]float64, W)
			lo := rng.IntN(W)
			hi := lo + 1 + rng.IntN(W-lo)
			for k := lo; k < hi; k++ {
				taps[k] = rng.Float64() - 0.2
			}
			rev := slices.Clone(taps[lo:hi])
			slices.Reverse(rev)
			ext := make([]float64, H+nb)
			for k := range ext {
				ext[k] = rng.Float64() * 10
			}
			ybx := make([]float64, nb+H)
			for k := range ybx {
				ybx[k] = rng.Float64() - 0.5
			}
			what := fmt.Sprintf("W=%d nb=%d taps [%d,%d)", W, nb, lo, hi)
			near := func(name string, k int, got, want, bound float64) {
				t.Helper()
				if math.Abs(got-want) > 1e-12*bound {
					t.Fatalf("%s: %s[%d] = %.17g, loop %.17g", what, name, k, got, want)
				}
			}

			y := make([]float64, nb)
			convTapsForward(rev, hi, ext, H, y)
			for n := range nb {
				want, bound := 0.0, 0.0
				for k := lo; k < hi; k++ {
					want += taps[k] * ext[H+n-k]
					bound += math.Abs(taps[k] * ext[H+n-k])
				}
				near("y", n, y[n], want, bound)
			}

			dh := make([]float64, W)
			for k := range dh {
				dh[k] = 1 // added into
			}
			convTapsAdjoint(dh, lo, hi, ybx[:nb], ext, H, make([]float64, hi-lo))
			for k := range W {
				want, bound := 1.0, 1.0
				if k >= lo && k < hi {
					for n := range nb {
						want += ybx[n] * ext[H-k+n]
						bound += math.Abs(ybx[n] * ext[H-k+n])
					}
				}
				near("dh", k, dh[k], want, bound)
			}

			ub := make([]float64, nb)
			convInflowAdjoint(taps, lo, hi, ybx, ub)
			hist, histBound := 0.0, 0.0
			for m := -H; m < nb; m++ {
				want, bound := 0.0, 0.0
				for k := max(lo, -m); k < min(hi, nb+H-m); k++ {
					want += taps[k] * ybx[m+k]
					bound += math.Abs(taps[k] * ybx[m+k])
				}
				if m < 0 {
					hist += want
					histBound += bound
					continue
				}
				near("ub", m, ub[m], want, bound)
			}
			near("history", -1, convHistoryAdjoint(taps, lo, hi, ybx), hist, histBound+1e-300)
		}
	}
}
