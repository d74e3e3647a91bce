package vpu

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLayout(t *testing.T) {
	root := t.TempDir()
	l := Of(root, 305)
	if l.Runoff != filepath.Join(root, "305", "305_daily_sparse_runoff.feather") || l.ConfigDir != filepath.Join(root, "305", "configs") {
		t.Errorf("layout %+v", l)
	}
	if l.Exists() {
		t.Error("an empty folder exists")
	}
	os.MkdirAll(l.ConfigDir, 0o755)
	for _, p := range []string{l.Runoff, l.InterpWeight, filepath.Join(l.ConfigDir, "rapid_connect.csv"), filepath.Join(l.ConfigDir, "k.csv")} {
		os.WriteFile(p, []byte("x"), 0o644)
	}
	if l.Exists() {
		t.Error("exists without x.csv")
	}
	os.WriteFile(filepath.Join(l.ConfigDir, "x.csv"), []byte("x"), 0o644)
	if !l.Exists() {
		t.Error("a complete layout does not exist")
	}
}
