package data

import (
	"fmt"
	"strings"

	"github.com/diffroute-go/diffroute/atomicfile"
)

// writeAtomic writes path through package atomicfile: a temporary file next
// to it, filled by write, renamed over path only when complete.
func writeAtomic(path string, write func(tmp string) error) error {
	err := atomicfile.Write(path, write)
	if err != nil && !strings.HasPrefix(err.Error(), "data: ") && strings.HasPrefix(err.Error(), "writing ") {
		return fmt.Errorf("data: %w", err)
	}
	return err
}
