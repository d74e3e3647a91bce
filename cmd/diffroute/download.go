package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/diffroute-go/route/download"
	"github.com/diffroute-go/route/progress"
	"github.com/diffroute-go/route/viz"
)

func runDownload(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute download vpu N --out DIR | download url URL --out FILE [--sha256 HEX | --md5 HEX]"
	fs := newFlags("download", synopsis)
	out := fs.String("out", "", "vpu: root folder (the VPU goes into DIR/N); url: the file to write")
	quiet := fs.Bool("quiet", false, "print nothing but errors")
	retries := fs.Int("retries", 5, "failed attempts in a row retried before giving up (an interrupted file resumes)")
	sha := fs.String("sha256", "", "url: expected SHA-256 of the file (hex)")
	md5 := fs.String("md5", "", "url: expected MD5 of the file (hex)")
	zenodo := fs.String("zenodo", download.DefaultSource.Zenodo, "vpu: base URL of Zenodo (a mirror)")
	hf := fs.String("huggingface", download.DefaultSource.HuggingFace, "vpu: base URL of the Hugging Face Hub (a mirror)")
	// What to fetch comes first (download vpu 305 --out DIR); flag.Parse
	// stops at the first argument that is not a flag, so split it off.
	var pos []string
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") && len(pos) < 2 {
		pos, args = append(pos, args[0]), args[1:]
	}
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	if len(pos) != 2 || (pos[0] != "vpu" && pos[0] != "url") {
		return usageError{"download: want 'download vpu N --out DIR' or 'download url URL --out FILE'"}
	}
	if *out == "" {
		return usageError{"download: --out is required"}
	}
	if *retries < 0 {
		return usageError{fmt.Sprintf("download: --retries %d: want a whole number ≥ 0", *retries)}
	}
	var prog progress.Reporter = progress.Quiet
	if !*quiet {
		prog = viz.NewProgress(false, viz.Bytes(), viz.ProgressWriter(progressOut))
	}
	opts := []download.Option{download.WithProgress(prog), download.WithRetries(*retries)}
	if pos[0] == "url" {
		if *sha != "" {
			opts = append(opts, download.WithSHA256(*sha))
		}
		if *md5 != "" {
			opts = append(opts, download.WithMD5(*md5))
		}
		if err := checkWritable("download", "out", *out, false); err != nil {
			return err
		}
		if err := download.Fetch(ctx, pos[1], *out, opts...); err != nil {
			return offline(err, pos[1])
		}
		if !*quiet {
			fmt.Fprintf(stdout, "wrote %s\n", *out)
		}
		return nil
	}
	if *sha != "" || *md5 != "" {
		return usageError{"download: --sha256 and --md5 apply to 'download url'; VPU files are checked against the digests their hosts publish"}
	}
	n, err := strconv.Atoi(pos[1])
	if err != nil || n <= 0 {
		return usageError{fmt.Sprintf("download vpu: %q is not a VPU number (such as 305)", pos[1])}
	}
	if err := checkWritable("download", "out", *out, true); err != nil {
		return err
	}
	opts = append(opts, download.WithSource(download.Source{Zenodo: *zenodo, HuggingFace: *hf}))
	files, err := download.SingleVPU(ctx, *out, n, opts...)
	if err != nil {
		return offline(err, *hf)
	}
	if !*quiet {
		fmt.Fprintf(stdout, "VPU %d in %s: %d configuration files, %s, %s\n", n, files.Dir, len(files.Config),
			filepath.Base(files.Runoff), filepath.Base(files.InterpWeight))
		fmt.Fprintf(stdout, "route it with: diffroute route --rapid %s --pixel-runoff %s --weights %s --out Qout.nc\n",
			files.ConfigDir, files.Runoff, files.InterpWeight)
	}
	return nil
}

// offline adds what to do when a host cannot be reached at all: files
// already fetched are kept, and a partial one resumes on the next run.
func offline(err error, where string) error {
	var op *net.OpError
	var dns *net.DNSError
	if errors.As(err, &op) || errors.As(err, &dns) {
		host := where
		if u, perr := url.Parse(where); perr == nil && u.Host != "" {
			host = u.Host
		}
		return fmt.Errorf("download: cannot reach %s (offline, or the host is down): %v; run the same command again when online: finished files are kept and a partial one resumes", host, err)
	}
	return err
}
