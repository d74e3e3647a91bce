package basins

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/diffroute-go/route/data"
)

// TestGenerateWorld checks a generated world: the requested number of
// basins and reaches, different sizes, ids unique across basins.
func TestGenerateWorld(t *testing.T) {
	dir := t.TempDir()
	if p := os.Getenv("BASINS_WORLD_DIR"); p != "" {
		dir = p
	}
	sizes, err := GenerateWorld(dir, WorldOptions{Basins: 5, Reaches: 3000, Days: 30, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	total, lo, hi := 0, sizes[0], sizes[0]
	for _, n := range sizes {
		total += n
		lo, hi = min(lo, n), max(hi, n)
	}
	if total != 3000 || hi < 5*lo {
		t.Fatalf("sizes %v: want 3000 reaches, largest ≥ 5× smallest", sizes)
	}
	list, err := Discover(dir)
	if err != nil || len(list) != 5 {
		t.Fatalf("Discover: %v, %d basins", err, len(list))
	}
	if _, err := os.Stat(filepath.Join(dir, "basin_001", "runoff.nc")); err != nil {
		t.Fatal(err)
	}
}

// TestCombineWorld: the combined folder routes like the basins (checked
// at scale in BENCHMARKS.md); here, it holds every reach once.
func TestCombineWorld(t *testing.T) {
	dir := t.TempDir()
	if _, err := GenerateWorld(dir, WorldOptions{Basins: 3, Reaches: 900, Days: 5, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	one := filepath.Join(t.TempDir(), "one")
	if err := CombineWorld(dir, one); err != nil {
		t.Fatal(err)
	}
	cfg, err := data.ReadRAPID(one)
	if err != nil {
		t.Fatal(err)
	}
	x, err := data.ReadRunoffNC(filepath.Join(one, "runoff.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Network.Len() != 900 || x.N != 900 || x.T != 5 {
		t.Fatalf("combined: %d reaches, runoff %d × %d", cfg.Network.Len(), x.N, x.T)
	}
}
