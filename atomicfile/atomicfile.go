// Package atomicfile writes files so that their path holds either the old
// content or the complete new one, never a partial file: the content goes to
// a temporary file in the same folder, which is renamed over the path only
// once it is complete. Readers of the path never see a half-written output,
// and a failed or cancelled write leaves nothing behind.
//
// The temporary file is ".<name>.tmp-<pid>-h<host>-<random>" next to the
// path, <host> a short hash of the host name. The process id lets a later
// writer of the same path on the same host remove the temporary files of
// writers that died before renaming theirs (killed, out of power), which
// would otherwise stay next to the output forever; files of live writers,
// and files written from other hosts of a shared file system (whose
// processes cannot be seen from here), are left alone.
package atomicfile

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Write reserves a temporary file next to path, lets write fill it by name
// (write may also recreate it, as C libraries such as netCDF do), makes it
// readable (0644) and renames it to path. On any error the temporary file is
// removed and path is left untouched.
func Write(path string, write func(tmp string) error) (err error) {
	f, err := CreateTemp(path)
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	if err = write(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return Commit(tmp, path)
}

// WriteBytes writes b to path atomically, synced to disk before the rename.
func WriteBytes(path string, b []byte) error {
	return Write(path, func(tmp string) error {
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	})
}

// CreateTemp creates, for a writer that streams its output, the temporary
// file to fill before Commit renames it to path; the temporary files of
// dead writers of path are removed first. A writer that gives up removes
// the file itself.
func CreateTemp(path string) (*os.File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStaleTemps(dir, base)
	f, err := os.CreateTemp(dir, "."+base+".tmp-"+strconv.Itoa(os.Getpid())+"-"+hostTag()+"-*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return f, nil
}

// Commit makes the complete, closed temporary file tmp durable (synced to
// disk) and readable (0644) and renames it to path, then syncs the folder
// so that the rename survives a crash (best effort). On error tmp is
// removed and path is left untouched.
func Commit(tmp, path string) error {
	err := syncFile(tmp)
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeStaleTemps removes the temporary files for base in dir whose
// writing process is gone.
func removeStaleTemps(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".tmp-*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), "."+base+".tmp-")
		pidText, rest, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue // not one of ours
		}
		if tag, _, _ := strings.Cut(rest, "-"); isHostTag(tag) && tag != hostTag() {
			continue // another host's writer: its liveness is unknown here
		}
		if pid != os.Getpid() && !processAlive(pid) {
			os.Remove(m)
		}
	}
}

// hostTag is "h" and eight hex digits of a hash of the host name.
func hostTag() string {
	name, _ := os.Hostname()
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("h%08x", h.Sum32())
}

func isHostTag(s string) bool {
	if len(s) != 9 || s[0] != 'h' {
		return false
	}
	for _, c := range s[1:] {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// processAlive says whether a process with that id exists (a process of
// another user counts as alive).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
