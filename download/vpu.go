package download

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/atomicfile"
	"github.com/diffroute-go/route/vpu"
)

// Source says where [SingleVPU] finds the DiffHydro sample data. Empty fields
// take the value of [DefaultSource]; tests point the base URLs at a local
// server.
type Source struct {
	Zenodo       string // base URL of Zenodo, e.g. "https://zenodo.org"
	ZenodoRecord string // Zenodo record holding the Feather files
	HuggingFace  string // base URL of the Hugging Face Hub
	HFDataset    string // Hugging Face data set holding configs/<vpu>/
	HFRevision   string // branch, tag or commit of the data set
}

// DefaultSource is the public location of the DiffHydro sample data.
var DefaultSource = Source{
	Zenodo:       "https://zenodo.org",
	ZenodoRecord: "17873745",
	HuggingFace:  "https://huggingface.co",
	HFDataset:    "prediction2/diffroute_exp",
	HFRevision:   "main",
}

// WithSource makes [SingleVPU] download from s instead of [DefaultSource].
// Fetch ignores it.
func WithSource(s Source) Option {
	return func(c *config) {
		d := DefaultSource
		pick := func(v, def string) string {
			if v == "" {
				return def
			}
			return strings.TrimRight(v, "/")
		}
		c.source = Source{
			Zenodo:       pick(s.Zenodo, d.Zenodo),
			ZenodoRecord: pick(s.ZenodoRecord, d.ZenodoRecord),
			HuggingFace:  pick(s.HuggingFace, d.HuggingFace),
			HFDataset:    pick(s.HFDataset, d.HFDataset),
			HFRevision:   pick(s.HFRevision, d.HFRevision),
		}
	}
}

// SingleVPU downloads the DiffHydro sample data of one GEOGLOWS VPU (for
// instance 305) under root, like DiffHydro's download_single_vpu_data(root),
// and returns where the files are (package vpu's layout):
//
//	root/<vpu>/<vpu>_daily_sparse_runoff.feather   from Zenodo
//	root/<vpu>/<vpu>_interp_weight.feather         from Zenodo
//	root/<vpu>/configs/...                          the Hugging Face folder configs/<vpu>/, subfolders kept
//	root/<vpu>/manifest.json                        what was downloaded, with sizes and digests
//
// Every file goes through [Fetch], so it is resumed, retried, verified and
// skipped when already present. Configuration files are verified by the
// SHA-256 and size that the Hugging Face tree API lists (size only for files
// not stored in LFS); the Feather files by the MD5 and size of the Zenodo
// record API, when that API answers, else by the announced size.
//
// If the Hugging Face listing cannot be fetched (offline, for instance) but a
// manifest from an earlier run exists and every file it lists is present with
// its recorded size, SingleVPU returns those files without downloading.
//
// Options are those of Fetch plus [WithSource]; digest and size options are
// ignored. Files are fetched one after another, and the first failure stops
// the whole.
func SingleVPU(ctx context.Context, root string, n int, opts ...Option) (*vpu.Layout, error) {
	c := newConfig(opts)
	if c.err != nil {
		return nil, fmt.Errorf("download: %w", c.err)
	}
	if n <= 0 {
		return nil, fmt.Errorf("download: invalid VPU %d", n)
	}
	dir := filepath.Join(root, strconv.Itoa(n))

	entries, err := c.hfList(ctx, n)
	if err != nil {
		if ctx.Err() == nil {
			if files, mErr := fromManifest(dir, n); mErr == nil {
				return files, nil
			}
		}
		return nil, fmt.Errorf("download: listing VPU %d configuration: %w", n, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("download: no configuration files listed for VPU %d", n)
	}

	// Zenodo checksums are a bonus: without them the size announced by the
	// server still guards against truncation.
	zen, err := c.zenodoFiles(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("download: %w", context.Cause(ctx))
	}

	var man manifest
	man.VPU = n
	files := vpu.Of(root, n)
	s := c.source
	for _, e := range entries {
		dst := filepath.Join(files.ConfigDir, filepath.FromSlash(e.rel))
		u := s.HuggingFace + "/datasets/" + escapePath(s.HFDataset) + "/resolve/" + url.PathEscape(s.HFRevision) + "/" + escapePath(e.path)
		if err := c.expect(e.sha256, "", e.size).fetch(ctx, u, dst); err != nil {
			return nil, err
		}
		files.Config = append(files.Config, dst)
		man.Files = append(man.Files, manifestFile{Path: "configs/" + e.rel, Size: e.size, SHA256: e.sha256})
	}
	for _, dst := range []string{files.Runoff, files.InterpWeight} {
		name := filepath.Base(dst)
		z, ok := zen[name]
		if !ok {
			z = zenodoFile{Size: -1}
		}
		u := s.Zenodo + "/records/" + url.PathEscape(s.ZenodoRecord) + "/files/" + url.PathEscape(name)
		if err := c.expect("", z.md5, z.Size).fetch(ctx, u, dst); err != nil {
			return nil, err
		}
		fi, err := os.Stat(dst)
		if err != nil {
			return nil, fmt.Errorf("download: %w", err)
		}
		man.Files = append(man.Files, manifestFile{Path: name, Size: fi.Size(), MD5: z.md5})
	}
	if err := writeManifest(dir, &man); err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	slices.Sort(files.Config)
	return files, nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// hfEntry is one file of the Hugging Face configuration folder.
type hfEntry struct {
	path   string // in the repository, e.g. "configs/305/rapid_connect.csv"
	rel    string // below configs/<vpu>/, slash-separated
	size   int64
	sha256 string // LFS files only
}

// Limits on what a listing may hold, against a runaway server.
const (
	maxListDepth   = 8
	maxListEntries = 10000
	maxJSONBytes   = 32 << 20
)

// hfList lists the files under configs/<vpu>/ of the data set, walking
// subfolders and following pagination.
func (c *config) hfList(ctx context.Context, vpu int) ([]hfEntry, error) {
	s := c.source
	prefix := fmt.Sprintf("configs/%d", vpu)
	var out []hfEntry
	type dirAt struct {
		path  string
		depth int
	}
	queue := []dirAt{{prefix, 0}}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		next := s.HuggingFace + "/api/datasets/" + escapePath(s.HFDataset) + "/tree/" + url.PathEscape(s.HFRevision) + "/" + escapePath(d.path)
		for next != "" {
			var items []struct {
				Type string `json:"type"`
				Path string `json:"path"`
				Size int64  `json:"size"`
				LFS  *struct {
					OID  string `json:"oid"`
					Size int64  `json:"size"`
				} `json:"lfs"`
			}
			hdr, err := c.getJSON(ctx, next, &items)
			if err != nil {
				return nil, err
			}
			for _, it := range items {
				rel, ok := strings.CutPrefix(it.Path, prefix+"/")
				if !ok || rel == "" || path.Clean(rel) != rel || !filepath.IsLocal(filepath.FromSlash(rel)) || strings.Contains(rel, `\`) {
					return nil, fmt.Errorf("listing of %s: unexpected path %q", prefix, it.Path)
				}
				switch it.Type {
				case "directory":
					if d.depth+1 > maxListDepth {
						return nil, fmt.Errorf("listing of %s: folders nested too deep at %q", prefix, it.Path)
					}
					queue = append(queue, dirAt{it.Path, d.depth + 1})
				case "file":
					e := hfEntry{path: it.Path, rel: rel, size: it.Size}
					if it.LFS != nil {
						e.sha256, e.size = it.LFS.OID, it.LFS.Size
					}
					out = append(out, e)
				default:
					return nil, fmt.Errorf("listing of %s: %q has unknown type %q", prefix, it.Path, it.Type)
				}
				if len(out)+len(queue) > maxListEntries {
					return nil, fmt.Errorf("listing of %s: more than %d entries", prefix, maxListEntries)
				}
			}
			next, err = nextLink(next, hdr.Get("Link"))
			if err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(out, func(a, b hfEntry) int { return strings.Compare(a.rel, b.rel) })
	return out, nil
}

// nextLink returns the rel="next" target of an RFC 8288 Link header,
// resolved against base, or "".
func nextLink(base, header string) (string, error) {
	for _, link := range strings.Split(header, ",") {
		target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
		if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		isNext := false
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "rel") && slices.Contains(strings.Fields(strings.Trim(v, `"`)), "next") {
				isNext = true
			}
		}
		if !isNext {
			continue
		}
		b, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		t, err := b.Parse(strings.Trim(target, "<>"))
		if err != nil {
			return "", fmt.Errorf("bad Link header %q: %w", header, err)
		}
		return t.String(), nil
	}
	return "", nil
}

// zenodoFile is what the Zenodo record API says about one file.
type zenodoFile struct {
	Key      string `json:"key"`
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"` // "md5:<hex>"
	md5      string
}

// zenodoFiles asks the Zenodo record API for the sizes and MD5 digests of
// the record's files. It accepts both the legacy shape ("files": [...]) and
// the InvenioRDM one ("files": {"entries": [...] or {...}}).
func (c *config) zenodoFiles(ctx context.Context) (map[string]zenodoFile, error) {
	s := c.source
	var rec struct {
		Files json.RawMessage `json:"files"`
	}
	if _, err := c.getJSON(ctx, s.Zenodo+"/api/records/"+url.PathEscape(s.ZenodoRecord), &rec); err != nil {
		return nil, err
	}
	var list []zenodoFile
	if err := json.Unmarshal(rec.Files, &list); err != nil {
		var wrapped struct {
			Entries json.RawMessage `json:"entries"`
		}
		if err := json.Unmarshal(rec.Files, &wrapped); err != nil {
			return nil, fmt.Errorf("zenodo record: unexpected files: %w", err)
		}
		if err := json.Unmarshal(wrapped.Entries, &list); err != nil {
			var byName map[string]zenodoFile
			if err := json.Unmarshal(wrapped.Entries, &byName); err != nil {
				return nil, fmt.Errorf("zenodo record: unexpected entries: %w", err)
			}
			for k, f := range byName {
				if f.Key == "" {
					f.Key = k
				}
				list = append(list, f)
			}
		}
	}
	out := make(map[string]zenodoFile, len(list))
	for _, f := range list {
		if f.Size <= 0 {
			f.Size = -1
		}
		if algo, digest, ok := strings.Cut(f.Checksum, ":"); ok && strings.EqualFold(algo, "md5") {
			f.md5 = digest
		}
		// A malformed digest would fail every download: drop it instead.
		if f.md5 != "" && c.expect("", f.md5, -1).err != nil {
			f.md5 = ""
		}
		out[f.Key] = f
	}
	return out, nil
}

// getJSON GETs a small JSON document into v, with the retry policy of c.
func (c *config) getJSON(ctx context.Context, u string, v any) (http.Header, error) {
	failures := 0
	for {
		hdr, err := c.getJSONOnce(ctx, u, v)
		if err == nil {
			return hdr, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if p := (*permanent)(nil); errors.As(err, &p) {
			return nil, p.err
		}
		failures++
		if failures > c.retries {
			return nil, fmt.Errorf("giving up after %d attempts: %w", failures, err)
		}
		delay := c.backoff(failures)
		if se := (*StatusError)(nil); errors.As(err, &se) && se.RetryAfter > delay {
			delay = min(se.RetryAfter, c.maxDelay)
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, context.Cause(ctx)
		case <-timer.C:
		}
	}
}

func (c *config) getJSONOnce(ctx context.Context, u string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, &permanent{err}
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, classifyNetError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{URL: u, StatusCode: resp.StatusCode, Status: resp.Status, RetryAfter: retryAfter(resp.Header)}
		if se.Temporary() {
			return nil, se
		}
		return nil, &permanent{se}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxJSONBytes {
		return nil, &permanent{fmt.Errorf("GET %s: answer larger than %d bytes", u, maxJSONBytes)}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return resp.Header, nil
}

// manifest records what SingleVPU put in root/<vpu>.
type manifest struct {
	VPU   int            `json:"vpu"`
	Files []manifestFile `json:"files"`
}

type manifestFile struct {
	Path   string `json:"path"` // slash-separated, relative to root/<vpu>
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	MD5    string `json:"md5,omitempty"`
}

func writeManifest(dir string, m *manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, vpu.ManifestName), append(b, '\n'))
}

// fromManifest returns the files of an earlier SingleVPU run if they are all
// still present with their recorded sizes.
func fromManifest(dir string, n int) (*vpu.Layout, error) {
	b, err := os.ReadFile(filepath.Join(dir, vpu.ManifestName))
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m.VPU != n {
		return nil, fmt.Errorf("manifest is for VPU %d", m.VPU)
	}
	files := vpu.Of(filepath.Dir(dir), n)
	var have [2]bool
	for _, f := range m.Files {
		if path.Clean(f.Path) != f.Path || !filepath.IsLocal(filepath.FromSlash(f.Path)) {
			return nil, fmt.Errorf("manifest: bad path %q", f.Path)
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if fi.Size() != f.Size {
			return nil, fmt.Errorf("%s: %w", p, ErrSize)
		}
		switch {
		case p == files.Runoff:
			have[0] = true
		case p == files.InterpWeight:
			have[1] = true
		case strings.HasPrefix(f.Path, "configs/"):
			files.Config = append(files.Config, p)
		}
	}
	if !have[0] || !have[1] || len(files.Config) == 0 {
		return nil, errors.New("manifest incomplete")
	}
	slices.Sort(files.Config)
	return files, nil
}
