package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/diffroute-go/diffroute/basins"
	"github.com/diffroute-go/diffroute/data"
	"github.com/diffroute-go/diffroute/diffroute"
)

// basinSpec describes a generated RAPID basin.
type basinSpec struct {
	reaches, days int
	seed          uint64
}

// demoSpec is the bundled demo basin in testdata/demo_basin.
var demoSpec = basinSpec{reaches: 2000, days: 365, seed: 42}

func runGenerate(_ context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute generate --out DIR [--reaches N] [--days T] [--seed S] [--basins B]"
	fs := newFlags("generate", synopsis)
	out := fs.String("out", "", "folder to write the RAPID files and runoff.nc into")
	spec := demoSpec
	fs.IntVar(&spec.reaches, "reaches", spec.reaches, "number of reaches")
	fs.IntVar(&spec.days, "days", spec.days, "number of daily runoff steps")
	fs.Uint64Var(&spec.seed, "seed", spec.seed, "random seed (same seed, same basin)")
	world := fs.Int("basins", 0, "write a world of B basins (DIR/basin_001, …; --reaches in all, sizes spread 10×) for route --basins")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"generate: --out is required"}
	}
	if spec.reaches < 1 || spec.days < 1 {
		return usageError{"generate: --reaches and --days must be ≥ 1"}
	}
	if *world > 0 {
		sizes, err := basins.GenerateWorld(*out, basins.WorldOptions{Basins: *world, Reaches: spec.reaches, Days: spec.days, Seed: spec.seed})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %d basins of %d to %d reaches (%d in all) with %d daily steps to %s\n", len(sizes), slices.Min(sizes), slices.Max(sizes), spec.reaches, spec.days, *out)
		return nil
	}
	if err := generateBasin(*out, spec); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a %d-reach basin with %d daily steps to %s\n", spec.reaches, spec.days, *out)
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
		fmt.Fprintf(&ks, "%.1f\n", 3600*(2+18*rng.Float64()))
		fmt.Fprintf(&xs, "%.3f\n", 0.1+0.2*rng.Float64())
	}
	// The basin file lists reaches in another order than rapid_connect.csv.
	for _, p := range rng.Perm(n) {
		fmt.Fprintf(&bas, "%d\n", net.ID(p))
	}
	files := map[string]string{"rapid_connect.csv": conn.String(), "riv_bas_id.csv": bas.String(), "k.csv": ks.String(), "x.csv": xs.String()}
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
	return data.WriteQoutNC(filepath.Join(dir, "runoff.nc"), runoff, &data.QoutOptions{Var: "runoff", Title: "synthetic lateral runoff", Comment: fmt.Sprintf("diffroute generate --reaches %d --days %d --seed %d", spec.reaches, spec.days, spec.seed)})
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
