package diffroute

import (
	"context"
	"strings"
	"testing"
)

// RouteTo writes what Route returns into a tensor the caller owns, for both
// methods: a reused destination full of old values is overwritten, and a
// destination of the wrong shape or order is refused. Reset makes the
// recursive router start again from zero; the kernel router has no state.
func TestRouteToEqualsRoute(t *testing.T) {
	ctx := context.Background()
	net, opts, x := stagedSetup(t, 60, 7, "muskingum", 3, 2, 40)
	for _, m := range []Method{Recursive, Kernel} {
		o := opts
		o.Method, o.MaxDelay = m, 40
		r, err := NewRouter(ctx, net, o)
		if err != nil {
			t.Fatal(err)
		}
		want, err := r.Route(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		dst := NewDataTensor(x.B, net.IDs(), x.T)
		for i := range dst.Data {
			dst.Data[i] = 1e6 // stale values must not leak into the result
		}
		r.Reset()
		if err := r.RouteTo(ctx, dst, x); err != nil {
			t.Fatal(err)
		}
		for i := range want.Data {
			if dst.Data[i] != want.Data[i] {
				t.Fatalf("%s: RouteTo value %d = %g, Route gave %g", m, i, dst.Data[i], want.Data[i])
			}
		}
		if m == Recursive {
			// Without Reset the recursive router continues the series: the
			// second call differs from the first.
			again, err := r.Route(ctx, x)
			if err != nil {
				t.Fatal(err)
			}
			same := true
			for i := range again.Data {
				same = same && again.Data[i] == want.Data[i]
			}
			if same {
				t.Errorf("recursive: a second Route without Reset repeated the first; state was not carried")
			}
		}
		bad := NewDataTensor(x.B, net.IDs(), x.T+1)
		if err := r.RouteTo(ctx, bad, x); err == nil || !strings.Contains(err.Error(), "dims") {
			t.Errorf("%s: destination of the wrong length: %v", m, err)
		}
		ids := append([]int64(nil), net.IDs()...)
		ids[0], ids[1] = ids[1], ids[0]
		if err := r.RouteTo(ctx, NewDataTensor(x.B, ids, x.T), x); err == nil || !strings.Contains(err.Error(), "network order") {
			t.Errorf("%s: destination out of network order: %v", m, err)
		}
	}
}

// Options are checked when a router is made: unknown enum values, a device
// asked to run the recursive method.
func TestNewRouterChecksOptions(t *testing.T) {
	net, opts, _ := stagedSetup(t, 10, 1, "muskingum", 1, 1, 5)
	for _, c := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.Method = "fast" }, "unknown method"},
		{func(o *Options) { o.Compat = "rapid" }, "unknown compat"},
		{func(o *Options) { o.Sampling = "max" }, "unknown sampling"},
		{func(o *Options) { o.Device = fakeDevice{} }, "kernel method"},
		{func(o *Options) { o.Method, o.ExcludeSelf = Recursive, true }, "exist only in the kernel method"},
	} {
		o := opts
		c.mod(&o)
		if _, err := NewRouter(context.Background(), net, o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err %v, want %q", err, c.want)
		}
	}
}

// Excluded self pairs are the kernel method's: with no method given they
// select it (as Compat does), so they are never silently ignored.
func TestExcludeSelfSelectsTheKernelMethod(t *testing.T) {
	net, opts, _ := stagedSetup(t, 10, 1, "muskingum", 1, 1, 5)
	opts.Method, opts.ExcludeSelf = "", true
	r, err := NewRouter(context.Background(), net, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*KernelRouter); !ok {
		t.Fatalf("ExcludeSelf without a method made a %T, want the kernel router", r)
	}
}

type fakeDevice struct{}

func (fakeDevice) NewRouter(context.Context, *Network, Options) (Router, error) { return nil, nil }
