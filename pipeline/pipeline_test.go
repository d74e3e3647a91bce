package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

const xx9 = "../testdata/rapid_xx9"

var xx9Runoff = filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")

// A run kept in memory equals the library's own router on the same inputs;
// the staged and streamed runs the pipeline chooses write the same numbers
// to their files; RAPID's own Qout is matched as the command does.
func TestRunStrategiesAgree(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	base := Config{RAPID: xx9, Runoff: xx9Runoff, SubStep: 15 * time.Minute}
	whole, err := Run(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	if whole.Discharge == nil || whole.SubSteps() != 12 || whole.Options.Method != diffroute.Recursive {
		t.Fatalf("whole run: discharge %v, %d sub-steps, method %q", whole.Discharge != nil, whole.SubSteps(), whole.Options.Method)
	}
	r, err := diffroute.NewRouter(ctx, whole.RAPID.Network, whole.Options)
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.Route(ctx, whole.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRel(whole.Discharge, want); d != 0 {
		t.Errorf("pipeline vs router: %.3g of peak", d)
	}
	rapidQ, err := data.ReadRunoffNC(filepath.Join(xx9, "Qout_erai_t511_3hr_20030121to20030122.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxRel(whole.Discharge, rapidQ); d > 1e-5 {
		t.Errorf("pipeline vs RAPID's Qout: %.3g of peak", d)
	}
	for name, mod := range map[string]func(*Config){
		"in order": func(c *Config) { c.InPlace = true }, // routed in the router's order, in place
		"staged":   func(c *Config) { c.MaxNodes = 4 },
		"streamed": func(c *Config) { c.TimeChunk = 3 },
		"budget":   func(c *Config) { c.Budget = 40 << 20 },
	} {
		c := base
		c.Out = filepath.Join(dir, name+".nc")
		mod(&c)
		res, err := Run(ctx, c)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		q, err := data.ReadSeries(c.Out, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxRel(q, whole.Discharge); d > 1e-6 {
			t.Errorf("%s (chunk %d, clusters %v): %.3g of peak from the whole run", name, res.TimeChunk, res.Clusters != nil, d)
		}
	}
}

// Contradictory configurations are refused before anything is read, as
// ConfigErrors; a cancelled run returns the context's error.
func TestRunRefuses(t *testing.T) {
	for _, c := range []Config{
		{Runoff: xx9Runoff},
		{RAPID: xx9},
		{RAPID: xx9, Runoff: xx9Runoff, Weights: "w.feather"},
		{RAPID: xx9, Runoff: xx9Runoff, Out: "q.txt"},
		{RAPID: xx9, Runoff: xx9Runoff, RunoffUnits: "mm"},
		{RAPID: xx9, Runoff: xx9Runoff, Device: "tpu"},
	} {
		_, err := Run(context.Background(), c)
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%+v: err %v, want a ConfigError", c, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, Config{RAPID: xx9, Runoff: xx9Runoff, SubStep: 15 * time.Minute}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}

func maxRel(got, want *diffroute.DataTensor) float64 {
	if got.N != want.N || got.T != want.T {
		return math.Inf(1)
	}
	peak, worst := 0.0, 0.0
	for i := range want.Data {
		peak = max(peak, math.Abs(float64(want.Data[i])))
		worst = max(worst, math.Abs(float64(got.Data[i]-want.Data[i])))
	}
	return worst / peak
}

// checkWarnsOnce runs cfg plain ("plain", "in place") or staged or
// time-chunked (way), and checks that Warn got exactly one warning with
// prefix and phrase, naming --max-delay, when warned, and none otherwise.
func checkWarnsOnce(t *testing.T, cfg Config, way, prefix, phrase string, warned bool, what string) {
	t.Helper()
	var warn strings.Builder
	cfg.Warn, cfg.InPlace = &warn, strings.HasSuffix(way, "in place")
	switch way {
	case "staged":
		cfg.MaxNodes = 2
	case "time-chunked":
		cfg.TimeChunk, cfg.Out = 5, filepath.Join(t.TempDir(), "q.nc")
	case "outputs", "outputs in place":
		// The outlet and a reach two above it: their upstream closure alone
		// is routed.
		cfg.Outputs = filepath.Join(t.TempDir(), "outputs.txt")
		if err := os.WriteFile(cfg.Outputs, []byte("17880298\n17880284\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	got := warn.String()
	if has := strings.Contains(got, phrase); has != warned {
		t.Errorf("%s %s: warned %v, want %v: %q", what, way, has, warned, got)
	}
	if warned && (strings.Count(got, prefix) != 1 || !strings.Contains(got, "--max-delay")) {
		t.Errorf("%s %s: want one warning naming --max-delay, got %q", what, way, got)
	}
}

// A kernel too short for the network's path responses routes, but says so
// once on Warn, naming the worst pair; a kernel long enough says nothing.
// Staged and time-chunked runs, whose clusters build their own kernels,
// say so too, and so do runs of a few --outputs.
func TestKernelLosingMassWarns(t *testing.T) {
	for _, c := range []struct {
		maxDelay int
		warned   bool
	}{{1, true}, {64, false}} {
		for _, way := range []string{"plain", "staged", "time-chunked", "outputs"} {
			cfg := Config{RAPID: xx9, Runoff: xx9Runoff, SubStep: 15 * time.Minute}
			cfg.Options.Method, cfg.Options.MaxDelay = diffroute.Kernel, c.maxDelay
			checkWarnsOnce(t, cfg, way, "kernel method:", "beyond the kernel's", c.warned, fmt.Sprintf("max delay %d", c.maxDelay))
		}
	}
}

// The recursive method warns, once, when a reach's convolution IRF has not
// decayed by the end of its window: an unnormalised IRF (nash_gamma) loses
// the rest, a normalised one (hayami) delivers it too early. A window long
// enough says nothing. Plain, in-place, staged and time-chunked runs all
// check, and so do runs of a few --outputs, read whole or in place.
func TestRecursiveWindowCutWarns(t *testing.T) {
	for _, c := range []struct {
		irf      string
		params   map[string]float64
		maxDelay int
		warned   bool
	}{
		{"nash_gamma", map[string]float64{"tau": 30, "n": 3}, 8, true},
		{"nash_gamma", map[string]float64{"tau": 0.5, "n": 3}, 64, false},
		{"hayami", map[string]float64{"L": 10, "D": 1, "c": 1}, 4, true},
		{"hayami", map[string]float64{"L": 10, "D": 1, "c": 1}, 64, false},
	} {
		for _, way := range []string{"plain", "in place", "staged", "time-chunked", "outputs", "outputs in place"} {
			cfg := Config{RAPID: xx9, Runoff: xx9Runoff, SubStep: 15 * time.Minute, Params: c.params}
			cfg.Options.IRF, cfg.Options.MaxDelay = c.irf, c.maxDelay
			checkWarnsOnce(t, cfg, way, "recursive method:", "at the end of its window", c.warned, fmt.Sprintf("%s %v max delay %d", c.irf, c.params, c.maxDelay))
		}
	}
}

// An output that cannot take the asked compression is refused before the
// inputs are even opened (it used to fail after a whole run).
func TestCompressionRefusedUpFront(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		out  string
		want string
	}{
		{"q.nc", "classic netCDF has no compression"},
		{"q.csv", "CSV has no compression"},
	} {
		cfg := Config{RAPID: xx9, Runoff: filepath.Join(dir, "missing.nc"), SubStep: 15 * time.Minute,
			Out: filepath.Join(dir, c.out), Compress: 5}
		_, err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s --compress 5: got %v, want an error saying %q", c.out, err, c.want)
		}
	}
	// Formats with compression go on to the inputs (here: a missing file).
	cfg := Config{RAPID: xx9, Runoff: filepath.Join(dir, "missing.nc"), SubStep: 15 * time.Minute,
		Out: filepath.Join(dir, "q.nc4"), Compress: 5}
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "missing.nc") {
		t.Errorf("q.nc4 --compress 5 with a missing runoff file: got %v, want the runoff file named", err)
	}
}
