package diffroute

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
)

// RouteGradTo gives RouteGrad's discharge, loss and gradients bit for bit,
// gradient after gradient into the same tensors and slices (tiled and
// chunked Muskingum, Hayami's whole-series adjoint), zeroes the rows of
// runoff reaches outside the network, and refuses a ∂L/∂runoff tensor of
// other dims.
func TestRouteGradToEqualsRouteGrad(t *testing.T) {
	ctx := context.Background()
	const n, B, T = 1500, 2, 64
	net := SyntheticNetwork(n, 3)
	loss := func(y, gy *DataTensor) (float64, error) {
		L := 0.0
		for k, v := range y.Data {
			c := math.Cos(float64(k) * 0.11)
			L += c * float64(v)
			gy.Data[k] = float32(c)
		}
		return L, nil
	}
	for _, irf := range []string{"muskingum", "hayami"} {
		opts := Options{IRF: irf, Params: testParams(irf, n, 2), SubSteps: 8, MaxDelay: 16, Workers: 2}
		rr, err := NewRecursiveRouter(ctx, net, opts)
		if err != nil {
			t.Fatal(err)
		}
		x1, x2 := SyntheticRunoff(net, B, T, 4), SyntheticRunoff(net, B, T, 5)
		// A runoff with one more reach than the network: its row gets zero.
		x3 := NewDataTensor(B, append(slices.Clone(x1.IDs), 1<<40), T)
		for b := range B {
			for i := range x1.N {
				copy(x3.Series(b, i), x2.Series(b, i))
			}
		}
		y := NewDataTensor(B, net.IDs(), T)
		dst := &Gradients{Runoff: NewDataTensor(B, x1.IDs, T)}
		var kept []float64
		for step, x := range []*DataTensor{x1, x2, x3} {
			if x == x3 {
				dst.Runoff = NewDataTensor(B, x3.IDs, T)
				for k := range dst.Runoff.Data {
					dst.Runoff.Data[k] = 7 // what a last gradient left
				}
			}
			L, err := rr.RouteGradTo(ctx, y, dst, x, loss)
			if err != nil {
				t.Fatal(err)
			}
			yRef, LRef, gRef, err := rr.RouteGrad(ctx, x, loss)
			if err != nil {
				t.Fatal(err)
			}
			name := slices.Sorted(maps.Keys(gRef.Params))[0]
			if step == 0 {
				kept = dst.Params[name]
			} else if &dst.Params[name][0] != &kept[0] {
				t.Errorf("%s: gradient %d did not reuse the kept ∂L/∂%s", irf, step, name)
			}
			if L != LRef || !slices.Equal(y.Data, yRef.Data) || !slices.Equal(dst.Runoff.Data, gRef.Runoff.Data) || !slices.Equal(dst.InitialQ, gRef.InitialQ) {
				t.Errorf("%s: gradient %d: RouteGradTo differs from RouteGrad (loss %v vs %v)", irf, step, L, LRef)
			}
			for p, v := range gRef.Params {
				if !slices.Equal(dst.Params[p], v) {
					t.Errorf("%s: gradient %d: ∂L/∂%s differs from RouteGrad's", irf, step, p)
				}
			}
		}
		if row := dst.Runoff.Series(1, x3.N-1); slices.ContainsFunc(row, func(v float32) bool { return v != 0 }) {
			t.Errorf("%s: the row of a reach outside the network is not zero", irf)
		}
		bad := &Gradients{Runoff: NewDataTensor(B, x1.IDs, T-1)}
		if _, err := rr.RouteGradTo(ctx, y, bad, x1, loss); err == nil || !strings.Contains(err.Error(), "dst.Runoff") {
			t.Errorf("%s: a ∂L/∂runoff tensor of other dims: %v", irf, err)
		}
	}
}
