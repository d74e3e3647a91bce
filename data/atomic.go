package data

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/diffroute-go/route/atomicfile"
)

// writeAtomic writes path through atomicfile.Write, with errors that name
// the output rather than its temporary file.
func writeAtomic(path string, write func(tmp string) error) error {
	var tmp string
	err := atomicfile.Write(path, func(t string) error {
		tmp = t
		return write(t)
	})
	return outputError(err, tmp, path)
}

// createTemp is atomicfile.CreateTemp with an error naming the output.
func createTemp(path string) (*os.File, error) {
	f, err := atomicfile.CreateTemp(path)
	return f, outputError(err, "", path)
}

// outputError says what went wrong writing the output path in its terms:
// the temporary name is replaced by path, and a full disk is said so.
func outputError(err error, tmp, path string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if tmp != "" {
		msg = strings.ReplaceAll(msg, tmp, path)
	}
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(strings.ToLower(msg), "no space left") {
		return fmt.Errorf("%s: the disk is full (no space left on the device); free space or write elsewhere", path)
	}
	if errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%s: disk quota exceeded; free space or write elsewhere", path)
	}
	if !strings.Contains(msg, path) {
		msg = path + ": " + msg
	}
	return &outputErr{msg: msg, err: err}
}

// outputErr keeps the original error for errors.Is with a message naming
// the output.
type outputErr struct {
	msg string
	err error
}

func (e *outputErr) Error() string { return e.msg }
func (e *outputErr) Unwrap() error { return e.err }

// publishTemp publishes a writer's completed temporary file at path
// (atomicfile.Commit: synced, renamed, the folder synced), with errors that
// name the output.
func publishTemp(tmp, path string) error {
	return outputError(atomicfile.Commit(tmp, path), tmp, path)
}
