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

// awaitWriteback waits until a range of f whose writing was started is on
// its way to disk (written back, not synced: the fsync that commits the
// file still follows). A streamed file waits for each chunk while the next
// one is routed, so that the final fsync has little left to write.
// Failure is harmless.
func awaitWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
}
