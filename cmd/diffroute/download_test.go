package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// vpuServer serves VPU 305 the way Hugging Face (tree API, resolve) and
// Zenodo (files; no record API: sizes come from Content-Length) do, on
// loopback, counting the file requests and the ranged ones.
type vpuServer struct {
	*httptest.Server
	files        map[string][]byte // path under configs/305/ or Zenodo file name
	mu           sync.Mutex
	gets, ranges int
}

func newVPUServer(t *testing.T) *vpuServer {
	big := make([]byte, 300_000)
	for i := range big {
		big[i] = byte(i * 7)
	}
	s := &vpuServer{files: map[string][]byte{
		"configs/305/rapid_connect.csv":   []byte("1,2,0,0,0\n2,-1,1,1,0\n"),
		"configs/305/k.csv":               []byte("3600\n7200\n"),
		"305_daily_sparse_runoff.feather": big,
		"305_interp_weight.feather":       big[:1000],
	}}
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

func (s *vpuServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const ds = "prediction2/diffroute_exp"
	p := r.URL.Path
	if dir, ok := strings.CutPrefix(p, "/api/datasets/"+ds+"/tree/main/"); ok {
		var items []map[string]any
		for name, b := range s.files {
			if strings.HasPrefix(name, dir+"/") {
				items = append(items, map[string]any{"type": "file", "path": name, "oid": "1", "size": len(b)})
			}
		}
		json.NewEncoder(w).Encode(items)
		return
	}
	name, ok := strings.CutPrefix(p, "/datasets/"+ds+"/resolve/main/")
	if !ok {
		name, ok = strings.CutPrefix(p, "/records/17873745/files/")
	}
	b, found := s.files[name]
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	s.gets++
	if r.Header.Get("Range") != "" {
		s.ranges++
	}
	s.mu.Unlock()
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

func (s *vpuServer) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets, s.ranges
}

// download vpu fetches every file with a progress bar, skips what is there
// on a second run, resumes a partial file with a Range request, says plainly
// when the host cannot be reached, and download url refuses a file whose
// digest differs, leaving nothing.
func TestDownloadVPU(t *testing.T) {
	srv := newVPUServer(t)
	dir := t.TempDir()
	var bar bytes.Buffer
	progressOut = &bar
	defer func() { progressOut = os.Stderr }()
	args := []string{"download", "vpu", "305", "--out", dir, "--zenodo", srv.URL, "--huggingface", srv.URL, "--retries", "0"}
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range srv.files {
		got, err := os.ReadFile(filepath.Join(dir, "305", strings.TrimPrefix(name, "configs/305/")))
		if strings.HasPrefix(name, "configs/") {
			got, err = os.ReadFile(filepath.Join(dir, "305", "configs", strings.TrimPrefix(name, "configs/305/")))
		}
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(got), err, len(b))
		}
	}
	if !strings.Contains(out, "VPU 305 in") || !strings.Contains(out, "--pixel-runoff") {
		t.Errorf("report:\n%s", out)
	}
	if !strings.Contains(bar.String(), "✔ 305_daily_sparse_runoff.feather: 293 KiB") {
		t.Errorf("progress:\n%s", bar.String())
	}
	gets, _ := srv.counts()
	if _, err := runCLI(t, args...); err != nil {
		t.Fatal(err)
	}
	if again, _ := srv.counts(); again != gets {
		t.Errorf("a second run fetched %d files again", again-gets)
	}
	// An interrupted transfer: half the runoff file in its .part.
	feather := filepath.Join(dir, "305", "305_daily_sparse_runoff.feather")
	os.Remove(feather)
	os.WriteFile(feather+".part", srv.files["305_daily_sparse_runoff.feather"][:150_000], 0o644)
	if _, err := runCLI(t, args...); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(feather); !bytes.Equal(got, srv.files["305_daily_sparse_runoff.feather"]) {
		t.Error("the resumed file differs")
	}
	if _, ranges := srv.counts(); ranges != 1 {
		t.Errorf("%d ranged requests, want 1 (the resume)", ranges)
	}
	// A wrong digest: an error, and no file.
	bad := filepath.Join(dir, "k.csv")
	_, err = runCLI(t, "download", "url", srv.URL+"/datasets/prediction2/diffroute_exp/resolve/main/configs/305/k.csv",
		"--sha256", strings.Repeat("ab", 32), "--out", bad, "--retries", "0", "--quiet")
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("wrong digest: %v", err)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("a file that failed its checksum was left")
	}
	// Offline: nothing listens any more.
	srv.Close()
	_, err = runCLI(t, "download", "vpu", "306", "--out", dir, "--zenodo", srv.URL, "--huggingface", srv.URL, "--retries", "0", "--quiet")
	if err == nil || !strings.Contains(err.Error(), "cannot reach 127.0.0.1") || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline: %v", err)
	}
	for _, bad := range [][]string{{"download", "vpu", "x", "--out", dir}, {"download", "vpu", "305"}, {"download", "fetch", "305", "--out", dir}} {
		if _, err := runCLI(t, bad...); err == nil {
			t.Errorf("%v: no error", bad)
		} else if _, ok := err.(usageError); !ok {
			t.Errorf("%v: %v is not a usage error", bad, err)
		}
	}
}
