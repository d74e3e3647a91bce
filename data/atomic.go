package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// writeAtomic reserves a temporary file next to path, lets write fill it
// (write may also recreate it by name), and renames it to path. On any error
// the temporary file is removed and path is left untouched.
func writeAtomic(path string, write func(tmp string) error) (err error) {
	f, err := createTemp(path)
	if err != nil {
		return err
	}
	tmp := f.Name()
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = write(tmp); err != nil {
		return outputError(err, tmp, path)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return outputError(err, tmp, path)
	}
	return outputError(os.Rename(tmp, path), tmp, path)
}

// createTemp creates the temporary file a writer fills before renaming it
// to path: ".<name>.tmp-<pid>-<random>" in path's folder. The process id in
// the name lets a later writer of the same path remove the temporary files
// of writers that died before renaming theirs (killed, out of power), which
// would otherwise stay next to the output forever; files of live writers
// are left alone.
func createTemp(path string) (*os.File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	removeStaleTemps(dir, base)
	f, err := os.CreateTemp(dir, "."+base+".tmp-"+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return nil, outputError(err, "", path)
	}
	return f, nil
}

// removeStaleTemps removes the temporary files for base in dir whose
// writing process is gone.
func removeStaleTemps(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+".tmp-*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), "."+base+".tmp-")
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 {
			continue // not one of ours
		}
		if pid != os.Getpid() && !processAlive(pid) {
			os.Remove(m)
		}
	}
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

// outputError says what went wrong writing the output path in its terms:
// the temporary name is replaced by path, and a full disk is said so.
func outputError(err error, tmp, path string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if tmp != "" {
		msg = strings.ReplaceAll(msg, tmp, path)
	}
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(strings.ToLower(msg), "no space left") {
		return fmt.Errorf("%s: the disk is full (no space left on the device); free space or write elsewhere", path)
	}
	if errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%s: disk quota exceeded; free space or write elsewhere", path)
	}
	if !strings.Contains(msg, path) {
		msg = path + ": " + msg
	}
	return &outputErr{msg: msg, err: err}
}

// outputErr keeps the original error for errors.Is with a message naming
// the output.
type outputErr struct {
	msg string
	err error
}

func (e *outputErr) Error() string { return e.msg }
func (e *outputErr) Unwrap() error { return e.err }

// publishTemp makes a completed temporary file durable and renames it to
// path (a writer's Close); the caller removes tmp on error.
func publishTemp(tmp, path string) error {
	f, err := os.Open(tmp)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	serr := f.Sync()
	f.Close()
	if serr != nil {
		return fmt.Errorf("data: %s: %w", path, serr)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	// Make the rename durable; best effort.
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
