package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

const xx9 = "../../testdata/rapid_xx9"

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, &out)
	return out.String(), err
}

// compareQout returns the max pointwise relative error (values above 1e-9 of
// the reach's peak) and the median NSE of got against want.
func compareQout(t *testing.T, got, want *diffroute.DataTensor) (maxRel, medNSE float64) {
	t.Helper()
	w, err := want.SelectIDs(got.IDs)
	if err != nil {
		t.Fatal(err)
	}
	if w.T != got.T {
		t.Fatalf("got %d steps, want %d", got.T, w.T)
	}
	var nses []float64
	for i := 0; i < got.N; i++ {
		ws, gs := w.Series(0, i), got.Series(0, i)
		peak, mean := 0.0, 0.0
		for _, v := range ws {
			peak = max(peak, math.Abs(float64(v)))
			mean += float64(v) / float64(len(ws))
		}
		num, den := 0.0, 0.0
		for q := range ws {
			d := float64(gs[q]) - float64(ws[q])
			num += d * d
			den += (float64(ws[q]) - mean) * (float64(ws[q]) - mean)
			if math.Abs(float64(ws[q])) > 1e-9*peak && peak > 0 {
				maxRel = max(maxRel, math.Abs(d)/math.Abs(float64(ws[q])))
			}
		}
		if den > 0 {
			nses = append(nses, 1-num/den)
		}
	}
	sort.Float64s(nses)
	return maxRel, nses[len(nses)/2]
}

func TestRouteRAPIDxx9(t *testing.T) {
	dir := t.TempDir()
	want, err := data.ReadRunoffNC(filepath.Join(xx9, "Qout_erai_t511_3hr_20030121to20030122.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		args   []string
		maxRel float64
		minNSE float64
	}{
		{"recursive-nc", []string{"--runoff", filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc"), "--method", "recursive", "--out", filepath.Join(dir, "r.nc")}, 1e-5, 0.99999},
		{"recursive-csv", []string{"--runoff", filepath.Join(xx9, "m3_riv.csv"), "--runoff-units", "m3", "--out", filepath.Join(dir, "r.csv")}, 1e-5, 0.99999},
		{"kernel-pad2", []string{"--runoff", filepath.Join(xx9, "m3_riv.csv"), "--runoff-units", "m3", "--method", "kernel", "--max-delay", "16", "--out", filepath.Join(dir, "k2.csv")}, 1e-5, 0.9999},
		{"compat-diffroute", []string{"--runoff", filepath.Join(xx9, "m3_riv.csv"), "--runoff-units", "m3", "--compat", "diffroute", "--max-delay", "16", "--out", filepath.Join(dir, "c.csv")}, math.Inf(1), 0.999},
		{"kernel-pad1", []string{"--runoff", filepath.Join(xx9, "m3_riv.csv"), "--runoff-units", "m3", "--method", "kernel", "--max-delay", "16", "--fft-pad", "1", "--out", filepath.Join(dir, "k1.csv")}, math.Inf(1), 0.999},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"route", "--quiet", "--rapid", xx9, "--step", "10800", "--substep", "900", "--average", "start"}, c.args...)
			if _, err := runCLI(t, args...); err != nil {
				t.Fatal(err)
			}
			out := c.args[len(c.args)-1]
			var got *diffroute.DataTensor
			if strings.HasSuffix(out, ".csv") {
				got, err = data.ReadCSVTableFile(out)
			} else {
				got, err = data.ReadRunoffNC(out, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := data.ReadRAPID(xx9)
			for i, id := range got.IDs {
				if id != cfg.Network.ID(i) {
					t.Fatalf("output reach %d is %d, want riv_bas_id order (%d)", i, id, cfg.Network.ID(i))
				}
			}
			rel, nse := compareQout(t, got, want)
			t.Logf("%s: max relative error %.3g, median NSE %.8f", c.name, rel, nse)
			if rel > c.maxRel || nse < c.minNSE {
				t.Errorf("%s: max relative error %.3g (limit %.3g), median NSE %.6f (limit %.6f)", c.name, rel, c.maxRel, nse, c.minNSE)
			}
		})
	}
}

func TestRouteQinit(t *testing.T) {
	out := filepath.Join(t.TempDir(), "q.nc")
	_, err := runCLI(t, "route", "--quiet", "--rapid", xx9, "--runoff", filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc"),
		"--step", "10800", "--substep", "900", "--qinit", filepath.Join(xx9, "qinit_erai_t511_3hr_20030121to20030122.csv"), "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := data.ReadRunoffNC(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := data.ReadRunoffNC(filepath.Join(xx9, "Qout_erai_t511_3hr_20030121to20030122_init.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// RAPID's qinit values are ≤ 1.5e-8 m³/s, so compare relative to each
	// reach's peak (pointwise, tiny early values differ by ~5e-9 m³/s).
	if worst := maxRelDiff(t, got, want); worst > 1e-5 {
		t.Errorf("qinit run: max error relative to peak %.3g", worst)
	}
}

func TestRouteErrors(t *testing.T) {
	dir := t.TempDir()
	nc := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	badDir := filepath.Join(dir, "bad")
	os.MkdirAll(badDir, 0o755)
	for _, f := range []string{"riv_bas_id.csv", "k.csv", "x.csv"} {
		b, _ := os.ReadFile(filepath.Join(xx9, f))
		os.WriteFile(filepath.Join(badDir, f), b, 0o644)
	}
	os.WriteFile(filepath.Join(badDir, "rapid_connect.csv"), []byte("17880258,17880834,0,0,0\n17880268,abc,0,0,0\n"), 0o644)
	idsDir := filepath.Join(dir, "bad", "ids")
	os.MkdirAll(idsDir, 0o755)
	nIDs := 0
	ids := func(content string) string {
		nIDs++
		p := filepath.Join(idsDir, fmt.Sprintf("ids%d.txt", nIDs))
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	// Finite runoff so large that routed discharge overflows float32.
	huge := filepath.Join(dir, "bad", "huge.csv")
	var hb strings.Builder
	hb.WriteString("time,17880258,17880268,17880282,17880284,17880298,17880830,17880832,17880834,17880836\n")
	for q := 0; q < 6; q++ {
		fmt.Fprintf(&hb, "%d%s\n", q, strings.Repeat(",3e38", 9))
	}
	os.WriteFile(huge, []byte(hb.String()), 0o644)
	cases := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no command", []string{}, true, "no command"},
		{"unknown command", []string{"rout"}, true, "unknown command"},
		{"missing out", []string{"route", "--rapid", xx9, "--runoff", nc}, true, "--out"},
		{"bad flag", []string{"route", "--bogus"}, true, "bogus"},
		{"bad out ext", []string{"route", "--rapid", xx9, "--runoff", nc, "--out", filepath.Join(dir, "q.txt")}, true, "netCDF (.nc), netCDF-4 (.nc4), CSV (.csv) or Parquet (.parquet)"},
		{"fractional substeps", []string{"route", "--rapid", xx9, "--runoff", nc, "--substep", "1000", "--out", filepath.Join(dir, "q.nc")}, true, "try --substep 900 or 1080"},
		{"sub-nanosecond substep", []string{"route", "--rapid", xx9, "--runoff", nc, "--substep", "1e-12", "--out", filepath.Join(dir, "q.nc")}, true, "--substep"},
		{"negative step", []string{"route", "--rapid", xx9, "--runoff", nc, "--step", "-3", "--out", filepath.Join(dir, "q.nc")}, true, "--step"},
		{"infinite step", []string{"route", "--rapid", xx9, "--runoff", nc, "--step", "Inf", "--out", filepath.Join(dir, "q.nc")}, true, "--step"},
		{"microsecond substep", []string{"route", "--rapid", xx9, "--runoff", nc, "--substep", "0.000001", "--out", filepath.Join(dir, "q.nc")}, false, "sub-steps per runoff step"},
		{"zero max delay", []string{"route", "--rapid", xx9, "--runoff", nc, "--max-delay", "0", "--out", filepath.Join(dir, "q.nc")}, true, "--max-delay"},
		{"zero block size", []string{"route", "--rapid", xx9, "--runoff", nc, "--block-size", "0", "--out", filepath.Join(dir, "q.nc")}, true, "--block-size"},
		{"plan negative reaches", []string{"plan", "--reaches", "-5", "--steps", "10", "--mem-budget", "1GiB"}, true, "--reaches"},
		{"plan zero substeps", []string{"plan", "--reaches", "5", "--steps", "10", "--substeps", "0", "--mem-budget", "1GiB"}, true, "--substeps"},
		{"bench zero kernel reaches", []string{"bench", "--kernel-reaches", "0"}, true, "--kernel-reaches"},
		{"bench zero max delay", []string{"bench", "--max-delay", "0"}, true, "--max-delay"},
		{"outputs unknown id", []string{"route", "--rapid", xx9, "--runoff", nc, "--outputs", ids("17880830\n999\n"), "--out", filepath.Join(dir, "q.nc")}, false, ".txt:2: reach 999 is not in the network"},
		{"outputs twice", []string{"route", "--rapid", xx9, "--runoff", nc, "--outputs", ids("17880830\n\n17880830\n"), "--out", filepath.Join(dir, "q.nc")}, false, ".txt:3: reach 17880830 is listed twice (first on line 1)"},
		{"unknown param", []string{"route", "--rapid", xx9, "--runoff", nc, "--param", "k=0.1", "--param", "x=0.2", "--param", "tua=3", "--out", filepath.Join(dir, "q.nc")}, true, "--param tua: IRF muskingum has no parameter"},
		{"overflowing discharge", []string{"route", "--rapid", xx9, "--runoff", huge, "--runoff-units", "m3/s", "--step", "10800", "--out", filepath.Join(dir, "q.nc")}, false, "too large for float32"},
		{"overflowing discharge streamed", []string{"route", "--rapid", xx9, "--runoff", huge, "--runoff-units", "m3/s", "--step", "10800", "--time-chunk", "3", "--out", filepath.Join(dir, "q.nc")}, false, "too large for float32"},
		{"missing rapid dir", []string{"route", "--rapid", filepath.Join(dir, "nope"), "--runoff", nc, "--out", filepath.Join(dir, "q.nc")}, false, "nope"},
		{"bad connect", []string{"route", "--rapid", badDir, "--runoff", nc, "--out", filepath.Join(dir, "q.nc")}, false, "rapid_connect.csv:2"},
		{"csv without step", []string{"route", "--rapid", xx9, "--runoff", filepath.Join(xx9, "m3_riv.csv"), "--runoff-units", "m3", "--out", filepath.Join(dir, "q.nc")}, false, "--step"},
		{"unknown units", []string{"route", "--rapid", xx9, "--runoff", filepath.Join(xx9, "m3_riv.csv"), "--step", "10800", "--out", filepath.Join(dir, "q.nc")}, false, "units"},
		{"unknown irf", []string{"route", "--rapid", xx9, "--runoff", nc, "--irf", "foo", "--out", filepath.Join(dir, "q.nc")}, true, "--irf \"foo\": unknown IRF"},
		{"missing param", []string{"route", "--rapid", xx9, "--runoff", nc, "--irf", "linear_storage", "--out", filepath.Join(dir, "q.nc")}, true, "--param tau=VALUE"},
		{"bad method", []string{"route", "--rapid", xx9, "--runoff", nc, "--method", "magic", "--out", filepath.Join(dir, "q.nc")}, true, "--method \"magic\": want recursive or kernel"},
		{"bad device", []string{"route", "--rapid", xx9, "--runoff", nc, "--device", "tpu", "--out", filepath.Join(dir, "q.nc")}, true, "cpu or cuda"},
		{"cuda needs kernel", []string{"route", "--rapid", xx9, "--runoff", nc, "--device", "cuda", "--out", filepath.Join(dir, "q.nc")}, true, "--method kernel"},
		{"cuda not built", []string{"route", "--rapid", xx9, "--runoff", nc, "--device", "cuda", "--method", "kernel", "--out", filepath.Join(dir, "q.nc")}, false, "without CUDA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "cuda not built" && cudaEmulated {
				t.Skip("built with the emulated CUDA device (tag cudaemu)")
			}
			_, err := runCLI(t, c.args...)
			if err == nil {
				t.Fatal("no error")
			}
			var ue usageError
			if errors.As(err, &ue) != c.usage {
				t.Errorf("usage error = %v, want %v (%v)", !c.usage, c.usage, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 { // only "bad"
		for _, e := range entries {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestDemo(t *testing.T) {
	out := t.TempDir()
	s, err := runCLI(t, "demo", "--basin", "../../testdata/demo_basin", "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Qout.nc", "hydrograph.html"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("demo did not write %s", f)
		}
	}
	if !strings.Contains(s, "peak") {
		t.Errorf("demo output lacks the peak summary:\n%s", s)
	}
	q, err := data.ReadRunoffNC(filepath.Join(out, "Qout.nc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.N != 2000 || q.T != 365 {
		t.Errorf("demo Qout dims %d x %d", q.N, q.T)
	}
}

// Every command prints its flags for -h, -help and --help (a "h" flag of its
// own once made -h demand an argument).
func TestHelpFlag(t *testing.T) {
	for _, c := range commands {
		for _, h := range []string{"-h", "-help", "--help"} {
			out, err := runCLI(t, c.name, h)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%s %s: err %v, want flag.ErrHelp", c.name, h, err)
			}
			if !strings.Contains(out, "usage: diffroute "+c.name) {
				t.Errorf("%s %s printed no usage:\n%s", c.name, h, out)
			}
		}
	}
}

// A cancelled run, streamed in time chunks or not, returns the context's
// error and leaves no output file (streamed runs used to blame the writer
// for missing steps when the reader noticed the cancellation first).
func TestRouteCancelled(t *testing.T) {
	dir := t.TempDir()
	nc := filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 20; i++ {
		for _, extra := range [][]string{{"--time-chunk", "2"}, {"--max-nodes", "3"}, nil} {
			args := append([]string{"route", "--quiet", "--rapid", xx9, "--runoff", nc, "--substep", "900", "--out", filepath.Join(dir, "q.nc")}, extra...)
			err := run(ctx, args, io.Discard)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%v: err %v, want context.Canceled", extra, err)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a cancelled run left %s", entries[0].Name())
	}
}

// --out naming an input file is refused before anything is read or written,
// and a runoff file without time steps is an error, not an empty Qout.
func TestRouteOutputIsInput(t *testing.T) {
	dir := t.TempDir()
	rapid := filepath.Join(dir, "rapid")
	os.MkdirAll(rapid, 0o755)
	for _, f := range []string{"rapid_connect.csv", "riv_bas_id.csv", "k.csv", "x.csv", "m3_riv.csv"} {
		b, err := os.ReadFile(filepath.Join(xx9, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(rapid, f), b, 0o644)
	}
	runoff := filepath.Join(rapid, "m3_riv.csv")
	base := []string{"route", "--quiet", "--rapid", rapid, "--runoff", runoff, "--runoff-units", "m3", "--step", "10800"}
	for _, out := range []string{runoff, filepath.Join(rapid, "k.csv"), filepath.Join(rapid, ".", "x.csv")} {
		before, _ := os.ReadFile(out)
		_, err := runCLI(t, append(base, "--out", out)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "input file") {
			t.Errorf("--out %s: err %v, want a usage error about the input file", out, err)
		}
		if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
			t.Errorf("--out %s: the input was overwritten", out)
		}
	}
	empty := filepath.Join(dir, "empty.csv")
	header, _, _ := strings.Cut(string(must(os.ReadFile(runoff))), "\n")
	os.WriteFile(empty, []byte(header+"\n"), 0o644)
	out := filepath.Join(dir, "q.csv")
	if _, err := runCLI(t, "route", "--quiet", "--rapid", rapid, "--runoff", empty, "--runoff-units", "m3", "--step", "10800", "--out", out); err == nil || !strings.Contains(err.Error(), "no time steps") {
		t.Errorf("runoff without steps: err %v", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("runoff without steps wrote an output file")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
