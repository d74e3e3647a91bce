//go:build linux

package data

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing a range of f to disk now,
// without waiting: the fsync that commits the file then has less left to
// wait for, and the disk works while the values that follow are prepared.
// Failure is harmless (the fsync writes it all anyway).
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
