package download

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/progress"
)

// Errors reported (wrapped) by [Fetch]. Test for them with errors.Is.
var (
	// ErrChecksum means the downloaded bytes do not match the expected digest.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrSize means the downloaded bytes, or the size the server announced,
	// do not match the expected size.
	ErrSize = errors.New("size mismatch")
)

// StatusError is an HTTP answer Fetch could not use.
type StatusError struct {
	URL        string
	StatusCode int
	Status     string        // e.g. "503 Service Unavailable"
	RetryAfter time.Duration // from a Retry-After header in seconds; 0 if none
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: %s", e.URL, e.Status)
}

// Temporary reports whether the request is worth retrying: 408, 429 and 5xx.
func (e *StatusError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout ||
		e.StatusCode == http.StatusTooManyRequests ||
		e.StatusCode >= 500
}

// An Option configures [Fetch] or [SingleVPU].
type Option func(*config)

// WithSHA256 sets the expected SHA-256 digest of the file, in hex.
func WithSHA256(hexDigest string) Option {
	return func(c *config) { c.sha256 = c.decodeDigest("sha256", hexDigest, sha256.Size) }
}

// WithMD5 sets the expected MD5 digest of the file, in hex. It is used only
// when no SHA-256 digest is set.
func WithMD5(hexDigest string) Option {
	return func(c *config) { c.md5 = c.decodeDigest("md5", hexDigest, md5.Size) }
}

// WithChecksum sets the expected digest from an "algorithm:hex" string such
// as Zenodo's "md5:0cc175b9c0f1b6a831c399e269772661". The algorithms are
// "sha256" and "md5".
func WithChecksum(s string) Option {
	algo, digest, ok := strings.Cut(s, ":")
	switch {
	case ok && strings.EqualFold(algo, "sha256"):
		return WithSHA256(digest)
	case ok && strings.EqualFold(algo, "md5"):
		return WithMD5(digest)
	}
	return func(c *config) {
		if c.err == nil {
			c.err = fmt.Errorf("checksum %q: want sha256:<hex> or md5:<hex>", s)
		}
	}
}

// WithSize sets the expected size of the file in bytes. A negative size means
// unknown.
func WithSize(n int64) Option {
	return func(c *config) {
		if n < 0 {
			n = -1
		}
		c.size = n
	}
}

// WithHTTPClient sets the client used for requests (default
// http.DefaultClient). Its redirect policy applies; Fetch sets no timeout of
// its own beyond the context.
func WithHTTPClient(client *http.Client) Option {
	return func(c *config) {
		if client != nil {
			c.client = client
		}
	}
}

// WithHeader adds a header to every request, for instance an Authorization
// token.
func WithHeader(key, value string) Option {
	return func(c *config) { c.header.Add(key, value) }
}

// WithRetries sets how many failed attempts in a row are retried before
// Fetch gives up (default 5). An attempt that appended bytes to the temporary
// file does not count as failed, so a large file on a flaky link keeps
// progressing; a hard cap of 100 attempts per call still bounds the work.
func WithRetries(n int) Option {
	return func(c *config) { c.retries = max(n, 0) }
}

// WithBackoff sets the delay before the first retry and its cap (defaults 1s
// and 30s). The delay doubles after each failure, with random jitter of up to
// half a step, and is at least the server's Retry-After (within the cap).
func WithBackoff(initial, maxDelay time.Duration) Option {
	return func(c *config) {
		c.initial = max(initial, 0)
		c.maxDelay = max(maxDelay, c.initial)
	}
}

// WithProgress sets where progress is reported (default progress.Quiet;
// viz.NewProgress draws a bar on a terminal or in a notebook cell).
//
// For every file, [Fetch] calls Start exactly once, then Update any number of
// times, then Done exactly once. A reporter passed to [SingleVPU] sees these
// sequences one file after another, never interleaved.
//
//   - Start(name, total): name is the base name of the destination; total is
//     the expected size in bytes, or -1 when it is not known yet.
//   - Update(done): done is the number of bytes of the file present so far,
//     counting bytes resumed from an earlier attempt. It normally grows, but
//     goes back (usually to 0) when a transfer has to start over. Fetch calls
//     Update at most about ten times a second, and always once with the final
//     count.
//   - Done(err): err is nil on success (including when the file was already
//     present) and the error Fetch returns otherwise.
//
// Calls come from the goroutine that runs Fetch. Reporters need not be
// safe for concurrent use unless the caller shares one between concurrent
// Fetch calls.
func WithProgress(p progress.Reporter) Option {
	return func(c *config) {
		if p != nil {
			c.progress = p
		}
	}
}

// maxAttempts bounds the attempts of one Fetch call, progress or not.
const maxAttempts = 100

type config struct {
	client   *http.Client
	header   http.Header
	sha256   []byte
	md5      []byte
	size     int64
	retries  int
	initial  time.Duration
	maxDelay time.Duration
	progress progress.Reporter
	source   Source
	err      error
}

func newConfig(opts []Option) *config {
	c := &config{
		client:   http.DefaultClient,
		header:   make(http.Header),
		size:     -1,
		retries:  5,
		initial:  time.Second,
		maxDelay: 30 * time.Second,
		progress: progress.Quiet,
		source:   DefaultSource,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

func (c *config) decodeDigest(algo, s string, n int) []byte {
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err == nil && len(b) != n {
		err = fmt.Errorf("want %d hex digits", 2*n)
	}
	if err != nil {
		if c.err == nil {
			c.err = fmt.Errorf("%s digest %q: %v", algo, s, err)
		}
		return nil
	}
	return b
}

// expect returns a copy of c that expects a file with the given digest and
// size, for use on one file of a data set.
func (c *config) expect(sha256Hex, md5Hex string, size int64) *config {
	d := *c
	d.sha256, d.md5, d.size, d.err = nil, nil, size, nil
	if sha256Hex != "" {
		d.sha256 = d.decodeDigest("sha256", sha256Hex, sha256.Size)
	} else if md5Hex != "" {
		d.md5 = d.decodeDigest("md5", md5Hex, md5.Size)
	}
	return &d
}

// Fetch downloads url to the file dst, creating dst's directory if needed.
//
// On success dst holds the whole resource, verified as described in the
// package documentation. On failure dst does not exist (a previous dst that
// failed verification is removed), and the temporary file dst+".part" may
// remain for a later call to resume. If dst already exists and verifies,
// Fetch returns nil without any network traffic; when neither a digest nor a
// size is known, an existing dst counts as verified.
//
// Errors wrap the cause: the context's error after cancellation, [ErrChecksum],
// [ErrSize], a [*StatusError], or the network or file-system error.
//
// Two concurrent Fetch calls must not share a dst.
func Fetch(ctx context.Context, url, dst string, opts ...Option) error {
	c := newConfig(opts)
	if c.err != nil {
		err := fmt.Errorf("download %s: %w", url, c.err)
		t := &tracker{p: c.progress, name: filepath.Base(dst)}
		t.finish(err)
		return err
	}
	return c.fetch(ctx, url, dst)
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

func (c *config) fetch(ctx context.Context, url, dst string) (err error) {
	t := &tracker{p: c.progress, name: filepath.Base(dst)}
	defer func() { t.finish(err) }()

	ok, err := c.existing(dst)
	if err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}
	if ok {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("download %s: %w", url, err)
	}

	part := dst + ".part"
	a := &attempt{c: c, url: url, dst: dst, part: part, t: t}
	failures := 0
	for n := 1; ; n++ {
		progressed, err := a.run(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: %w", url, context.Cause(ctx))
		}
		if p := (*permanent)(nil); errors.As(err, &p) {
			return fmt.Errorf("download %s: %w", url, p.err)
		}
		if !progressed {
			failures++
		}
		if failures > c.retries || n >= maxAttempts {
			return fmt.Errorf("download %s: giving up after %d attempts: %w", url, n, err)
		}
		delay := c.backoff(failures)
		if se := (*StatusError)(nil); errors.As(err, &se) && se.RetryAfter > delay {
			delay = min(se.RetryAfter, c.maxDelay)
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("download %s: %w", url, context.Cause(ctx))
		case <-timer.C:
		}
	}
}

// backoff returns the delay after the given number of failures in a row.
func (c *config) backoff(failures int) time.Duration {
	d := c.initial
	for i := 1; i < failures && d < c.maxDelay; i++ {
		d *= 2
	}
	d = min(d, c.maxDelay)
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	return d
}

// existing reports whether dst already holds a verified file. A dst that
// exists but fails verification is removed.
func (c *config) existing(dst string) (bool, error) {
	fi, err := os.Stat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("%s exists and is not a regular file", dst)
	}
	err = c.verify(dst, fi.Size())
	if err == nil {
		return true, nil
	}
	if errors.Is(err, ErrChecksum) || errors.Is(err, ErrSize) {
		return false, os.Remove(dst)
	}
	return false, err
}

// verify checks the file at path, whose size is n, against the expected size
// and digest.
func (c *config) verify(path string, n int64) error {
	if c.size >= 0 && n != c.size {
		return fmt.Errorf("%w: %s has %d bytes, want %d", ErrSize, filepath.Base(path), n, c.size)
	}
	var h hash.Hash
	var want []byte
	algo := ""
	switch {
	case c.sha256 != nil:
		h, want, algo = sha256.New(), c.sha256, "sha256"
	case c.md5 != nil:
		h, want, algo = md5.New(), c.md5, "md5"
	default:
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s has %s %x, want %x", ErrChecksum, filepath.Base(path), algo, got, want)
	}
	return nil
}

// attempt holds the state of one Fetch across its attempts.
type attempt struct {
	c         *config
	url       string
	dst, part string
	t         *tracker
	validator string // strong ETag or Last-Modified of the first full answer, for If-Range
}

// run makes one attempt. progressed reports whether bytes were appended to
// the temporary file and kept.
func (a *attempt) run(ctx context.Context) (progressed bool, err error) {
	c := a.c
	offset, err := a.partSize()
	if err != nil {
		return false, &permanent{err}
	}
	if c.size >= 0 && offset > c.size {
		if err := a.discard(); err != nil {
			return false, err
		}
		offset = 0
	}
	if c.size > 0 && offset == c.size {
		// A complete temporary file from an earlier call: no request needed.
		a.t.start(c.size)
		a.t.update(offset, true)
		return false, a.finish(offset)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return false, &permanent{err}
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if a.validator != "" {
			req.Header.Set("If-Range", a.validator)
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return false, classifyNetError(err)
	}
	defer resp.Body.Close()

	total := int64(-1) // size of the whole resource, if the server says
	switch {
	case resp.StatusCode == http.StatusOK:
		offset = 0 // full body: Range not sent, ignored, or If-Range failed
		total = resp.ContentLength
		a.validator = validatorOf(resp.Header)
	case resp.StatusCode == http.StatusPartialContent:
		first, last, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || offset == 0 || first != offset || (resp.ContentLength >= 0 && last-first+1 != resp.ContentLength) {
			// Not the bytes we asked for: start over.
			if err := a.discard(); err != nil {
				return false, err
			}
			return false, fmt.Errorf("GET %s: unexpected Content-Range %q for offset %d", a.url, resp.Header.Get("Content-Range"), offset)
		}
		total = size
		if total < 0 {
			total = last + 1 // "bytes=N-" asks for everything up to the end
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		// The resource may be exactly as long as the temporary file.
		if _, _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && size == offset && (c.size < 0 || c.size == size) {
			a.t.start(size)
			a.t.update(offset, true)
			return false, a.finish(offset)
		}
		if err := a.discard(); err != nil {
			return false, err
		}
		return false, &StatusError{URL: a.url, StatusCode: resp.StatusCode, Status: resp.Status}
	default:
		se := &StatusError{URL: a.url, StatusCode: resp.StatusCode, Status: resp.Status, RetryAfter: retryAfter(resp.Header)}
		if se.Temporary() {
			return false, se
		}
		return false, &permanent{se}
	}

	if c.size >= 0 && total >= 0 && total != c.size {
		if err := a.discard(); err != nil {
			return false, err
		}
		return false, fmt.Errorf("%w: server announces %d bytes, want %d", ErrSize, total, c.size)
	}
	want := c.size
	if want < 0 {
		want = total
	}
	a.t.start(want)

	flag := os.O_WRONLY | os.O_CREATE
	if offset == 0 {
		flag |= os.O_TRUNC
	}
	f, err := os.OpenFile(a.part, flag, 0o644)
	if err != nil {
		return false, &permanent{err}
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return false, &permanent{err}
	}
	a.t.update(offset, true)

	body := io.Reader(resp.Body)
	if want >= 0 {
		// One byte more than needed is enough to tell that the body is too long.
		body = io.LimitReader(body, want-offset+1)
	}
	w := &progressWriter{w: f, done: offset, t: a.t}
	n, copyErr := io.Copy(w, body)
	syncErr := f.Sync()
	closeErr := f.Close()
	a.t.update(offset+n, true)
	if copyErr != nil {
		var we *writeError
		if errors.As(copyErr, &we) {
			return false, &permanent{we.err}
		}
		return n > 0, fmt.Errorf("GET %s: body broken after %d bytes: %w", a.url, offset+n, copyErr)
	}
	if err := errors.Join(syncErr, closeErr); err != nil {
		return false, &permanent{err}
	}

	got := offset + n
	if want >= 0 && got < want {
		// A clean end before the announced size: keep the bytes and resume.
		return n > 0, fmt.Errorf("GET %s: body ended at %d of %d bytes", a.url, got, want)
	}
	if want >= 0 && got > want {
		if err := a.discard(); err != nil {
			return false, err
		}
		return false, fmt.Errorf("%w: GET %s: body longer than %d bytes", ErrSize, a.url, want)
	}
	return false, a.finish(got)
}

// finish verifies the complete temporary file of n bytes and renames it to
// dst. A file that fails verification is removed.
func (a *attempt) finish(n int64) error {
	if err := a.c.verify(a.part, n); err != nil {
		if errors.Is(err, ErrChecksum) || errors.Is(err, ErrSize) {
			if rmErr := a.discard(); rmErr != nil {
				return rmErr
			}
			return err
		}
		return &permanent{err}
	}
	if err := os.Rename(a.part, a.dst); err != nil {
		return &permanent{err}
	}
	syncDir(filepath.Dir(a.dst))
	return nil
}

func (a *attempt) partSize() (int64, error) {
	fi, err := os.Stat(a.part)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("%s exists and is not a regular file", a.part)
	}
	return fi.Size(), nil
}

// discard removes the temporary file so that the next attempt starts over.
func (a *attempt) discard() error {
	a.validator = ""
	if err := os.Remove(a.part); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return &permanent{err}
	}
	if a.t.started {
		a.t.update(0, true)
	}
	return nil
}

// syncDir flushes a directory entry after a rename, where the platform
// allows it. Failure only weakens durability after a crash, not correctness.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// writeError marks a failure to write the temporary file, as opposed to a
// failure to read the response body.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

type progressWriter struct {
	w    io.Writer
	done int64
	t    *tracker
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.t.update(p.done, false)
	if err != nil {
		return n, &writeError{err}
	}
	return n, nil
}

// classifyNetError marks errors that retrying will not fix.
func classifyNetError(err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return &permanent{err}
	}
	return err
}

// validatorOf returns a validator usable in If-Range: a strong ETag, else
// Last-Modified, else "".
func validatorOf(h http.Header) string {
	if etag := h.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		return etag
	}
	return h.Get("Last-Modified")
}

// parseContentRange parses "bytes first-last/size" or "bytes */size". size is
// -1 when given as "*"; first and last are -1 in the "*/size" form.
func parseContentRange(s string) (first, last, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	size = -1
	if sz != "*" {
		v, err := strconv.ParseInt(sz, 10, 64)
		if err != nil || v < 0 {
			return 0, 0, 0, false
		}
		size = v
	}
	if rng == "*" {
		return -1, -1, size, size >= 0
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, 0, false
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || first < 0 || last < first || (size >= 0 && last >= size) {
		return 0, 0, 0, false
	}
	return first, last, size, true
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After")))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}
