package main

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/diffroute-go/route/data"
)

// TestRouteInOrderMatchesNetworkOrder: a plain run written to a file is
// routed in the router's own order, in place; on a generated basin (reaches
// shuffled, as real files come) its Qout must list the reaches in
// riv_bas_id order and agree with a time-chunked run (network order,
// another code path) and with --outputs on a few reaches, to float32
// rounding.
func TestRouteInOrderMatchesNetworkOrder(t *testing.T) {
	dir := t.TempDir()
	basin := filepath.Join(dir, "b")
	if _, err := runCLI(t, "generate", "--out", basin, "--reaches", "3000", "--days", "20", "--seed", "4"); err != nil {
		t.Fatal(err)
	}
	base := []string{"route", "--quiet", "--rapid", basin, "--runoff", filepath.Join(basin, "runoff.nc"), "--substep", "3600"}
	for _, extra := range [][]string{{"--out", filepath.Join(dir, "plain.nc")}, {"--out", filepath.Join(dir, "chunked.nc"), "--time-chunk", "6"}} {
		if _, err := runCLI(t, append(slices.Clone(base), extra...)...); err != nil {
			t.Fatal(err)
		}
	}
	plain, err := data.ReadRunoffNC(filepath.Join(dir, "plain.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	chunked, err := data.ReadRunoffNC(filepath.Join(dir, "chunked.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := data.ReadRAPID(basin)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plain.IDs, cfg.Network.IDs()) || !slices.Equal(chunked.IDs, cfg.Network.IDs()) {
		t.Fatal("Qout reaches are not in riv_bas_id order")
	}
	if !slices.Equal(plain.Times, chunked.Times) {
		t.Fatal("time labels differ")
	}
	worst := 0.0
	for i := 0; i < plain.N; i++ {
		p, c := plain.Series(0, i), chunked.Series(0, i)
		peak := 0.0
		for _, v := range c {
			peak = max(peak, math.Abs(float64(v)))
		}
		for s := range p {
			if d := math.Abs(float64(p[s] - c[s])); d > 0 {
				worst = max(worst, d/peak)
			}
		}
	}
	t.Logf("routed in order vs time-chunked in network order: %.3g of a reach's peak at most", worst)
	if worst > 2e-6 {
		t.Fatalf("routed in order differs from the time-chunked run by %.3g of a reach's peak", worst)
	}
}
