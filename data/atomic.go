package data

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeAtomic reserves a temporary file next to path, lets write fill it
// (write may also recreate it by name), and renames it to path. On any error
// the temporary file is removed and path is left untouched.
func writeAtomic(path string, write func(tmp string) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("data: %w", err)
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
