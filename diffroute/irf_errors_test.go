package diffroute

import (
	"strings"
	"testing"
)

// Parameter errors name the reach and the IRF once.
func TestIRFErrorsNameReachAndIRFOnce(t *testing.T) {
	net, err := NewNetwork([]int64{7, 8}, []int64{8, 0})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{IRF: "muskingum", Params: Params{"k": {0.3, -1}, "x": {0.2, 0.2}}}, "reach 8: muskingum k = -1 must be ≥ 0"},
		{Options{IRF: "linear_storage", Params: Params{"tau": {-2, 1}}}, "reach 7: linear_storage: tau = -2 must be finite and ≥ 0"},
		{Options{IRF: "pure_lag", Params: Params{"delay": {1, 100}}, Method: Kernel, MaxDelay: 8}, "(Options.MaxDelay; --max-delay in the CLI)"},
	} {
		_, err := NewRouter(t.Context(), net, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), c.o.IRF+": "+c.o.IRF) {
			t.Errorf("%s: %v, want %q once", c.o.IRF, err, c.want)
		}
	}
	if _, err := LookupIRF("nosuch"); err == nil || strings.Contains(err.Error(), "[") {
		t.Errorf("unknown IRF: %v (want a plain list of names)", err)
	}
}
