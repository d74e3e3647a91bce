package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A run killed with SIGKILL mid-way leaves its last complete state file and
// no output under the final name; the next run with --state-in of that
// state (and the same runoff file) finishes the job with the discharge of an
// uninterrupted run, and clears the killed run's temporary output.
func TestRouteSurvivesSIGKILL(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skip("cannot find the test binary:", err)
	}
	dir := t.TempDir()
	runoff := filepath.Join(demoBasin, "runoff.nc")
	base := []string{"route", "--quiet", "--rapid", demoBasin, "--runoff", runoff, "--substep", "300", "--workers", "1"}
	whole := filepath.Join(dir, "whole.nc")
	if _, err := runCLI(t, append(append([]string{}, base...), "--out", whole)...); err != nil {
		t.Fatal(err)
	}
	out, state := filepath.Join(dir, "q.nc"), filepath.Join(dir, "state.nc")
	cmd := exec.Command(exe, append(append([]string{}, base...), "--out", out, "--time-chunk", "5", "--state-out", state, "--state-every", "5")...)
	cmd.Env = append(os.Environ(), "DIFFROUTE_TEST_AS_CLI=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Kill once a few checkpoints are written, while states keep coming.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(state); err == nil {
			time.Sleep(150 * time.Millisecond)
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the run ended (%v) before it could be killed: make it longer", err)
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no state file after 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("the run was not killed: %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a killed run left an output under the final name")
	}
	temps, _ := filepath.Glob(filepath.Join(dir, ".q.nc.tmp-*"))
	if len(temps) == 0 {
		t.Fatal("the killed run left no temporary output: the cleanup below tests nothing")
	}
	rest := out
	msg, err := runCLI(t, append(append([]string{}, base...), "--out", rest, "--state-in", state, "--time-chunk", "50")...)
	if err != nil {
		t.Fatalf("resuming: %v\n%s", err, msg)
	}
	got, want := readQ(t, rest), readQ(t, whole)
	if got.T >= want.T || got.T == 0 {
		t.Fatalf("the resumed run wrote %d steps of %d: it did not continue mid-way", got.T, want.T)
	}
	t.Logf("killed after %d of %d steps; resumed for the last %d", want.T-got.T, want.T, got.T)
	if d := maxRelDiff(t, got, want.SliceTime(want.T-got.T, want.T)); d > 1e-6 {
		t.Errorf("resumed discharge differs from the uninterrupted run by %.3g", d)
	}
	for _, p := range temps {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the killed run's temporary output %s is still there", filepath.Base(p))
		}
	}
}
