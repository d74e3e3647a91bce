package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffroute-go/route/data"
)

// bench --global routes whatever case its cache folder holds (generating
// the 6.84 M-reach one only when the folder has none): on a small cached
// case it must time every phase and write a Qout.nc equal to route's.
func TestBenchGlobalCached(t *testing.T) {
	dir := t.TempDir()
	if _, err := runCLI(t, "generate", "--out", dir, "--reaches", "300", "--days", "5"); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "bench", "--global", "--cache", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"global: 300 reaches x 5 steps x 24 sub-steps", "set-up", "read runoff", "route", "write Qout.nc", "peak RSS"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "generating") {
		t.Fatalf("regenerated a cached case:\n%s", out)
	}
	ref := filepath.Join(t.TempDir(), "Qout.nc")
	if _, err := runCLI(t, "route", "--rapid", dir, "--runoff", filepath.Join(dir, "runoff.nc"), "--substep", "3600", "--out", ref); err != nil {
		t.Fatal(err)
	}
	got, err := data.ReadSeries(filepath.Join(dir, "Qout.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := data.ReadSeries(ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Data) != len(want.Data) || len(got.Data) == 0 {
		t.Fatalf("Qout has %d values, route wrote %d", len(got.Data), len(want.Data))
	}
	for k := range want.Data {
		if got.Data[k] != want.Data[k] {
			t.Fatalf("Qout value %d = %v, route wrote %v", k, got.Data[k], want.Data[k])
		}
	}
}
