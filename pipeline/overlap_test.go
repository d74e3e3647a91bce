package pipeline

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diffroute-go/route/data"
)

// overlapCase is the bundled basin (2,000 reaches x 365 days) routed on
// 15-minute sub-steps, as the command routes it (in place, to a file).
func overlapCase(out string) Config {
	return Config{RAPID: demoBasin, Runoff: filepath.Join(demoBasin, "runoff.nc"), SubStep: 15 * time.Minute, Out: out, InPlace: true}
}

// withChunks makes runs overlap in chunks of one router block (42 steps
// here: 9 chunks), or not at all (bytes 0).
func withChunks(t *testing.T, bytes int) {
	old := overlapBytes
	t.Cleanup(func() { overlapBytes = old })
	overlapBytes = bytes
	if bytes == 0 {
		overlapBytes = math.MaxInt32
	}
}

// A run whose reading, routing and writing overlap chunk by chunk writes
// the file the sequential run writes, byte for byte (its creation date
// apart).
func TestOverlappedRunWritesSameFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	run := func(name string, chunkBytes int) ([]byte, *Result) {
		withChunks(t, chunkBytes)
		c := overlapCase(filepath.Join(dir, name))
		res, err := Run(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := os.ReadFile(c.Out)
		if err != nil {
			t.Fatal(err)
		}
		return regexp.MustCompile(`date_created: [0-9T:Z-]+`).ReplaceAll(b, nil), res
	}
	whole, wres := run("whole.nc", 0)
	over, ores := run("overlapped.nc", 1)
	if wres.TimeChunk != 0 || ores.TimeChunk != 42 {
		t.Fatalf("time chunks %d and %d, want 0 (whole) and 42 (overlapped)", wres.TimeChunk, ores.TimeChunk)
	}
	if !bytes.Equal(whole, over) {
		i := 0
		for i < min(len(whole), len(over)) && whole[i] == over[i] {
			i++
		}
		t.Fatalf("the overlapped run's file differs from the sequential run's at byte %d (%d and %d bytes)", i, len(over), len(whole))
	}
	q, err := data.ReadSeries(filepath.Join(dir, "overlapped.nc"), nil)
	if err != nil || q.T != 365 || q.N != 2000 {
		t.Fatalf("overlapped file: %v", err)
	}
}

// An overlapped run that is cancelled, or that meets bad runoff in a
// late chunk, leaves no file at all: neither the output nor its temporary
// file.
func TestOverlappedRunLeavesNothing(t *testing.T) {
	withChunks(t, 1)
	src := filepath.Join(demoBasin, "runoff.nc")
	x, err := data.ReadRunoffNC(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.nc")
	x.Data[17*x.T+300] = float32(math.NaN()) // step 300: the eighth chunk
	if err := data.WriteQoutNC(bad, x, &data.QoutOptions{Var: "runoff"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		runoff string
		cancel bool // after the third chunk
		want   string
	}{
		"cancelled":  {src, true, "context canceled"},
		"bad runoff": {bad, false, "bad.nc: runoff of"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		dir := t.TempDir()
		cfg := overlapCase(filepath.Join(dir, "q.nc"))
		cfg.Runoff = c.runoff
		chunks := 0
		afterChunk = func(t0 int) {
			if chunks++; chunks == 3 && c.cancel {
				cancel()
			}
		}
		_, err := Run(ctx, cfg)
		afterChunk = nil
		cancel()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, c.want)
		}
		if name == "cancelled" && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v is not context.Canceled", name, err)
		}
		if chunks < 3 {
			t.Errorf("%s: stopped after %d chunks: the test stops nothing part-way", name, chunks)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s: left %s", name, left[0].Name())
		}
	}
}

func TestOverlapChunk(t *testing.T) {
	for _, c := range []struct{ n, T, f, want int }{
		{20000, 365, 96, 42},    // the side-by-side basin: 9 chunks of 3.4 MB
		{1000, 365, 96, 0},      // 24 blocks of 42 steps: one chunk would be the whole series
		{6840000, 30, 24, 0},    // the world: one block of 170 steps holds every step
		{200000, 2000, 24, 170}, // one block
		{2000, 10000, 1, 0},     // one block of 4,096 steps is more than a third of the series
		{0, 10, 1, 0},
	} {
		if got := overlapChunk(c.n, c.T, c.f); got != c.want {
			t.Errorf("overlapChunk(%d, %d, %d) = %d, want %d", c.n, c.T, c.f, got, c.want)
		}
	}
}

// An overlapped run that cannot write its file (here a file size limit,
// as a full disk would) fails as the sequential run does: an error naming
// the file, not a configuration (usage) error, and nothing left behind.
func TestOverlappedWriteFailureIsNoConfigError(t *testing.T) {
	if os.Getenv("DIFFROUTE_FSIZE_CHILD") == "" {
		exe, err := os.Executable()
		if err != nil {
			t.Skip(err)
		}
		cmd := exec.Command(exe, "-test.run=^TestOverlappedWriteFailureIsNoConfigError$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "DIFFROUTE_FSIZE_CHILD=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return
	}
	// 1 MiB: the file's header fits, its 2.9 MB of discharge do not.
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}); err != nil {
		t.Skip(err)
	}
	for _, chunkBytes := range []int{0, 1} {
		withChunks(t, chunkBytes)
		dir := t.TempDir()
		c := overlapCase(filepath.Join(dir, "q.nc"))
		res, err := Run(context.Background(), c)
		var ce *ConfigError
		switch {
		case err == nil:
			t.Fatalf("chunk bytes %d: no error (time chunk %d)", chunkBytes, res.TimeChunk)
		case errors.As(err, &ce) || !strings.Contains(err.Error(), c.Out) || strings.Contains(err.Error(), "\n"):
			t.Errorf("chunk bytes %d: %v (config error %v): want one line naming %s, not a configuration error", chunkBytes, err, ce != nil, c.Out)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("chunk bytes %d: %s left behind", chunkBytes, left[0].Name())
		}
		t.Logf("chunk bytes %d: %v", chunkBytes, err)
	}
}
