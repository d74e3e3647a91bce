package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffroute-go/route/data"
)

// Routing pixel runoff interpolated on the fly equals routing the catchment
// runoff file made from the same pixels, whole and streamed in chunks.
func TestRoutePixelRunoff(t *testing.T) {
	root := t.TempDir()
	vpu, err := data.GenerateVPUSample(root, data.SampleOptions{VPU: 7, Reaches: 600, Days: 90, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	in, pr, err := data.OpenInterpolator(vpu.Runoff, vpu.InterpWeight, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := data.ReadRAPID(vpu.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	catch := filepath.Join(root, "runoff.nc")
	err = data.InterpolateToNC(context.Background(), catch, in, cfg.Network.IDs())
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"route", "--quiet", "--rapid", vpu.ConfigDir, "--substep", "3600"}
	want := filepath.Join(root, "want.nc")
	if _, err := runCLI(t, append(base, "--runoff", catch, "--out", want)...); err != nil {
		t.Fatal(err)
	}
	for name, extra := range map[string][]string{
		"whole":    {},
		"streamed": {"--time-chunk", "17", "--max-nodes", "150"},
	} {
		out := filepath.Join(root, name+".nc")
		args := append(append(base, "--pixel-runoff", vpu.Runoff, "--weights", vpu.InterpWeight, "--out", out), extra...)
		if _, err := runCLI(t, args...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e := maxRelDiff(t, readQ(t, out), readQ(t, want)); e > 1e-6 {
			t.Errorf("%s: pixel routing differs from catchment routing by %.3g", name, e)
		}
	}
	// --pixel-runoff without weights, or with --runoff too, is a usage error.
	_, err = runCLI(t, append(base, "--pixel-runoff", vpu.Runoff, "--out", filepath.Join(root, "x.nc"))...)
	if err == nil || !strings.Contains(err.Error(), "--weights") {
		t.Errorf("missing --weights: %v", err)
	}
}
