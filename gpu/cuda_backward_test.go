//go:build cuda || cudaemu

package gpu

import (
	"context"
	"strings"
	"testing"

	"github.com/diffroute-go/diffroute/diffroute"
	"github.com/diffroute-go/diffroute/gpu/internal/gputest"
)

// backwardVsRef runs the device's ∂L/∂runoff for a random ∂L/∂y and
// compares it with the pair loop of gputest.AdjointRef, the runoff given
// with its rows reversed (the gradient comes back in the runoff's layout).
func backwardVsRef(t *testing.T, c gputest.Case, ro *RouterOptions, seed uint64) float64 {
	t.Helper()
	ctx := context.Background()
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	x := gputest.Shuffled(c.Runoff)
	gy := gputest.RandomGy(c.Net, x.B, x.T, seed)
	got, err := r.BackwardRunoff(ctx, x, gy)
	if err != nil {
		t.Fatal(err)
	}
	if got.N != x.N || got.IDs[0] != x.IDs[0] || got.T != x.T || got.B != x.B {
		t.Fatalf("∂L/∂runoff has dims (%d, %d, %d) and first id %d, the runoff (%d, %d, %d), %d", got.B, got.N, got.T, got.IDs[0], x.B, x.N, x.T, x.IDs[0])
	}
	got, err = got.SelectIDs(c.Net.IDs())
	if err != nil {
		t.Fatal(err)
	}
	want := gputest.AdjointRef(r.CPU(), gy)
	pr, er, err := gputest.RelErr(got, want)
	if err != nil {
		t.Fatal(err)
	}
	st := r.BackwardStats()
	t.Logf("%s: %d chunks of %d steps, adjoint %.3g ms: device ∂L/∂runoff vs pair loop %.2g of peak, %.2g elementwise", c.Name, st.Chunks, st.ChunkSteps, st.ConvSeconds*1e3, pr, er)
	return pr
}

func TestGPUBackwardRunoffMatchesCPU(t *testing.T) {
	for j, c := range gputest.RandomCases(700, 2, 90, 43) {
		for _, ro := range []*RouterOptions{nil, {ChunkSteps: 7, Threads: 96}} {
			if pr := backwardVsRef(t, c, ro, uint64(j)); pr > 1e-5 {
				t.Errorf("%s (%+v): device ∂L/∂runoff differs from the pair loop by %.3g of peak", c.Name, ro, pr)
			}
		}
	}
}

func TestGPUBackwardRunoffXX9(t *testing.T) {
	dir, err := gputest.XX9Dir()
	if err != nil {
		t.Skip(err)
	}
	c, _, err := gputest.XX9(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []*RouterOptions{nil, {ChunkSteps: 5}} {
		if pr := backwardVsRef(t, c, ro, 77); pr > 1e-5 {
			t.Errorf("rapid_xx9 (%+v): device ∂L/∂runoff differs from the pair loop by %.3g of peak", ro, pr)
		}
	}
}

// TestGPUBackwardRunoffRefusesBadGy: ∂L/∂y with other dims, another row
// order or a NaN is refused with a message naming the problem.
func TestGPUBackwardRunoffRefusesBadGy(t *testing.T) {
	ctx := context.Background()
	c := gputest.RandomCases(60, 1, 12, 5)[0]
	r, err := NewRouter(ctx, testDev, c.Net, c.Opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	good := gputest.RandomGy(c.Net, 1, 12, 1)
	short := gputest.RandomGy(c.Net, 1, 11, 1)
	shuffled := gputest.Shuffled(good)
	nan := good.Clone()
	nan.Data[17] = float32(nanValue())
	for _, tc := range []struct {
		gy   *diffroute.DataTensor
		want string
	}{{nil, "no dL/dy"}, {short, "dims"}, {shuffled, "network order"}, {nan, "NaN"}} {
		_, err := r.BackwardRunoff(ctx, c.Runoff, tc.gy)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("∂L/∂y (%s): error %v, want one mentioning %q", tc.want, err, tc.want)
			continue
		}
		t.Log(err)
	}
	if _, err := r.BackwardRunoff(ctx, c.Runoff, good); err != nil {
		t.Errorf("a good ∂L/∂y after bad ones: %v", err)
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}
