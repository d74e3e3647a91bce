package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
)

// Checks that run before anything is read or routed, so that a mistyped
// flag or an unwritable --out is reported at once, naming the flag, rather
// than after minutes of reading and routing (or as a library message that
// names no flag).

// choice checks that value is one of allowed, naming the flag.
func choice(cmd, flagName, value string, allowed ...string) error {
	if slices.Contains(allowed, value) {
		return nil
	}
	return usageError{fmt.Sprintf("%s: --%s %q: want %s", cmd, flagName, value, orList(allowed))}
}

// orList writes "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// andList writes "a, b and c".
func andList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// checkIRF refuses an unregistered IRF name, listing the registered ones.
func checkIRF(cmd, name string) error {
	if _, err := diffroute.LookupIRF(name); err != nil {
		return usageError{fmt.Sprintf("%s: --irf %q: unknown IRF; want %s (see 'diffroute irfs')", cmd, name, orList(diffroute.IRFNames()))}
	}
	return nil
}

// validate checks the routing flags shared by route and demo.
func (rf *routeFlags) validate(cmd string) error {
	if err := checkIRF(cmd, rf.irf); err != nil {
		return err
	}
	for _, c := range []struct {
		name, value string
		allowed     []string
	}{
		{"method", rf.method, []string{string(diffroute.Recursive), string(diffroute.Kernel)}},
		{"average", rf.average, []string{string(diffroute.AverageStart), string(diffroute.AverageEnd)}},
		{"lateral", rf.lateral, []string{string(diffroute.LateralRAPID), string(diffroute.LateralLTI)}},
		{"sampling", rf.sampling, []string{string(diffroute.SampleAvg), string(diffroute.SampleLast)}},
	} {
		if err := choice(cmd, c.name, c.value, c.allowed...); err != nil {
			return err
		}
	}
	if rf.compat != "" {
		if err := choice(cmd, "compat", rf.compat, "diffroute"); err != nil {
			return err
		}
		if rf.methodSet && rf.method != string(diffroute.Kernel) {
			return usageError{fmt.Sprintf("%s: --compat diffroute works on path kernels: use --method kernel or drop --method", cmd)}
		}
	}
	if err := choice(cmd, "device", rf.dev.name, "cpu", "cuda"); err != nil {
		return err
	}
	for _, c := range []struct {
		name      string
		value, lo int
	}{
		{"max-delay", rf.maxDelay, 1}, {"fft-pad", rf.fftPad, 1}, {"block-size", rf.blockSize, 1}, {"workers", rf.workers, 0}, {"gpu", rf.dev.ordinal, 0},
	} {
		if c.value < c.lo {
			return usageError{fmt.Sprintf("%s: --%s %d: want a whole number ≥ %d", cmd, c.name, c.value, c.lo)}
		}
	}
	return nil
}

// validate checks route's memory-management flags.
func (m *memFlags) validate(cmd string) error {
	for _, c := range []struct {
		name  string
		value int64
	}{{"max-nodes", int64(m.maxNodes)}, {"max-paths", m.maxPaths}, {"time-chunk", int64(m.timeChunk)}} {
		if c.value < 0 {
			return usageError{fmt.Sprintf("%s: --%s %d: want a whole number ≥ 0 (0: off)", cmd, c.name, c.value)}
		}
	}
	if m.weight != "" && m.pixelRunoff == "" {
		return usageError{fmt.Sprintf("%s: --weights applies to --pixel-runoff only", cmd)}
	}
	_, err := parseBudget(m.budget)
	return err
}

// checkUnits refuses a --runoff-units value the pipeline would refuse later.
func checkUnits(cmd, units string) error {
	if units == "" {
		return nil
	}
	if u := pipeline.NormUnits(units); u != "m3" && u != "m3/s" {
		return usageError{fmt.Sprintf("%s: --runoff-units %q: want m3 (volume per runoff step, RAPID's m3_riv) or m3/s", cmd, units)}
	}
	return nil
}

// checkInputFile reports a missing or unreadable input file, naming its
// flag.
func checkInputFile(cmd, flagName, path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: --%s %s: no such file", cmd, flagName, path)
	case err != nil:
		return fmt.Errorf("%s: --%s %s: %v", cmd, flagName, path, pathErrReason(err))
	case st.IsDir():
		return usageError{fmt.Sprintf("%s: --%s %s is a folder; give a file", cmd, flagName, path)}
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: --%s %s: cannot read it (%v)", cmd, flagName, path, pathErrReason(err))
	}
	f.Close()
	return nil
}

// checkRAPIDDir reports a --rapid folder that does not exist or lacks
// rapid_connect.csv, saying which files it should hold.
func checkRAPIDDir(cmd, dir string) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: --rapid %s: no such folder", cmd, dir)
	case err != nil:
		return fmt.Errorf("%s: --rapid %s: %v", cmd, dir, pathErrReason(err))
	case !st.IsDir():
		return usageError{fmt.Sprintf("%s: --rapid %s is a file; give the folder holding rapid_connect.csv, riv_bas_id.csv, k.csv and x.csv", cmd, dir)}
	}
	if _, err := os.Stat(filepath.Join(dir, "rapid_connect.csv")); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: --rapid %s: no rapid_connect.csv there; the folder must hold rapid_connect.csv, k.csv, x.csv (and riv_bas_id.csv)", cmd, dir)
	}
	return nil
}

// pathErrReason strips the operation and path from a *fs.PathError: the
// caller names the path and flag itself.
func pathErrReason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkWritable makes sure an output can be written at path before any
// work is done: path must not be a folder (unless dir is set, for commands
// whose --out is a folder), and the nearest existing folder on its way must
// accept new files. Nothing is left behind.
func checkWritable(cmd, flagName, path string, dir bool) error {
	target := filepath.Dir(path)
	if st, err := os.Stat(path); err == nil {
		switch {
		case st.IsDir() && !dir:
			return usageError{fmt.Sprintf("%s: --%s %s is a folder; give a file name such as %s", cmd, flagName, path, filepath.Join(path, "Qout.nc"))}
		case !st.IsDir() && dir:
			return usageError{fmt.Sprintf("%s: --%s %s is a file; give a folder", cmd, flagName, path)}
		case dir:
			target = path
		}
	}
	// The nearest existing ancestor: missing folders are created at write time.
	for {
		st, err := os.Stat(target)
		if err == nil {
			if !st.IsDir() {
				return usageError{fmt.Sprintf("%s: --%s %s: %s is a file, not a folder", cmd, flagName, path, target)}
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return fmt.Errorf("%s: --%s %s: cannot use folder %s (%v)", cmd, flagName, path, target, pathErrReason(err))
		}
		parent := filepath.Dir(target)
		if parent == target {
			break
		}
		target = parent
	}
	f, err := os.CreateTemp(target, ".diffroute-write-check-*")
	if err != nil {
		return fmt.Errorf("%s: --%s %s: cannot write in folder %s (%v); choose another --%s", cmd, flagName, path, target, pathErrReason(err), flagName)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// budgetError adds what to do to a planner error for --mem-budget.
func budgetError(cmd, budget string, err error) error {
	if strings.Contains(err.Error(), "no strategy fits") {
		return fmt.Errorf("%s: --mem-budget %s: %s; raise --mem-budget", cmd, budget, strings.TrimPrefix(err.Error(), "diffroute: "))
	}
	return err
}

// maxGeneratedReaches and maxGeneratedValues bound the networks and series
// that generate, bench and plan build in memory: far above the largest river
// network in use (GEOGLOWS, 6.84 M reaches), so that a typo ends in an error
// naming the flag rather than an out-of-memory crash.
const (
	maxGeneratedReaches = 100_000_000
	maxGeneratedValues  = 1 << 36 // reaches × steps: 256 GiB of float32
)

// checkGeneratedSize checks --reaches (flag reachFlag) and, when steps > 0,
// the reaches × steps of a generated case.
func checkGeneratedSize(cmd, reachFlag string, reaches, steps int) error {
	if reaches > maxGeneratedReaches {
		return usageError{fmt.Sprintf("%s: --%s %d: want at most %d reaches", cmd, reachFlag, reaches, maxGeneratedReaches)}
	}
	if steps > 0 && reaches > 0 && steps > maxGeneratedValues/reaches {
		return usageError{fmt.Sprintf("%s: --%s %d × %d steps is more than %d values: too large to generate", cmd, reachFlag, reaches, steps, int64(maxGeneratedValues))}
	}
	return nil
}
