package basins

import (
	"os"
	"path/filepath"
	"testing"
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
