package pipeline

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// A run in the router's order moves the parameters into that order while
// routing: the result still holds them in network order, as a run in
// memory does, and every parameter comes back as it was (one without a
// value per reach untouched, for the router to refuse).
func TestInOrderRunKeepsParams(t *testing.T) {
	ctx := context.Background()
	base := Config{RAPID: xx9, Runoff: xx9Runoff, SubStep: 15 * time.Minute}
	whole, err := Run(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	c := base
	c.Out, c.InPlace = filepath.Join(t.TempDir(), "q.nc"), true
	res, err := Run(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Runoff != nil || res.Discharge == nil {
		t.Fatal("the run was not routed in place")
	}
	for _, name := range []string{"k", "x"} {
		if got, want := res.Options.Params[name], whole.Options.Params[name]; len(want) == 0 || !slices.Equal(got, want) {
			t.Errorf("parameter %s after an in-place run differs from the run in memory's", name)
		}
	}

	p := diffroute.Params{"a": {1, 2, 3, 4}, "short": {7, 8}}
	order := []int32{2, 0, 3, 1}
	q, restore := moveParams(p, order)
	if !slices.Equal(q["a"], []float64{3, 1, 4, 2}) || !slices.Equal(q["short"], []float64{7, 8}) || p["a"] != nil {
		t.Fatalf("moved %v, left %v", q, p)
	}
	restore()
	if !slices.Equal(p["a"], []float64{1, 2, 3, 4}) || !slices.Equal(p["short"], []float64{7, 8}) {
		t.Fatalf("restored %v", p)
	}
}
