package data

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const xx9 = "../testdata/rapid_xx9"

const (
	m3File      = xx9 + "/m3_riv_bas_erai_t511_3hr_20030121to20030122.nc"
	qoutFile    = xx9 + "/Qout_erai_t511_3hr_20030121to20030122.nc"
	qoutInitNC  = xx9 + "/Qout_erai_t511_3hr_20030121to20030122_init.nc"
	qinitFile   = xx9 + "/qinit_erai_t511_3hr_20030121to20030122.csv"
	xx9Reaches  = 9
	xx9Steps    = 16
	xx9StepSecs = 10800
)

// writeFiles creates a folder with the given files.
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// wantParseError checks that err is a *ParseError naming file (by base name)
// and line, and that its message contains every fragment.
func wantParseError(t *testing.T, err error, file string, line int, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want an error at %s:%d, got none", file, line)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("want *ParseError, got %T: %v", err, err)
	}
	if filepath.Base(pe.File) != file || pe.Line != line {
		t.Fatalf("error at %s:%d, want %s:%d: %v", filepath.Base(pe.File), pe.Line, file, line, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, file) {
		t.Fatalf("message %q does not name %s", msg, file)
	}
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			t.Fatalf("message %q lacks %q", msg, f)
		}
	}
}

func relClose(a, b, tol float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= tol*math.Max(math.Abs(a), math.Abs(b))
}

func itoa(v int64) string   { return strconv.FormatInt(v, 10) }
func ftoa(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
