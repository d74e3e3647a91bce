package pipeline

import (
	"strings"
	"testing"
	"time"
)

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// The sub-steps suggested for one that does not divide the step are the
// nearest whole-second divisors, one longer and one shorter.
func TestSuggestSubSteps(t *testing.T) {
	for _, c := range []struct {
		step, sub float64
		want      string
	}{{10800, 1000, "900 1080"}, {86400, 3599, "3456 3600"}, {3600, 3600.5, "3600"}, {10.5, 2, ""}} {
		got := strings.Join(suggestSubSteps(secs(c.step), secs(c.sub)), " ")
		if got != c.want {
			t.Errorf("step %v sub %v: suggestions %q, want %q", c.step, c.sub, got, c.want)
		}
	}
}
