package kernels

import (
	"regexp"
	"strings"
	"testing"
)

// TestLaunchNamedKnowsEveryKernel keeps LaunchNamed's table (and its C++
// dispatcher, which checks the same counts) equal to the kernels' signatures.
func TestLaunchNamedKnowsEveryKernel(t *testing.T) {
	re := regexp.MustCompile(`extern "C" __global__ void (\w+)\(([^)]*)\)`)
	seen := 0
	for _, f := range []string{"bsconv.cu", "bsconv_adj.cu", "transfer.cu", "interp.cu", "prefix.cu", "pairs.cu", "tapgrad.cu"} {
		src, err := Sources.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			seen++
			n := len(strings.Split(m[2], ","))
			if kernelArgs[m[1]] != n {
				t.Errorf("%s: %s takes %d arguments, LaunchNamed's table says %d", f, m[1], n, kernelArgs[m[1]])
			}
		}
	}
	if seen != len(kernelArgs) {
		t.Errorf("%d kernels in the sources, %d in LaunchNamed's table", seen, len(kernelArgs))
	}
	if err := LaunchNamed("dr_nosuch", 1, 1, nil); err == nil {
		t.Error("an unknown kernel was launched")
	}
	if err := LaunchNamed("dr_prefix_jump", 1, 1, make([]uint64, 5)); err == nil {
		t.Error("a launch with a missing argument was accepted")
	}
}
