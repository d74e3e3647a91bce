package calibrate

import (
	"math"
	"math/rand/v2"

	"github.com/diffroute-go/route/diffroute"
)

// Attribute names of SyntheticAttributes, in column order.
const (
	AttrLength = "length_m" // reach length, m
	AttrArea   = "area_km2" // upstream drainage area, km², the reach's own included
	AttrSlope  = "slope"    // channel slope, m/m
)

// SyntheticAttributes draws reach attributes for a network: lengths
// log-normal around 6 km (1–30 km), a local drainage area of about half a
// square kilometre per hundred metres of reach, upstream area accumulated
// down the network, and slopes falling with area as 0.02·A^−0.35 (A in
// km²) with log-normal scatter, within [1e-5, 0.05]. The same seed gives
// the same attributes.
func SyntheticAttributes(net *diffroute.Network, seed uint64) *Attributes {
	rng := rand.New(rand.NewPCG(seed, 0xa77))
	n := net.Len()
	length := make([]float64, n)
	area := make([]float64, n)
	for i := range n {
		length[i] = min(max(6000*math.Exp(0.6*rng.NormFloat64()), 1000), 30000)
		area[i] = length[i] / 100 * 0.5 * (0.5 + rng.Float64())
	}
	// Accumulate upstream first: PreOrder lists each reach before its
	// upstream reaches, so walking it backwards visits them first.
	order := net.PreOrder()
	for k := len(order) - 1; k >= 0; k-- {
		i := int(order[k])
		if d := net.Down(i); d >= 0 {
			area[d] += area[i]
		}
	}
	a := &Attributes{Names: []string{AttrLength, AttrArea, AttrSlope}, Values: make([][]float64, n)}
	for i := range n {
		s := min(max(0.02*math.Pow(area[i], -0.35)*math.Exp(0.4*rng.NormFloat64()), 1e-5), 0.05)
		a.Values[i] = []float64{length[i], area[i], s}
	}
	return a
}

// MuskingumLaw draws Muskingum k (seconds) and x from reach attributes (as
// SyntheticAttributes names them) by a kinematic-wave law: k = L/c with
// celerity c = 0.8 m/s · (A/1000 km²)^0.15 · (S/0.001)^0.2, within [3,600 s,
// 72,000 s]; x = 0.35 − 0.06·log10(A/1 km²), within [0.05, 0.4] (larger
// rivers attenuate more). noise > 0 multiplies k and x by log-normal
// factors of that standard deviation (log scale), drawn with seed, before
// the clamps.
func MuskingumLaw(a *Attributes, noise float64, seed uint64) (k, x []float64) {
	col := func(name string) int {
		for j, n := range a.Names {
			if n == name {
				return j
			}
		}
		panic("calibrate: MuskingumLaw needs attribute " + name)
	}
	jl, ja, js := col(AttrLength), col(AttrArea), col(AttrSlope)
	rng := rand.New(rand.NewPCG(seed, 0x1a3))
	k, x = make([]float64, len(a.Values)), make([]float64, len(a.Values))
	for i, row := range a.Values {
		c := 0.8 * math.Pow(row[ja]/1000, 0.15) * math.Pow(row[js]/0.001, 0.2)
		k[i] = row[jl] / c
		x[i] = 0.35 - 0.06*math.Log10(row[ja])
		if noise > 0 {
			k[i] *= math.Exp(noise * rng.NormFloat64())
			x[i] *= math.Exp(noise * rng.NormFloat64())
		}
		k[i] = min(max(k[i], 3600), 72000)
		x[i] = min(max(x[i], 0.05), 0.4)
	}
	return k, x
}
