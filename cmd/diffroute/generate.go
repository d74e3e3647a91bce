package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/diffroute-go/route/atomicfile"
	"github.com/diffroute-go/route/basins"
	"github.com/diffroute-go/route/calibrate"
	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// basinSpec describes a generated RAPID basin.
type basinSpec struct {
	reaches, days int
	seed          uint64
	// attributes writes attributes.csv and draws k and x from them by
	// calibrate.MuskingumLaw, with log-normal noise of that deviation.
	attributes bool
	noise      float64
	// gauges > 0 writes observed.csv: the discharge of that many reaches
	// routed with the true k and x on sub-steps of obsSub, times
	// (1 + obsNoise·N(0, 1)).
	gauges   int
	obsSub   time.Duration
	obsNoise float64
}

// demoSpec is the bundled demo basin in testdata/demo_basin.
var demoSpec = basinSpec{reaches: 2000, days: 365, seed: 42}

func runGenerate(_ context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute generate --out DIR [--reaches N] [--days T] [--seed S] [--attributes [--noise F]] [--gauges N [--obs-substep SEC] [--obs-noise F]] [--basins B]"
	fs := newFlags("generate", synopsis)
	out := fs.String("out", "", "folder to write the RAPID files and runoff.nc into")
	spec := demoSpec
	fs.IntVar(&spec.reaches, "reaches", spec.reaches, "number of reaches")
	fs.IntVar(&spec.days, "days", spec.days, "number of daily runoff steps")
	fs.Uint64Var(&spec.seed, "seed", spec.seed, "random seed (same seed, same basin)")
	world := fs.Int("basins", 0, "write a world of B basins (DIR/basin_001, …; --reaches in all, sizes spread 10×) for route --basins")
	combined := fs.String("combined", "", "with --basins: also write the whole world as one RAPID folder here (to compare with one run)")
	fs.BoolVar(&spec.attributes, "attributes", false, "write attributes.csv (length_m, area_km2, slope) and draw k, x from them: k = L/c, c = 0.8 m/s (A/1000 km2)^0.15 (S/0.001)^0.2 in [3600, 72000] s, x = 0.35 - 0.06 log10(A/km2) in [0.05, 0.4]")
	fs.Float64Var(&spec.noise, "noise", 0, "with --attributes: log-normal scatter of k and x around the law (standard deviation of the log)")
	fs.IntVar(&spec.gauges, "gauges", 0, "write observed.csv: discharge at this many gauges (reaches draining many others), routed with the true k and x")
	obsSub := fs.Float64("obs-substep", 3600, "with --gauges: routing sub-step of the observed discharge, in seconds")
	fs.Float64Var(&spec.obsNoise, "obs-noise", 0, "with --gauges: relative Gaussian noise on the observed discharge (0.05 is 5 %)")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"generate: --out is required"}
	}
	if spec.reaches < 1 || spec.days < 1 {
		return usageError{"generate: --reaches and --days must be ≥ 1"}
	}
	if err := checkGeneratedSize("generate", "reaches", spec.reaches, spec.days); err != nil {
		return err
	}
	switch {
	case spec.noise < 0 || math.IsNaN(spec.noise) || spec.noise > 2:
		return usageError{fmt.Sprintf("generate: --noise %v: want a deviation in [0, 2]", spec.noise)}
	case spec.noise > 0 && !spec.attributes:
		return usageError{"generate: --noise scatters the attribute law: add --attributes"}
	case spec.gauges < 0 || spec.gauges > spec.reaches:
		return usageError{fmt.Sprintf("generate: --gauges %d: want 0 to the number of reaches", spec.gauges)}
	case spec.obsNoise < 0 || math.IsNaN(spec.obsNoise) || spec.obsNoise > 1:
		return usageError{fmt.Sprintf("generate: --obs-noise %v: want a relative noise in [0, 1]", spec.obsNoise)}
	case !(*obsSub > 0) || math.Mod(86400, *obsSub) != 0:
		return usageError{fmt.Sprintf("generate: --obs-substep %v: want seconds that divide a day", *obsSub)}
	}
	spec.obsSub = time.Duration(*obsSub * float64(time.Second))
	if *world > 0 {
		if spec.attributes || spec.gauges > 0 {
			return usageError{"generate: --basins writes plain basins: drop --attributes and --gauges"}
		}
		sizes, err := basins.GenerateWorld(*out, basins.WorldOptions{Basins: *world, Reaches: spec.reaches, Days: spec.days, Seed: spec.seed})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d basins of %d to %d reaches (%d in all) with %d daily steps to %s\n", len(sizes), slices.Min(sizes), slices.Max(sizes), spec.reaches, spec.days, *out)
		if *combined != "" {
			if err := basins.CombineWorld(*out, *combined); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wrote the whole world as one basin to %s\n", *combined)
		}
		return nil
	}
	if err := generateBasin(*out, spec); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a %d-reach basin with %d daily steps to %s\n", spec.reaches, spec.days, *out)
	if spec.gauges > 0 {
		fmt.Fprintf(stdout, "observed.csv: discharge at %d gauges (noise %g %%)\n", spec.gauges, 100*spec.obsNoise)
	}
	return nil
}

// generateBasin writes a synthetic basin in RAPID layout: rapid_connect.csv
// (shuffled, as real files are), riv_bas_id.csv, k.csv (seconds), x.csv and
// runoff.nc (runoff(time, river_id) in m³/s, daily from 2000-01-01).
func generateBasin(dir string, spec basinSpec) error {
	net := diffroute.SyntheticNetwork(spec.reaches, spec.seed)
	rng := rand.New(rand.NewPCG(spec.seed, 7))
	n := net.Len()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var attrs *calibrate.Attributes
	var lawK, lawX []float64
	if spec.attributes {
		attrs = calibrate.SyntheticAttributes(net, spec.seed)
		lawK, lawX = calibrate.MuskingumLaw(attrs, spec.noise, spec.seed)
	}
	var conn, bas, ks, xs strings.Builder
	for i := 0; i < n; i++ {
		down := int64(0)
		if d := net.Down(i); d >= 0 {
			down = net.ID(d)
		}
		ups := net.Upstream(i)
		fmt.Fprintf(&conn, "%d,%d,%d", net.ID(i), down, len(ups))
		for k := 0; k < 3; k++ { // RAPID pads the upstream columns with zeros
			if k < len(ups) {
				fmt.Fprintf(&conn, ",%d", net.ID(int(ups[k])))
			} else {
				conn.WriteString(",0")
			}
		}
		conn.WriteString("\n")
		// k between 2 and 20 hours, like reaches of a few to tens of km.
		k, x := 3600*(2+18*rng.Float64()), 0.1+0.2*rng.Float64()
		if attrs != nil {
			k, x = lawK[i], lawX[i]
		}
		fmt.Fprintf(&ks, "%.1f\n", k)
		fmt.Fprintf(&xs, "%.3f\n", x)
	}
	// The basin file lists reaches in another order than rapid_connect.csv.
	for _, p := range rng.Perm(n) {
		fmt.Fprintf(&bas, "%d\n", net.ID(p))
	}
	files := map[string]string{"rapid_connect.csv": conn.String(), "riv_bas_id.csv": bas.String(), "k.csv": ks.String(), "x.csv": xs.String()}
	if attrs != nil {
		var b strings.Builder
		b.WriteString("rivid," + strings.Join(attrs.Names, ",") + "\n")
		for i, row := range attrs.Values {
			fmt.Fprintf(&b, "%d,%.1f,%.4f,%.6g\n", net.ID(i), row[0], row[1], row[2])
		}
		files["attributes.csv"] = b.String()
	}
	for name, content := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), []byte(content)); err != nil {
			return err
		}
	}
	runoff := diffroute.SyntheticRunoff(net, 1, spec.days, spec.seed)
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	runoff.Times = make([]string, spec.days)
	for t := range runoff.Times {
		runoff.Times[t] = start.AddDate(0, 0, t).Format(time.RFC3339)
	}
	runoff.Step = 24 * time.Hour
	runoff.Units = "m3 s-1"
	if err := data.WriteQoutNC(filepath.Join(dir, "runoff.nc"), runoff, &data.QoutOptions{Var: "runoff", Title: "synthetic lateral runoff", Comment: fmt.Sprintf("diffroute generate --reaches %d --days %d --seed %d", spec.reaches, spec.days, spec.seed)}); err != nil {
		return err
	}
	if spec.gauges == 0 {
		return nil
	}
	return writeObserved(filepath.Join(dir, "observed.csv"), net, runoff, spec)
}

// writeObserved routes the basin's true k (as written to k.csv, rounded to
// 0.1 s) and x at the chosen gauges and writes observed.csv, with noise.
func writeObserved(path string, net *diffroute.Network, runoff *diffroute.DataTensor, spec basinSpec) error {
	cfg, err := data.ReadRAPID(filepath.Dir(path))
	if err != nil {
		return err
	}
	p, err := cfg.Muskingum(runoff.Step)
	if err != nil {
		return err
	}
	f := int(runoff.Step / spec.obsSub)
	ids := calibrate.ChooseGauges(net, spec.gauges, spec.seed)
	sel, err := diffroute.Select(cfg.Network, diffroute.Options{Params: p, SubSteps: f}, ids)
	if err != nil {
		return err
	}
	q, err := sel.Route(context.Background(), runoff)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(spec.seed, 0x0b5))
	for k, v := range q.Data {
		q.Data[k] = float32(max(0, float64(v)*(1+spec.obsNoise*rng.NormFloat64())))
	}
	return data.WriteCSVTableFile(path, q)
}

// writeFileAtomic writes the command's small text outputs (CSV, JSON):
// the whole file or, on error, nothing.
var writeFileAtomic = atomicfile.WriteBytes
