package main

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
)

const xx9 = "../../testdata/rapid_xx9"

// maxRelDiff is the largest |got - want| relative to max(|got|, |want|)
// over values above 1e-6 of want's peak, matching reaches by id.
func maxRelDiff(t *testing.T, got, want *diffroute.DataTensor) float64 {
	t.Helper()
	if got.T != want.T || got.N != want.N {
		t.Fatalf("got %d reaches x %d steps, want %d x %d", got.N, got.T, want.N, want.T)
	}
	var peak float64
	for _, v := range want.Data {
		peak = max(peak, math.Abs(float64(v)))
	}
	row := make(map[int64]int, want.N)
	for i, id := range want.IDs {
		row[id] = i
	}
	var worst float64
	for i, id := range got.IDs {
		j, ok := row[id]
		if !ok {
			t.Fatalf("reach %d not in the reference", id)
		}
		for s := range got.T {
			a, b := float64(got.At(0, i, s)), float64(want.At(0, j, s))
			if m := max(math.Abs(a), math.Abs(b)); m > 1e-6*peak {
				worst = max(worst, math.Abs(a-b)/m)
			}
		}
	}
	return worst
}

// TestRAPIDQout checks the reference loop against RAPID's own output on the
// real 9-reach basin (its Qout averages the values at sub-step starts).
func TestRAPIDQout(t *testing.T) {
	out := filepath.Join(t.TempDir(), "q.nc")
	runoff := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	if err := run([]string{"--rapid", xx9, "--runoff", runoff, "--substep", "900", "--out", out}); err != nil {
		t.Fatal(err)
	}
	got, err := data.ReadRunoffNC(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := data.ReadRunoffNC(filepath.Join(xx9, "Qout_erai_t511_3hr_20030121to20030122.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRelDiff(t, got, want); d > 1e-5 {
		t.Errorf("refroute vs RAPID's Qout: max relative difference %.3g, want <= 1e-5", d)
	}
}

// TestMatchesDiffroute checks both averaging conventions against the
// library's recursive router, through the same files.
func TestMatchesDiffroute(t *testing.T) {
	dir := t.TempDir()
	runoff := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	for _, avg := range []diffroute.Average{diffroute.AverageStart, diffroute.AverageEnd} {
		ref, lib := filepath.Join(dir, "ref_"+string(avg)+".nc"), filepath.Join(dir, "lib_"+string(avg)+".nc")
		if err := run([]string{"--rapid", xx9, "--runoff", runoff, "--substep", "900", "--average", string(avg), "--out", ref}); err != nil {
			t.Fatal(err)
		}
		cfg := pipeline.Config{RAPID: xx9, Runoff: runoff, Out: lib, SubStep: 900e9,
			Options: diffroute.Options{Method: diffroute.Recursive, Average: avg}}
		if _, err := pipeline.Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		got, err := data.ReadRunoffNC(ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		want, err := data.ReadRunoffNC(lib, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxRelDiff(t, got, want); d > 2e-6 {
			t.Errorf("--average %s: refroute vs diffroute: max relative difference %.3g, want <= 2e-6", avg, d)
		}
	}
}
