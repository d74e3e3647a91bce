package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/data"
)

// Probes of a hostile user that once passed silently or spoke Go.
func TestRouteHardening(t *testing.T) {
	dir := t.TempDir()
	runoff := filepath.Join(demoBasin, "runoff.nc")
	x, err := data.ReadRunoffNC(runoff, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An uneven time coordinate: one day missing.
	uneven := x.SliceTime(0, 20)
	t5, _ := data.ParseTime(uneven.Times[5])
	for k := 5; k < 20; k++ {
		uneven.Times[k] = data.FormatTime(t5.Add(time.Duration(k-4) * 24 * time.Hour))
	}
	unevenPath := filepath.Join(dir, "uneven.nc")
	if err := data.WriteQoutNC(unevenPath, uneven, &data.QoutOptions{Var: "runoff"}); err != nil {
		t.Fatal(err)
	}
	base := []string{"route", "--quiet", "--rapid", demoBasin, "--out", filepath.Join(dir, "q.nc")}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"step 0", []string{"--runoff", runoff, "--step", "0"}, "--step 0"},
		{"substep 0", []string{"--runoff", runoff, "--substep", "0"}, "--substep 0"},
		{"uneven times with --step", []string{"--runoff", unevenPath, "--step", "86400"}, "uneven"},
		{"--step against the file's step", []string{"--runoff", runoff, "--step", "3600"}, "steps of 24h"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := runCLI(t, append(append([]string{}, base...), c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	// Ctrl-C: the error says interrupted, not "context canceled".
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = run(ctx, append(append([]string{}, base...), "--runoff", runoff, "--time-chunk", "30"), &strings.Builder{})
	if err == nil || strings.Contains(err.Error(), "context") || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("cancelled run: %v", err)
	}
}
