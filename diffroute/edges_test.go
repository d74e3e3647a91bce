package diffroute

import (
	"context"
	"strings"
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
		if _, err := NewRecursiveRouter(net, c.o); err == nil || !strings.Contains(err.Error(), c.want) {
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
