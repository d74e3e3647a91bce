//go:build !cuda && !cudaemu

package gpu

import "testing"

func TestNoCUDA(t *testing.T) {
	if _, err := Open(0); err != ErrNoCUDA {
		t.Errorf("Open without the cuda tag: %v, want ErrNoCUDA", err)
	}
}
