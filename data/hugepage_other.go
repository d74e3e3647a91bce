//go:build !linux

package data

// adviseHuge does nothing where transparent huge pages are not known.
func adviseHuge([]float32) {}
