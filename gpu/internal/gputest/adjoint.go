package gputest

import (
	"github.com/diffroute-go/route/diffroute"
)

// RandomGy draws a gradient of a loss with respect to discharge: the
// discharge's dims for net (network order), values in [−1, 1).
func RandomGy(net *diffroute.Network, batch, steps int, seed uint64) *diffroute.DataTensor {
	rng := NewRand(seed)
	gy := diffroute.NewDataTensor(batch, net.IDs(), steps)
	for i := range gy.Data {
		gy.Data[i] = float32(2*rng.Float64() - 1)
	}
	return gy
}

// AdjointRef is the transposed convolution of kr's kernel, straight from its
// pair list in float64: for every pair (d, s),
//
//	gx[b, s, t] += Σ_k K[d, s, k] · gy[b, d, t + k],  t + k < T,
//
// gy and gx in network order. It is the reference the GPU kernel of the
// adjoint is checked against; it shares no code with it.
func AdjointRef(kr *diffroute.KernelRouter, gy *diffroute.DataTensor) *diffroute.DataTensor {
	coo := kr.COO()
	n, B, T, taps := gy.N, gy.B, gy.T, coo.Taps
	acc := make([]float64, B*n*T)
	for j := 0; j < len(coo.Coords)/2; j++ {
		d, s := int(coo.Coords[2*j]), int(coo.Coords[2*j+1])
		K := coo.Vals[j*taps : (j+1)*taps]
		for b := 0; b < B; b++ {
			g := gy.Series(b, d)
			dst := acc[(b*n+s)*T : (b*n+s+1)*T]
			for t := range dst {
				var sum float64
				for k := 0; k < taps && t+k < T; k++ {
					sum += float64(K[k]) * float64(g[t+k])
				}
				dst[t] += sum
			}
		}
	}
	gx := diffroute.NewDataTensor(B, gy.IDs, T)
	for i, v := range acc {
		gx.Data[i] = float32(v)
	}
	return gx
}

// Shuffled returns x with its rows in reverse order (rows are matched by
// id, never by position).
func Shuffled(x *diffroute.DataTensor) *diffroute.DataTensor {
	ids := append([]int64(nil), x.IDs...)
	for i, j := 0, len(ids)-1; i < j; i, j = i+1, j-1 {
		ids[i], ids[j] = ids[j], ids[i]
	}
	xs, err := x.SelectIDs(ids)
	if err != nil {
		panic(err)
	}
	return xs
}
