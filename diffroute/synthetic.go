package diffroute

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// SyntheticNetwork generates a river network of about n reaches shaped like
// real ones: a Scheidegger random-walk network on a grid of columns draining
// row by row toward row 0, where each cell drains to one of the three cells
// below it. Its main-stem length grows like n^(2/3) (Hack's law) and it has
// many outlets of very different sizes. Ids are random positive integers and
// the reaches come in shuffled, non-topological order, as real files do.
// The same seed gives the same network.
func SyntheticNetwork(n int, seed uint64) *Network {
	if n < 1 {
		panic("diffroute: SyntheticNetwork needs n ≥ 1")
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	// Aspect ratio: a few more rows than columns gives long main stems.
	w := 1
	for w*w*2 < n {
		w++
	}
	h := (n + w - 1) / w
	total := w * h
	down := make([]int, total)
	for r := 0; r < h; r++ {
		for c := 0; c < w; c++ {
			i := r*w + c
			if r == 0 {
				down[i] = -1
				continue
			}
			cc := c + rng.IntN(3) - 1
			cc = min(max(cc, 0), w-1)
			down[i] = (r-1)*w + cc
		}
	}
	// Keep the first n cells: rows drain toward row 0, so the cut stays valid.
	down = down[:n]
	perm := rng.Perm(n) // perm[k] = original cell at shuffled position k
	pos := make([]int, n)
	for k, cell := range perm {
		pos[cell] = k
	}
	ids := make([]int64, n)
	used := make(map[int64]bool, n)
	for k := range ids {
		for {
			id := 1 + rng.Int64N(int64(n)*100)
			if !used[id] {
				used[id] = true
				ids[k] = id
				break
			}
		}
	}
	sd := make([]int, n)
	for k, cell := range perm {
		if d := down[cell]; d >= 0 {
			sd[k] = pos[d]
		} else {
			sd[k] = -1
		}
	}
	net, err := NewNetworkIndex(ids, sd)
	if err != nil {
		panic("diffroute: synthetic network is invalid: " + err.Error())
	}
	return net
}

// SyntheticRunoff generates B×T steps of positive runoff (m³/s) for the
// network's reaches, shaped like a wet climate at a daily step: a seasonal
// base flow, basin-wide storms that hit every reach (each with its own
// intensity) and local showers, all receding over a few steps.
func SyntheticRunoff(net *Network, b, t int, seed uint64) *DataTensor {
	rng := rand.New(rand.NewPCG(seed, 0xf10d))
	x := NewDataTensor(b, net.IDs(), t)
	storms := make([]float64, t)
	for bi := 0; bi < b; bi++ {
		for k := range storms {
			storms[k] = 0
			if rng.Float64() < 0.06 {
				storms[k] = 4 * rng.ExpFloat64()
			}
		}
		for i := 0; i < net.Len(); i++ {
			s := x.Series(bi, i)
			base := 0.05 + 0.3*rng.Float64()
			gain := 0.4 + 1.2*rng.Float64()
			phase := 0.3 * rng.Float64()
			v := 0.0
			for k := range s {
				season := 1 + 0.6*math.Sin(2*math.Pi*(float64(k)/365.25+phase))
				v = 0.6*v + gain*storms[k]*season
				if rng.Float64() < 0.03 {
					v += 2 * rng.ExpFloat64()
				}
				s[k] = float32(base*season + v)
			}
		}
	}
	return x
}

// SumOfSquares is a LossFunc: Σ y² over every value of the discharge, with
// ∂L/∂y = 2y. It is the loss of the gradient benchmarks, a loss that reads
// and differentiates all of the discharge (as one over every reach does,
// unlike a few gauges'). It runs on every core with several partial sums
// each: one running sum over millions of values would wait on the
// latency of each addition and cost a tenth of the gradient it measures.
func SumOfSquares(y, gy *DataTensor) (float64, error) {
	n := len(y.Data)
	if len(gy.Data) != n {
		panic("diffroute: SumOfSquares: gy and y differ in size")
	}
	const minPart = 1 << 16
	nw := max(1, min(runtime.GOMAXPROCS(0), n/minPart))
	parts := make([]float64, nw)
	var wg sync.WaitGroup
	for w := range nw {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			parts[w] = sumSquares2(gy.Data[lo:hi], y.Data[lo:hi])
		}(w*n/nw, (w+1)*n/nw)
	}
	wg.Wait()
	s := 0.0
	for _, v := range parts {
		s += v
	}
	return s, nil
}

// sumSquares2 returns Σ y² and stores 2y into dst, with four partial sums.
func sumSquares2(dst, y []float32) float64 {
	var s0, s1, s2, s3 float64
	k := 0
	for ; k+4 <= len(y); k += 4 {
		a, b, c, d := float64(y[k]), float64(y[k+1]), float64(y[k+2]), float64(y[k+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
		dst[k], dst[k+1], dst[k+2], dst[k+3] = 2*y[k], 2*y[k+1], 2*y[k+2], 2*y[k+3]
	}
	for ; k < len(y); k++ {
		v := float64(y[k])
		s0 += v * v
		dst[k] = 2 * y[k]
	}
	return (s0 + s1) + (s2 + s3)
}
