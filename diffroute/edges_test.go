package diffroute

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// Sub-step counts and fine windows far beyond any useful resolution are
// clear errors, not allocations that crash the process.
func TestOptionLimits(t *testing.T) {
	net, _ := NewNetwork([]int64{1, 2}, []int64{2, 0})
	p := Constant(2, map[string]float64{"k": 1, "x": 0.2})
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"sub-steps", Options{Params: p, SubSteps: MaxSubSteps + 1}, "sub-steps per runoff step"},
		{"window", Options{Params: p, SubSteps: 1 << 12, MaxDelay: 1 << 15}, "window"},
	} {
		if _, err := NewStagedRouter(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: staged router err %v, want one about %q", c.name, err, c.want)
		}
		if _, err := NewRecursiveRouter(context.Background(), net, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: recursive router err %v, want one about %q", c.name, err, c.want)
		}
		k := c.o
		k.Method = Kernel
		if _, err := NewRouter(context.Background(), net, k); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: kernel router err %v, want one about %q", c.name, err, c.want)
		}
	}
	// The limits themselves are accepted.
	if _, err := NewStagedRouter(Options{Params: p, SubSteps: MaxSubSteps}); err != nil {
		t.Errorf("MaxSubSteps rejected: %v", err)
	}
	if _, err := NewStagedRouter(Options{Params: p, SubSteps: 1 << 12, MaxDelay: 1 << 14}); err != nil {
		t.Errorf("a window of MaxFineWindow rejected: %v", err)
	}
}

// A block size beyond the network's size is capped at it: same discharge,
// no giant zero-padded tile (a block size of 2^30 panicked in makeslice).
func TestKernelBlockSizeBeyondNetwork(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(12, 1)
	x := SyntheticRunoff(net, 2, 20, 3)
	o := Options{Params: testParams("muskingum", net.Len(), 1), SubSteps: 3, MaxDelay: 10, Method: Kernel}
	ref, err := NewKernelRouter(ctx, net, o)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ref.Route(ctx, x)
	for _, bs := range []int{12, 13, 1000, 1 << 30} {
		o.BlockSize = bs
		kr, err := NewKernelRouter(ctx, net, o)
		if err != nil {
			t.Fatalf("block size %d: %v", bs, err)
		}
		if b := kr.BlockSparse().B; b != 12 {
			t.Errorf("block size %d: tiles of %d, want 12", bs, b)
		}
		est, err := EstimateKernelBytes(net, o)
		if err != nil || est.BlockBytes > ref.Stats().BlockBytes*4 {
			t.Errorf("block size %d: estimate %d bytes (%v)", bs, est.BlockBytes, err)
		}
		got, err := kr.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got.Data {
			if math.Abs(float64(v-want.Data[i])) > 1e-6*(1+math.Abs(float64(want.Data[i]))) {
				t.Fatalf("block size %d: value %d is %v, want %v", bs, i, v, want.Data[i])
			}
		}
	}
}

// A pure lag longer than the IRF window is an error naming the reach, not a
// reach that silently drops its runoff (discharge 0 downstream).
func TestPureLagBeyondWindow(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(10, 1)
	x := SyntheticRunoff(net, 1, 12, 3)
	for _, c := range []struct {
		delay float64
		ok    bool
	}{{0, true}, {1.5, true}, {4 - 1.0/3, true}, {3.9, false}, {4, false}, {100, false}} {
		for _, m := range []Method{Recursive, Kernel} {
			o := Options{IRF: "pure_lag", Params: Constant(net.Len(), map[string]float64{"delay": c.delay}), SubSteps: 3, MaxDelay: 4, Method: m}
			r, err := NewRouter(ctx, net, o)
			if c.ok {
				if err != nil {
					t.Errorf("delay %v, %s: %v", c.delay, m, err)
				} else if _, err := r.Route(ctx, x); err != nil {
					t.Errorf("delay %v, %s: %v", c.delay, m, err)
				}
				continue
			}
			if err == nil || !strings.Contains(err.Error(), "max delay") || !strings.Contains(err.Error(), "reach ") {
				t.Errorf("delay %v beyond max delay 4, %s: err %v", c.delay, m, err)
			}
		}
	}
}

// A NaN, infinite or float32-overflowing initial discharge is an error naming
// the reach, through every router that takes one (it came out as NaN).
func TestInitialQNotFinite(t *testing.T) {
	ctx := context.Background()
	net, _ := NewNetwork([]int64{1, 2, 3}, []int64{3, 3, 0})
	x := NewDataTensor(1, net.IDs(), 4)
	for _, bad := range []float64{math.NaN(), math.Inf(1), -1e39} {
		o := Options{Params: Constant(3, map[string]float64{"k": 1, "x": 0.2}), SubSteps: 2, InitialQ: []float64{1, bad, 1}}
		_, err := NewRecursiveRouter(context.Background(), net, o)
		if err == nil || !strings.Contains(err.Error(), "reach 2") {
			t.Errorf("qinit %v: recursive router err %v", bad, err)
		}
		cl, _ := Schedule(net, 0, 1)
		sr, _ := NewStagedRouter(o)
		if _, err := sr.Route(ctx, x, cl); err == nil || !strings.Contains(err.Error(), "reach 2") {
			t.Errorf("qinit %v: staged router err %v", bad, err)
		}
		sel, err := Select(net, o, []int64{3})
		if err == nil {
			_, err = sel.Route(ctx, x)
		}
		if err == nil || !strings.Contains(err.Error(), "reach 2") {
			t.Errorf("qinit %v: selection err %v", bad, err)
		}
	}
}

// Sizes whose byte counts overflow int64 are an error, not a plan with a
// negative predicted peak that "fits".
func TestPlanOverflow(t *testing.T) {
	net := SyntheticNetwork(100, 1)
	o := Options{Params: testParams("muskingum", net.Len(), 1), SubSteps: 24}
	for _, c := range []struct{ T, batch int }{{9e18, 1}, {1000, 9e18}, {1e15, 1}} {
		p, err := Plan(net, c.T, c.batch, 1<<30, o)
		if err == nil {
			t.Errorf("T %d, batch %d: planned %s", c.T, c.batch, p.Strategies[p.Chosen].Name)
		}
		if p != nil && p.Predicted < 0 {
			t.Errorf("T %d, batch %d: negative prediction %d", c.T, c.batch, p.Predicted)
		}
	}
	if _, err := Plan(net, 1e6, 4, 1<<30, o); err != nil {
		t.Errorf("a plausible size was refused: %v", err)
	}
}

// cancelAfterCtx reports cancellation from its second Err call on: the
// router saw no cancellation before it started routing a block.
type cancelAfterCtx struct {
	context.Context
	calls atomic.Int64
}

func (c *cancelAfterCtx) Err() error {
	if c.calls.Add(1) > 1 {
		return context.Canceled
	}
	return nil
}

// Cancellation is noticed within a block of sub-steps, not only between
// blocks (one block of every reach can take seconds on a large network), in
// both the batch-parallel and the subtree-parallel schedule.
func TestRecursiveCancelWithinBlock(t *testing.T) {
	net := SyntheticNetwork(5000, 2)
	o := Options{Params: testParams("muskingum", net.Len(), 1), Workers: 4}
	for _, b := range []int{1, 4} {
		x := SyntheticRunoff(net, b, 5, 1) // one block
		rr, err := NewRecursiveRouter(context.Background(), net, o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rr.Route(&cancelAfterCtx{Context: context.Background()}, x); !errors.Is(err, context.Canceled) {
			t.Errorf("batch %d: err %v, want context.Canceled", b, err)
		}
		// The state is part-way through the block: routing on is refused
		// until Reset, which starts afresh.
		if _, err := rr.Route(context.Background(), x); err == nil || !strings.Contains(err.Error(), "Reset") {
			t.Errorf("batch %d: routing on after a cancelled call: err %v", b, err)
		}
		rr.Reset()
		got, err := rr.Route(context.Background(), x)
		if err != nil {
			t.Fatal(err)
		}
		fresh, _ := NewRecursiveRouter(context.Background(), net, o)
		want, _ := fresh.Route(context.Background(), x)
		if !slices.Equal(got.Data, want.Data) {
			t.Errorf("batch %d: Reset after a cancelled call does not start afresh", b)
		}
	}
}
