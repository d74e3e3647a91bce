//go:build !linux

package diffroute

// adviseHugePages is a no-op where there is no madvise.
func adviseHugePages[E float32 | float64](s []E) {}
