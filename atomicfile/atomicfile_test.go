package atomicfile

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A failed write leaves the old content and no temporary file; a good one
// replaces the content, readable by all.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.csv")
	if err := WriteBytes(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, func(tmp string) error {
		os.WriteFile(tmp, []byte("half"), 0o644)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("after a failed write: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files left, want 1", len(entries))
	}
	if err := WriteBytes(path, []byte("new")); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "new" || st.Mode().Perm() != 0o644 {
		t.Errorf("content %q, mode %v", b, st.Mode())
	}
}

// A streaming writer fills CreateTemp's file and Commit publishes it; a
// Commit that cannot rename leaves neither the temporary file nor a change.
func TestCreateTempCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "q.csv")
	f, err := CreateTemp(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("streamed")
	f.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("output visible before Commit: %v", err)
	}
	if err := Commit(f.Name(), path); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if b, _ := os.ReadFile(path); string(b) != "streamed" || st.Mode().Perm() != 0o644 {
		t.Errorf("content %q, mode %v", b, st.Mode())
	}
	sub := filepath.Join(dir, "sub")
	os.MkdirAll(filepath.Join(sub, "keep"), 0o755) // a non-empty folder: rename onto it fails
	g, err := CreateTemp(sub)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if err := Commit(g.Name(), sub); err == nil {
		t.Fatal("renaming over a non-empty folder succeeded")
	}
	if _, err := os.Stat(g.Name()); !os.IsNotExist(err) {
		t.Errorf("temporary file left after a failed Commit: %v", err)
	}
}

// Temporary files of dead writers on this host are removed by the next
// writer; those of live writers and of other hosts (a shared file system)
// stay.
func TestStaleTemps(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	pid := strconv.Itoa(dead.Process.Pid)
	stale := filepath.Join(dir, ".q.nc.tmp-"+pid+"-"+hostTag()+"-1")
	legacy := filepath.Join(dir, ".q.nc.tmp-"+pid+"-2")
	live := filepath.Join(dir, ".q.nc.tmp-"+strconv.Itoa(os.Getppid())+"-"+hostTag()+"-3")
	remote := filepath.Join(dir, ".q.nc.tmp-"+pid+"-h00000000-4")
	if hostTag() == "h00000000" {
		remote = filepath.Join(dir, ".q.nc.tmp-"+pid+"-h00000001-4")
	}
	for _, p := range []string{stale, legacy, live, remote} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteBytes(filepath.Join(dir, "q.nc"), []byte("q")); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{stale: false, legacy: false, live: true, remote: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
