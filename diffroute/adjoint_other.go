//go:build !amd64

package diffroute

// adjointVector has no vector kernel on this architecture.
func adjointVector(a *adjArgs) bool { return false }
