// Package atomicfile writes files so that their path holds either the old
// content or the complete new one, never a partial file: the content goes to
// a temporary file in the same folder, which is renamed over the path only
// once it is complete. Readers of the path never see a half-written output,
// and a failed or cancelled write leaves nothing behind.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write reserves a temporary file next to path, lets write fill it by name
// (write may also recreate it, as C libraries such as netCDF do), makes it
// readable (0644) and renames it to path. On any error the temporary file is
// removed and path is left untouched.
func Write(path string, write func(tmp string) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	f.Close()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if err = write(tmp); err != nil {
		return err
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// WriteBytes writes b to path atomically, synced to disk before the rename.
func WriteBytes(path string, b []byte) error {
	return Write(path, func(tmp string) error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return f.Close()
	})
}
