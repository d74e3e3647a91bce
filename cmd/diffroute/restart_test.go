package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// writeRunoffPart writes steps [t0, t1) of the demo basin's runoff to a
// netCDF file of its own.
func writeRunoffPart(t *testing.T, x *diffroute.DataTensor, t0, t1 int, path string) {
	t.Helper()
	if err := data.WriteQoutNC(path, x.SliceTime(t0, t1), &data.QoutOptions{Var: "runoff"}); err != nil {
		t.Fatal(err)
	}
}

// 365 days routed whole equal days 1–180 routed with --state-out followed by
// days 181–365 with --state-in, for every IRF and both methods, unstaged,
// staged and time-chunked; through RAPID's Qfinal → --qinit for Muskingum.
func TestRouteRestartEqualsWholeRun(t *testing.T) {
	dir := t.TempDir()
	runoff := filepath.Join(demoBasin, "runoff.nc")
	x, err := data.ReadRunoffNC(runoff, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, second := filepath.Join(dir, "first.nc"), filepath.Join(dir, "second.nc")
	writeRunoffPart(t, x, 0, 180, first)
	writeRunoffPart(t, x, 180, 365, second)
	type irfCase struct {
		irf    string
		params []string
	}
	irfs := []irfCase{
		{"muskingum", nil},
		{"linear_storage", []string{"--param", "tau=0.7"}},
		{"nash_cascade", []string{"--param", "tau=0.4"}},
		{"pure_lag", []string{"--param", "delay=1.5"}},
		{"hayami", []string{"--param", "L=1", "--param", "D=0.3", "--param", "c=1.5"}},
	}
	modes := []struct {
		name string
		args []string
	}{
		{"plain", nil},
		{"staged", []string{"--max-nodes", "300", "--max-paths", "5000"}},
		{"chunked", []string{"--time-chunk", "40"}},
	}
	for _, ic := range irfs {
		for _, method := range []string{"recursive", "kernel"} {
			for _, m := range modes {
				if method == "kernel" && ic.irf != "muskingum" && ic.irf != "hayami" {
					continue // the kernel build dominates (the core's tests cover every IRF)
				}
				name := ic.irf + "/" + method + "/" + m.name
				t.Run(name, func(t *testing.T) {
					base := append([]string{"route", "--quiet", "--rapid", demoBasin, "--irf", ic.irf, "--method", method,
						"--max-delay", "40", "--substep", "43200"}, ic.params...)
					base = append(base, m.args...)
					if method == "kernel" && m.name == "chunked" {
						base = append(base, "--time-chunk", "90") // each chunk builds the kernel again
					}
					p := filepath.Join(dir, strings.ReplaceAll(name, "/", "-"))
					whole, a, b, st := p+"-whole.nc", p+"-a.nc", p+"-b.nc", p+"-state.nc"
					for _, args := range [][]string{
						{"--runoff", runoff, "--out", whole},
						{"--runoff", first, "--out", a, "--state-out", st},
						{"--runoff", second, "--out", b, "--state-in", st},
					} {
						if _, err := runCLI(t, append(append([]string{}, base...), args...)...); err != nil {
							t.Fatal(err)
						}
					}
					want := readQ(t, whole)
					if d := maxRelDiff(t, readQ(t, b), want.SliceTime(180, 365)); d > 1e-6 {
						t.Errorf("days 181-365 after a restart differ from the whole run by %.3g", d)
					}
					if d := maxRelDiff(t, readQ(t, a), want.SliceTime(0, 180)); d > 1e-6 {
						t.Errorf("days 1-180 differ from the whole run by %.3g", d)
					}
				})
			}
		}
	}
	t.Run("qfinal", func(t *testing.T) {
		base := []string{"route", "--quiet", "--rapid", demoBasin, "--substep", "3600"}
		whole, a, b := filepath.Join(dir, "qf-whole.nc"), filepath.Join(dir, "qf-a.nc"), filepath.Join(dir, "qf-b.nc")
		for _, ext := range []string{".nc", ".csv"} {
			qf := filepath.Join(dir, "qfinal"+ext)
			for _, args := range [][]string{
				{"--runoff", runoff, "--out", whole},
				{"--runoff", first, "--out", a, "--qfinal", qf},
				{"--runoff", second, "--out", b, "--qinit", qf},
			} {
				if _, err := runCLI(t, append(append([]string{}, base...), args...)...); err != nil {
					t.Fatal(err)
				}
			}
			if d := maxRelDiff(t, readQ(t, b), readQ(t, whole).SliceTime(180, 365)); d > 1e-6 {
				t.Errorf("Qfinal (%s) -> --qinit differs from the whole run by %.3g", ext, d)
			}
		}
	})
}

// The same runoff file can be given again: steps up to the state's time are
// skipped. States that do not fit the run are refused in one line.
func TestRouteStateRefusals(t *testing.T) {
	dir := t.TempDir()
	runoff := filepath.Join(demoBasin, "runoff.nc")
	x, err := data.ReadRunoffNC(runoff, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, late := filepath.Join(dir, "first.nc"), filepath.Join(dir, "late.nc")
	writeRunoffPart(t, x, 0, 100, first)
	writeRunoffPart(t, x, 120, 200, late)
	base := []string{"route", "--quiet", "--rapid", demoBasin}
	st := filepath.Join(dir, "state.nc")
	whole := filepath.Join(dir, "whole.nc")
	if _, err := runCLI(t, append(base, "--runoff", runoff, "--out", whole)...); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, append(base, "--runoff", first, "--out", filepath.Join(dir, "a.nc"), "--state-out", st)...); err != nil {
		t.Fatal(err)
	}
	rest := filepath.Join(dir, "rest.nc")
	if _, err := runCLI(t, append(base, "--runoff", runoff, "--out", rest, "--state-in", st)...); err != nil {
		t.Fatal(err)
	}
	got := readQ(t, rest)
	if got.T != 265 {
		t.Fatalf("continuing over the whole file wrote %d steps, want the 265 after the state", got.T)
	}
	if d := maxRelDiff(t, got, readQ(t, whole).SliceTime(100, 365)); d > 1e-6 {
		t.Errorf("continued run differs from the whole run by %.3g", d)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"gap", []string{"--runoff", late}, "not contiguous"},
		{"covered", []string{"--runoff", first}, "no step is left to route"},
		{"irf", []string{"--runoff", runoff, "--irf", "linear_storage", "--param", "tau=1"}, "IRF"},
		{"substep", []string{"--runoff", runoff, "--substep", "3600"}, "sub-steps"},
		{"method", []string{"--runoff", runoff, "--method", "kernel"}, "method"},
		{"params", []string{"--runoff", runoff, "--irf", "muskingum", "--param", "k=0.5", "--param", "x=0.2"}, "--state-force"},
		{"network", []string{"--runoff", filepath.Join(xx9, "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc"), "--rapid", xx9}, "another network"},
		{"qinit", []string{"--runoff", runoff, "--qinit", filepath.Join(xx9, "qinit_erai_t511_3hr_20030121to20030122.csv")}, "--qinit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{}, base...), c.args...)
			args = append(args, "--out", filepath.Join(dir, c.name+".nc"), "--state-in", st)
			_, err := runCLI(t, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, c.want)
			}
			if _, serr := os.Stat(filepath.Join(dir, c.name+".nc")); serr == nil {
				t.Error("a refused run left an output file")
			}
		})
	}
	// --state-force accepts other parameters and a gap.
	if _, err := runCLI(t, append(base, "--runoff", late, "--out", filepath.Join(dir, "forced.nc"), "--state-in", st, "--state-force")...); err != nil {
		t.Errorf("--state-force refused: %v", err)
	}
}
