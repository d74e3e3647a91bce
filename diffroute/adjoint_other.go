//go:build !amd64

package diffroute

// adjointVector has no vector kernel on this architecture.
func adjointVector(a *adjArgs) bool { return false }

// addSeries stores a + b into dst (all of len(dst) values; dst may be a or b).
func addSeries(dst, a, b []float64) {
	for k := range dst {
		dst[k] = a[k] + b[k]
	}
}
