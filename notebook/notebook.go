// Package notebook holds the plumbing that GoNB notebook cells would
// otherwise repeat — finding the repository's files, stopping a cell on an
// error with one line, timing a step, reading the process's memory — so
// that cells show hydrology. It is for notebooks and examples, not for
// library code: Must ends the program on an error.
package notebook

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
)

// Path returns a path inside this repository. Jupyter starts kernels in
// notebooks/, so the root is found by walking up to this module's go.mod;
// $DIFFROUTE_ROOT, when set, is used instead.
func Path(rel string) string {
	if root := os.Getenv("DIFFROUTE_ROOT"); root != "" {
		return filepath.Join(root, rel)
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		mod, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(mod), "module github.com/diffroute-go/route\n") {
			return filepath.Join(d, rel)
		}
		if filepath.Dir(d) == d {
			Check(fmt.Errorf("diffroute-go repository not found above %s (set DIFFROUTE_ROOT)", dir))
		}
	}
}

// Rel shows path relative to the repository root.
func Rel(path string) string {
	r, err := filepath.Rel(Path("."), path)
	if err != nil {
		return path
	}
	return r
}

// exit ends the cell's program (a variable for tests).
var exit = os.Exit

// Must returns v, or ends the cell with the error on one line of standard
// error and exit status 1 (a failed cell, without a goroutine dump).
func Must[T any](v T, err error) T {
	Check(err)
	return v
}

// Check ends the cell with err, as Must does, when err is not nil.
func Check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		exit(1)
	}
}

// Time runs f and prints how long it took, after name.
func Time(name string, f func()) time.Duration {
	start := time.Now()
	f()
	d := time.Since(start)
	fmt.Printf("%s: %v\n", name, d.Round(time.Millisecond))
	return d
}

// Memory is the memory the Go runtime holds from the operating system,
// less what it has returned: close to the process's resident size for a
// pure-Go program.
func Memory() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// Bytes formats a size in IEC units (MiB, GiB).
func Bytes[T ~int | ~int64 | ~uint64](b T) string { return humanize.IBytes(uint64(max(b, 0))) }

// PeakMemory runs f while sampling Memory every few milliseconds and
// returns the memory before f and the highest sample.
func PeakMemory(f func()) (before, peak uint64) {
	before = Memory()
	peak = before
	var mu sync.Mutex
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				m := Memory()
				mu.Lock()
				peak = max(peak, m)
				mu.Unlock()
			}
		}
	}()
	f()
	close(done)
	<-stopped
	return before, max(peak, Memory())
}
