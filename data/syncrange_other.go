//go:build !linux

package data

import "os"

// startWriteback does nothing here: the fsync that commits the file writes
// it all.
func startWriteback(f *os.File, off, n int64) {}

// awaitWriteback does nothing here (see startWriteback).
func awaitWriteback(f *os.File, off, n int64) {}
