package download

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/diffroute-go/route/vpu"
)

// fakeHub imitates the Zenodo and Hugging Face endpoints SingleVPU uses, on
// loopback.
type fakeHub struct {
	*httptest.Server
	files  map[string][]byte // repository path ("configs/305/...") or Zenodo file name -> content
	lfs    map[string]bool   // repository paths stored in LFS
	badSHA map[string]bool   // LFS paths listed with a wrong sha256
	extra  []map[string]any  // entries added to the top listing
	zenodo bool              // whether the Zenodo record API answers

	mu   sync.Mutex
	gets []string // paths of file downloads (not API calls)
}

const (
	testRecord  = "17873745"
	testDataset = "prediction2/diffroute_exp"
)

func newFakeHub(t *testing.T, vpu int) *fakeHub {
	t.Helper()
	p := fmt.Sprintf("configs/%d/", vpu)
	h := &fakeHub{
		files: map[string][]byte{
			p + "rapid_connect.csv": []byte("1,2,0,0,0\n2,-1,1,1,0\n"),
			p + "k.csv":             []byte("3600\n7200\n"),
			p + "x.csv":             []byte("0.3\n0.3\n"),
			p + "riv_bas_id.csv":    testData(3000),
			p + "extra/notes.txt":   []byte("nested file\n"),
			fmt.Sprintf("%d_daily_sparse_runoff.feather", vpu): testData(40000),
			fmt.Sprintf("%d_interp_weight.feather", vpu):       testData(20000),
		},
		lfs:    map[string]bool{p + "riv_bas_id.csv": true},
		badSHA: map[string]bool{},
		zenodo: true,
	}
	h.Server = httptest.NewServer(h)
	t.Cleanup(h.Close)
	return h
}

func (h *fakeHub) fileGets() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.gets)
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tree := "/api/datasets/" + testDataset + "/tree/main/"
	resolve := "/datasets/" + testDataset + "/resolve/main/"
	zfiles := "/records/" + testRecord + "/files/"
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, tree):
		h.listing(w, r, strings.TrimPrefix(p, tree))
	case p == "/api/records/"+testRecord:
		if !h.zenodo {
			http.Error(w, "gone", http.StatusGone)
			return
		}
		var files []map[string]any
		for name, b := range h.files {
			if !strings.Contains(name, "/") {
				files = append(files, map[string]any{"key": name, "size": len(b), "checksum": "md5:" + md5Hex(b)})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"id": testRecord, "files": files})
	case strings.HasPrefix(p, resolve), strings.HasPrefix(p, zfiles):
		name := strings.TrimPrefix(strings.TrimPrefix(p, resolve), zfiles)
		b, ok := h.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.mu.Lock()
		h.gets = append(h.gets, name)
		h.mu.Unlock()
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// listing answers the tree API for one folder, one entry per page, so that
// the Link pagination is exercised.
func (h *fakeHub) listing(w http.ResponseWriter, r *http.Request, dir string) {
	var items []map[string]any
	seen := map[string]bool{}
	for name, b := range h.files {
		rest, ok := strings.CutPrefix(name, dir+"/")
		if !ok {
			continue
		}
		if sub, _, nested := strings.Cut(rest, "/"); nested {
			if !seen[sub] {
				seen[sub] = true
				items = append(items, map[string]any{"type": "directory", "path": dir + "/" + sub, "oid": "0", "size": 0})
			}
			continue
		}
		it := map[string]any{"type": "file", "path": name, "oid": "1", "size": len(b)}
		if h.lfs[name] {
			sum := sha256Hex(b)
			if h.badSHA[name] {
				sum = sha256Hex(append(b, 0))
			}
			it["size"] = 134 // size of the LFS pointer, as the Hub reports it
			it["lfs"] = map[string]any{"oid": sum, "size": len(b), "pointerSize": 134}
		}
		items = append(items, it)
	}
	if strings.Count(dir, "/") == 1 {
		items = append(items, h.extra...)
	}
	if len(items) == 0 {
		http.NotFound(w, r)
		return
	}
	slices.SortFunc(items, func(a, b map[string]any) int { return strings.Compare(a["path"].(string), b["path"].(string)) })
	page := 0
	fmt.Sscan(r.URL.Query().Get("cursor"), &page)
	if page+1 < len(items) {
		w.Header().Set("Link", fmt.Sprintf(`<%s?cursor=%d>; rel="next"`, r.URL.Path, page+1))
	}
	json.NewEncoder(w).Encode(items[page : page+1])
}

func (h *fakeHub) source() Source {
	return Source{Zenodo: h.URL, HuggingFace: h.URL + "/"}
}

func TestSingleVPU(t *testing.T) {
	hub := newFakeHub(t, 305)
	root := t.TempDir()
	files, err := SingleVPU(testCtx(t), root, 305, fast(WithSource(hub.source()))...)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "305")
	want := &vpu.Layout{
		VPU:          305,
		Dir:          dir,
		Runoff:       filepath.Join(dir, "305_daily_sparse_runoff.feather"),
		InterpWeight: filepath.Join(dir, "305_interp_weight.feather"),
		ConfigDir:    filepath.Join(dir, "configs"),
	}
	for _, name := range []string{"extra/notes.txt", "k.csv", "rapid_connect.csv", "riv_bas_id.csv", "x.csv"} {
		want.Config = append(want.Config, filepath.Join(dir, "configs", filepath.FromSlash(name)))
	}
	if fmt.Sprint(files) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", files, want)
	}
	for name, b := range hub.files {
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(name, "configs/305/")))
		if strings.HasPrefix(name, "configs/") {
			p = filepath.Join(dir, "configs", filepath.FromSlash(strings.TrimPrefix(name, "configs/305/")))
		}
		wantFile(t, p, b)
	}
	if _, err := os.Stat(filepath.Join(dir, vpu.ManifestName)); err != nil {
		t.Fatal(err)
	}
	if n := len(hub.fileGets()); n != len(hub.files) {
		t.Errorf("%d file downloads, want %d", n, len(hub.files))
	}

	// A second run verifies what is there and downloads nothing; a damaged
	// file is fetched again.
	os.WriteFile(want.Runoff, []byte("damaged"), 0o644)
	rec := &countingProgress{}
	again, err := SingleVPU(testCtx(t), root, 305, fast(WithSource(hub.source()), WithProgress(rec))...)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(want) {
		t.Errorf("second run: %+v", again)
	}
	if got := hub.fileGets()[len(hub.files):]; !slices.Equal(got, []string{"305_daily_sparse_runoff.feather"}) {
		t.Errorf("second run downloaded %q, want only the damaged file", got)
	}
	if rec.starts != len(hub.files) || rec.dones != len(hub.files) {
		t.Errorf("progress saw %d starts, %d dones, want %d", rec.starts, rec.dones, len(hub.files))
	}

	// Offline, the manifest stands in for the listing.
	hub.Close()
	offline, err := SingleVPU(testCtx(t), root, 305, fast(WithSource(hub.source()), WithRetries(0))...)
	if err != nil {
		t.Fatalf("offline run: %v", err)
	}
	if fmt.Sprint(offline) != fmt.Sprint(want) {
		t.Errorf("offline run: %+v", offline)
	}
	// ... but not when a file is missing.
	os.Remove(want.InterpWeight)
	if _, err := SingleVPU(testCtx(t), root, 305, fast(WithSource(hub.source()), WithRetries(0))...); err == nil {
		t.Error("offline run with a missing file succeeded")
	}
}

type countingProgress struct{ starts, dones int }

func (c *countingProgress) Start(string, int64) { c.starts++ }
func (c *countingProgress) Update(int64)        {}
func (c *countingProgress) Done(error)          { c.dones++ }

func TestSingleVPUWithoutZenodoAPI(t *testing.T) {
	hub := newFakeHub(t, 7)
	hub.zenodo = false
	root := t.TempDir()
	files, err := SingleVPU(testCtx(t), root, 7, fast(WithSource(hub.source()))...)
	if err != nil {
		t.Fatal(err)
	}
	wantFile(t, files.Runoff, hub.files["7_daily_sparse_runoff.feather"])
}

func TestSingleVPUBadLFSChecksum(t *testing.T) {
	hub := newFakeHub(t, 305)
	hub.badSHA["configs/305/riv_bas_id.csv"] = true
	root := t.TempDir()
	_, err := SingleVPU(testCtx(t), root, 305, fast(WithSource(hub.source()))...)
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("got %v, want ErrChecksum", err)
	}
	p := filepath.Join(root, "305", "configs", "riv_bas_id.csv")
	wantAbsent(t, p)
	wantAbsent(t, p+".part")
	wantAbsent(t, filepath.Join(root, "305", vpu.ManifestName))
}

func TestSingleVPUHostileListing(t *testing.T) {
	for _, path := range []string{"configs/305/../../../evil", "configs/3050/x", "configs/305//x", "elsewhere/x"} {
		hub := newFakeHub(t, 305)
		hub.extra = []map[string]any{{"type": "file", "path": path, "size": 1}}
		root := t.TempDir()
		if _, err := SingleVPU(testCtx(t), root, 305, fast(WithSource(hub.source()))...); err == nil {
			t.Errorf("listing with %q accepted", path)
		}
		if n := len(hub.fileGets()); n != 0 {
			t.Errorf("listing with %q: %d downloads before the listing was rejected", path, n)
		}
	}
}

func TestSingleVPUListingErrors(t *testing.T) {
	hub := newFakeHub(t, 305)
	if _, err := SingleVPU(testCtx(t), t.TempDir(), 999, fast(WithSource(hub.source()))...); err == nil {
		t.Error("unknown VPU: want an error")
	}
	if _, err := SingleVPU(testCtx(t), t.TempDir(), 0, fast(WithSource(hub.source()))...); err == nil {
		t.Error("VPU 0: want an error")
	}
}

func TestNextLink(t *testing.T) {
	for _, tc := range []struct{ base, header, want string }{
		{"https://h/api/x", "", ""},
		{"https://h/api/x", `<https://h/api/x?cursor=abc>; rel="next"`, "https://h/api/x?cursor=abc"},
		{"https://h/api/x", `</api/x?cursor=2>; rel="prev", </api/x?cursor=4>; rel=next`, "https://h/api/x?cursor=4"},
		{"https://h/api/x", `<https://h/a>; rel="first"`, ""},
	} {
		got, err := nextLink(tc.base, tc.header)
		if err != nil || got != tc.want {
			t.Errorf("nextLink(%q, %q) = %q, %v; want %q", tc.base, tc.header, got, err, tc.want)
		}
	}
}

func TestZenodoShapes(t *testing.T) {
	for _, body := range []string{
		`{"files":[{"key":"a.feather","size":3,"checksum":"md5:900150983cd24fb0d6963f7d28e17f72"}]}`,
		`{"files":{"enabled":true,"entries":[{"key":"a.feather","size":3,"checksum":"md5:900150983cd24fb0d6963f7d28e17f72"}]}}`,
		`{"files":{"entries":{"a.feather":{"size":3,"checksum":"md5:900150983cd24fb0d6963f7d28e17f72"}}}}`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
		c := newConfig(fast(WithSource(Source{Zenodo: srv.URL})))
		got, err := c.zenodoFiles(testCtx(t))
		srv.Close()
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if f := got["a.feather"]; f.Size != 3 || f.md5 != "900150983cd24fb0d6963f7d28e17f72" {
			t.Errorf("%s: got %+v", body, got)
		}
	}
}
