package download

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fault is what the test server does to one request.
type fault int

const (
	serve       fault = iota // answer correctly, honouring Range
	drop                     // send half of the body, then cut the connection
	lieLong                  // announce 100 bytes more than it sends
	lieShort                 // announce (and send) 10 bytes fewer than the body
	unavailable              // 503 with Retry-After: 0
	notFound                 // 404
	corrupt                  // flip one byte in the middle of the body
	ignoreRange              // answer 200 with the whole file whatever the Range
	stall                    // send half of the body, then hang until the client leaves
	tooLong                  // append junk to the body, with a matching Content-Length
)

// faultServer serves one file on loopback, applying script[i] to the i-th
// request (then `then` to all later ones), and records each Range header.
type faultServer struct {
	*httptest.Server
	data []byte

	mu      sync.Mutex
	script  []fault
	then    fault
	ranges  []string
	stalled chan struct{}
}

func newFaultServer(t *testing.T, data []byte, then fault, script ...fault) *faultServer {
	t.Helper()
	s := &faultServer{data: data, script: script, then: then, stalled: make(chan struct{})}
	s.Server = httptest.NewServer(s)
	t.Cleanup(s.Close)
	return s
}

func (s *faultServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

func (s *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	i := len(s.ranges)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	f := s.then
	if i < len(s.script) {
		f = s.script[i]
	}
	s.mu.Unlock()

	switch f {
	case unavailable:
		w.Header().Set("Retry-After", "0")
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	case notFound:
		http.NotFound(w, r)
		return
	}

	start := 0
	if rng := r.Header.Get("Range"); rng != "" && f != ignoreRange {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-"))
		if err != nil {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		if n >= len(s.data) {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(s.data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		start = n
	}
	body := bytes.Clone(s.data[start:])
	switch f {
	case corrupt:
		body[len(body)/2] ^= 0x5a
	case tooLong:
		body = append(body, "junk"...)
	}
	announced := len(body)
	switch f {
	case lieLong:
		announced += 100
	case lieShort:
		announced -= 10
		body = body[:announced]
	}
	w.Header().Set("Content-Length", strconv.Itoa(announced))
	w.Header().Set("ETag", `"v1"`)
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(s.data)-1, len(s.data)))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.WriteHeader(http.StatusOK)
	}
	switch f {
	case drop:
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	case stall:
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		close(s.stalled)
		<-r.Context().Done()
	default:
		w.Write(body)
	}
}

func testData(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// fast are options that keep retries quick in tests.
func fast(extra ...Option) []Option {
	return append([]Option{WithBackoff(time.Millisecond, 4*time.Millisecond), WithRetries(3)}, extra...)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantFile checks that path holds exactly want.
func wantFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading result: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (sha256 %s), want %d bytes (sha256 %s)", path, len(got), sha256Hex(got)[:12], len(want), sha256Hex(want)[:12])
	}
}

func wantAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s should not exist (stat error %v)", path, err)
	}
}

const size = 256 << 10

func TestFetchFaults(t *testing.T) {
	data := testData(size)
	sum := sha256Hex(data)
	half := fmt.Sprintf("bytes=%d-", size/2)
	for _, tc := range []struct {
		name       string
		script     []fault
		then       fault
		opts       []Option
		wantRanges []string // Range header of each request; nil: don't check
		wantErr    error    // nil: want success
		wantPart   bool     // on error: whether dst+".part" is kept for a later resume
	}{
		{name: "clean", wantRanges: []string{""}},
		{name: "clean/sha256", opts: []Option{WithSHA256(sum)}, wantRanges: []string{""}},
		{name: "clean/md5", opts: []Option{WithMD5(md5Hex(data))}, wantRanges: []string{""}},
		{name: "clean/checksum-string", opts: []Option{WithChecksum("md5:" + md5Hex(data)), WithSize(size)}, wantRanges: []string{""}},
		{name: "drop/resumes", script: []fault{drop}, opts: []Option{WithSHA256(sum)}, wantRanges: []string{"", half}},
		{name: "drop/no-checksum", script: []fault{drop}, wantRanges: []string{"", half}},
		// Every answer is cut short: the kept bytes grow until no progress is
		// possible, then Fetch gives up and keeps them for a later call.
		{name: "drop/always", then: drop, opts: []Option{WithSize(size)}, wantErr: io.ErrUnexpectedEOF, wantPart: true},
		{name: "drop-twice", script: []fault{drop, drop}, opts: []Option{WithSize(size)}, wantRanges: []string{"", half, fmt.Sprintf("bytes=%d-", size/2+size/4)}},
		// The whole body arrives, then the connection ends early; the resumed
		// request meets 416 with the true size, and the digest decides.
		{name: "lie-long/resumes", script: []fault{lieLong}, opts: []Option{WithSHA256(sum)}, wantRanges: []string{"", fmt.Sprintf("bytes=%d-", size)}},
		{name: "lie-long/always", then: lieLong, opts: []Option{WithSize(size)}, wantErr: ErrSize},
		// The announced size contradicts the expected one: start over.
		{name: "lie-short/size-known", script: []fault{lieShort}, opts: []Option{WithSize(size)}, wantRanges: []string{"", ""}},
		{name: "lie-short/sha256", script: []fault{lieShort}, opts: []Option{WithSHA256(sum)}, wantRanges: []string{"", ""}},
		{name: "lie-short/always", then: lieShort, opts: []Option{WithSHA256(sum)}, wantErr: ErrChecksum},
		{name: "5xx-then-ok", script: []fault{unavailable, unavailable}, wantRanges: []string{"", "", ""}},
		{name: "5xx-always", then: unavailable, wantErr: &StatusError{}, wantRanges: []string{"", "", "", ""}},
		{name: "404", then: notFound, wantErr: &StatusError{}, wantRanges: []string{""}},
		{name: "corrupt/sha256", script: []fault{corrupt}, opts: []Option{WithSHA256(sum)}, wantRanges: []string{"", ""}},
		{name: "corrupt/md5", script: []fault{corrupt}, opts: []Option{WithMD5(md5Hex(data))}, wantRanges: []string{"", ""}},
		{name: "corrupt-after-resume", script: []fault{drop, corrupt}, opts: []Option{WithSHA256(sum)}, wantRanges: []string{"", half, ""}},
		{name: "corrupt/always", then: corrupt, opts: []Option{WithSHA256(sum)}, wantErr: ErrChecksum},
		{name: "range-ignored", script: []fault{drop, ignoreRange}, opts: []Option{WithSHA256(sum)}, wantRanges: []string{"", half}},
		{name: "range-ignored/no-checksum", script: []fault{drop, ignoreRange}, wantRanges: []string{"", half}},
		{name: "too-long/size-known", script: []fault{tooLong}, opts: []Option{WithSize(size)}, wantRanges: []string{"", ""}},
		{name: "too-long/sha256", script: []fault{tooLong}, opts: []Option{WithSHA256(sum)}, wantRanges: []string{"", ""}},
		{name: "wrong-expected-size", opts: []Option{WithSize(size + 1)}, wantErr: ErrSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFaultServer(t, data, tc.then, tc.script...)
			dst := filepath.Join(t.TempDir(), "sub", "file.bin")
			rec := &recorder{}
			err := Fetch(testCtx(t), srv.URL+"/file.bin", dst, fast(append(tc.opts, WithProgress(rec))...)...)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				wantFile(t, dst, data)
				wantAbsent(t, dst+".part")
			} else {
				if err == nil {
					t.Fatal("Fetch succeeded, want an error")
				}
				var se *StatusError
				if _, isStatus := tc.wantErr.(*StatusError); isStatus && !errors.As(err, &se) {
					t.Fatalf("error %v, want a *StatusError", err)
				} else if !isStatus && !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				wantAbsent(t, dst)
				if _, statErr := os.Stat(dst + ".part"); (statErr == nil) != tc.wantPart {
					t.Errorf("temporary file present: %v, want %v", statErr == nil, tc.wantPart)
				}
			}
			if tc.wantRanges != nil {
				if got := srv.requests(); !slicesEqual(got, tc.wantRanges) {
					t.Errorf("Range headers %q, want %q", got, tc.wantRanges)
				}
			}
			rec.check(t, err, size)
		})
	}
}

func slicesEqual(a, b []string) bool {
	return len(a) == len(b) && strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// recorder is a Progress that checks the call protocol.
type recorder struct {
	mu     sync.Mutex
	starts int
	total  int64
	last   int64
	dones  int
	err    error
	bad    []string
}

func (r *recorder) Start(name string, total int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts++
	r.total = total
	if name == "" {
		r.bad = append(r.bad, "empty name")
	}
}

func (r *recorder) Update(done int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.starts != 1 || r.dones != 0 {
		r.bad = append(r.bad, "Update outside Start..Done")
	}
	r.last = done
}

func (r *recorder) Done(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dones++
	r.err = err
}

func (r *recorder) check(t *testing.T, err error, size int64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.starts != 1 || r.dones != 1 {
		t.Errorf("progress: %d Start and %d Done calls, want 1 and 1", r.starts, r.dones)
	}
	if r.err != err {
		t.Errorf("progress: Done(%v), want Done(%v)", r.err, err)
	}
	if err == nil && r.last != size {
		t.Errorf("progress: last Update(%d), want %d", r.last, size)
	}
	for _, b := range r.bad {
		t.Error("progress:", b)
	}
}

func TestFetchCancelThenResume(t *testing.T) {
	data := testData(size)
	srv := newFaultServer(t, data, serve, stall)
	dst := filepath.Join(t.TempDir(), "file.bin")
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() {
		<-srv.stalled
		// Cancel once the client has written what the server sent.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if fi, err := os.Stat(dst + ".part"); err == nil && fi.Size() >= size/2 {
				break
			}
		}
		cancel()
	}()
	start := time.Now()
	err := Fetch(ctx, srv.URL, dst, fast(WithSHA256(sha256Hex(data)))...)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch after cancel: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("cancel took %v", d)
	}
	wantAbsent(t, dst)
	fi, err := os.Stat(dst + ".part")
	if err != nil || fi.Size() != size/2 {
		t.Fatalf("temporary file after cancel: %v, %v; want %d bytes kept", fi, err, size/2)
	}

	// A later call resumes where the cancelled one stopped.
	if err := Fetch(testCtx(t), srv.URL, dst, fast(WithSHA256(sha256Hex(data)))...); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, data)
	wantAbsent(t, dst+".part")
	if got, want := srv.requests(), []string{"", fmt.Sprintf("bytes=%d-", size/2)}; !slicesEqual(got, want) {
		t.Errorf("Range headers %q, want %q", got, want)
	}
}

func TestFetchCancelDuringBackoff(t *testing.T) {
	srv := newFaultServer(t, testData(10), unavailable)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	dst := filepath.Join(t.TempDir(), "f")
	err := Fetch(ctx, srv.URL, dst, WithBackoff(time.Hour, time.Hour))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	wantAbsent(t, dst)
}

func TestFetchExisting(t *testing.T) {
	data := testData(1000)
	srv := newFaultServer(t, data, serve)
	dir := t.TempDir()

	// A destination that verifies is kept without any request.
	good := filepath.Join(dir, "good")
	os.WriteFile(good, data, 0o644)
	if err := Fetch(testCtx(t), srv.URL, good, fast(WithSHA256(sha256Hex(data)))...); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests for a file already present", n)
	}

	// One that does not verify is replaced.
	for i, opt := range []Option{WithSHA256(sha256Hex(data)), WithMD5(md5Hex(data)), WithSize(int64(len(data)))} {
		bad := filepath.Join(dir, fmt.Sprint("bad", i))
		wrong := bytes.Clone(data)
		wrong[3] ^= 1
		if i == 2 {
			wrong = wrong[:500]
		}
		os.WriteFile(bad, wrong, 0o644)
		if err := Fetch(testCtx(t), srv.URL, bad, fast(opt)...); err != nil {
			t.Fatal(err)
		}
		wantFile(t, bad, data)
	}

	// When the download fails, the bad file is gone rather than left in place.
	bad := filepath.Join(dir, "bad-offline")
	os.WriteFile(bad, []byte("stale"), 0o644)
	off := newFaultServer(t, data, notFound)
	if err := Fetch(testCtx(t), off.URL, bad, fast(WithSize(int64(len(data))))...); err == nil {
		t.Fatal("want an error")
	}
	wantAbsent(t, bad)
}

func TestFetchCompletePart(t *testing.T) {
	data := testData(1000)
	dir := t.TempDir()

	// Size known: a complete temporary file needs no request.
	srv := newFaultServer(t, data, serve)
	dst := filepath.Join(dir, "a")
	os.WriteFile(dst+".part", data, 0o644)
	if err := Fetch(testCtx(t), srv.URL, dst, fast(WithSize(1000))...); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, data)
	if n := len(srv.requests()); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}

	// Size unknown: the server answers 416 with the full size.
	dst = filepath.Join(dir, "b")
	os.WriteFile(dst+".part", data, 0o644)
	if err := Fetch(testCtx(t), srv.URL, dst, fast()...); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, data)
	wantAbsent(t, dst+".part")

	// A temporary file longer than the expected size is discarded.
	dst = filepath.Join(dir, "c")
	os.WriteFile(dst+".part", append(bytes.Clone(data), 1, 2, 3), 0o644)
	if err := Fetch(testCtx(t), srv.URL, dst, fast(WithSize(1000))...); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, data)

	// A corrupt temporary file is detected by the digest after resuming,
	// discarded, and the file fetched again from the start.
	dst = filepath.Join(dir, "d")
	bad := bytes.Clone(data[:400])
	bad[10] ^= 1
	os.WriteFile(dst+".part", bad, 0o644)
	srv = newFaultServer(t, data, serve)
	if err := Fetch(testCtx(t), srv.URL, dst, fast(WithSHA256(sha256Hex(data)))...); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, data)
	if got, want := srv.requests(), []string{"bytes=400-", ""}; !slicesEqual(got, want) {
		t.Errorf("Range headers %q, want %q", got, want)
	}
}

func TestFetchEmptyFile(t *testing.T) {
	srv := newFaultServer(t, nil, serve)
	dst := filepath.Join(t.TempDir(), "empty")
	if err := Fetch(testCtx(t), srv.URL, dst, fast(WithSHA256(sha256Hex(nil)))...); err != nil {
		t.Fatal(err)
	}
	wantFile(t, dst, nil)
}

func TestFetchBadOptions(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "x")
	for _, opt := range []Option{WithSHA256("xyz"), WithMD5("abcd"), WithChecksum("crc32:00")} {
		if err := Fetch(testCtx(t), "http://127.0.0.1:1/", dst, opt); err == nil {
			t.Errorf("want an error for a bad digest option")
		}
	}
	wantAbsent(t, dst)
}

func TestFetchHeaderAndClient(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Write([]byte("hello"))
	}))
	defer srv.Close()
	dst := filepath.Join(t.TempDir(), "x")
	err := Fetch(testCtx(t), srv.URL, dst, WithHeader("Authorization", "Bearer t"), WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if got != "Bearer t" {
		t.Errorf("Authorization %q", got)
	}
	wantFile(t, dst, []byte("hello"))
}

func TestBackoff(t *testing.T) {
	c := newConfig([]Option{WithBackoff(100*time.Millisecond, time.Second)})
	for failures, want := range []time.Duration{100, 100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		if failures == 0 {
			continue
		}
		for range 20 {
			if d := c.backoff(failures); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", failures, d, want/2, want)
			}
		}
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		{"bytes 0-9/10", 0, 9, 10, true},
		{"bytes 5-9/*", 5, 9, -1, true},
		{"bytes */10", -1, -1, 10, true},
		{"bytes */*", 0, 0, 0, false},
		{"bytes 5-4/10", 0, 0, 0, false},
		{"bytes 5-10/10", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes x-1/2", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		f, l, s, ok := parseContentRange(tc.in)
		if ok != tc.ok || (ok && (f != tc.first || l != tc.last || s != tc.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v", tc.in, f, l, s, ok)
		}
	}
}
