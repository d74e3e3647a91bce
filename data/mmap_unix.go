//go:build unix

package data

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps a file read-only into memory so that only the pages actually
// touched are read from disk.
func mapFile(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	n := st.Size()
	if n == 0 {
		return nil, nil, fmt.Errorf("%s: empty file", path)
	}
	if int64(int(n)) != n {
		return nil, nil, fmt.Errorf("%s: file too large to map", path)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(n), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: mmap: %w", path, err)
	}
	return b, func() error { return syscall.Munmap(b) }, nil
}
