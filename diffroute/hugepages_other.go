//go:build !linux

package diffroute

// adviseHugePages is a no-op where there is no madvise.
func adviseHugePages(s []float32) {}
