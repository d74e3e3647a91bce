package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/diffroute-go/route/pipeline"

	"github.com/diffroute-go/route/viz"
)

func runDemo(ctx context.Context, args []string, stdout io.Writer) error {
	const synopsis = "diffroute demo [--basin DIR] [--out DIR] [route flags]"
	fs := newFlags("demo", synopsis)
	var rf routeFlags
	rf.register(fs)
	basin := fs.String("basin", filepath.Join("testdata", "demo_basin"), "RAPID folder with runoff.nc (generated if absent)")
	out := fs.String("out", filepath.Join("out", "demo"), "folder for Qout.nc and hydrograph.html")
	if err := parseFlags(fs, synopsis, args, stdout); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { rf.methodSet = rf.methodSet || f.Name == "method" })
	if err := rf.validate("demo"); err != nil {
		return err
	}
	if err := checkWritable("demo", "out", *out, true); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*basin, "rapid_connect.csv")); os.IsNotExist(err) {
		// Outside the repository: make the same basin in a temporary folder.
		tmp, err := os.MkdirTemp("", "diffroute-demo-basin")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		if err := generateBasin(tmp, demoSpec); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s not found: generated the demo basin in %s\n", *basin, tmp)
		*basin = tmp
	}
	cfg := rf.config(stdout)
	cfg.RAPID, cfg.Runoff, cfg.SubStep, cfg.Out = *basin, filepath.Join(*basin, "runoff.nc"), time.Hour, filepath.Join(*out, "Qout.nc")
	res, err := pipeline.Run(ctx, cfg)
	if err != nil {
		return cliError(err)
	}
	return demoReport(res, *out, stdout)
}

// demoReport charts the largest outlet and two of its upstream reaches and
// prints their peaks.
func demoReport(res *pipeline.Result, dir string, stdout io.Writer) error {
	net := res.RAPID.Network
	outlet := 0
	for _, o := range net.Outlets() {
		if net.Size(o) > net.Size(outlet) || net.Down(outlet) >= 0 {
			outlet = o
		}
	}
	ids := []int64{net.ID(outlet)}
	// Walk up the main stem: the largest upstream reach, twice, a few reaches apart.
	v := outlet
	for hop := 1; hop <= 12 && len(net.Upstream(v)) > 0; hop++ {
		best := net.Upstream(v)[0]
		for _, u := range net.Upstream(v) {
			if net.Size(int(u)) > net.Size(int(best)) {
				best = u
			}
		}
		v = int(best)
		if hop%6 == 0 {
			ids = append(ids, net.ID(v))
		}
	}
	chart := viz.Hydrograph(res.Discharge, viz.Reaches(ids...), viz.Title(fmt.Sprintf("Discharge at outlet %d and up its main stem", ids[0])), viz.Units("m³/s"))
	if err := chart.Err(); err != nil {
		return err
	}
	html := filepath.Join(dir, "hydrograph.html")
	if err := viz.WriteHTML(html, "diffroute demo", chart); err != nil {
		return err
	}
	for _, id := range ids {
		i, _ := net.Index(id)
		peak, at := float32(0), 0
		for t, q := range res.Discharge.Series(0, i) {
			if q > peak {
				peak, at = q, t
			}
		}
		label := fmt.Sprint(at)
		if len(res.Discharge.Times) > at {
			label = res.Discharge.Times[at]
		}
		fmt.Fprintf(stdout, "reach %d (%d reaches upstream): peak %.1f m3/s at %s\n", id, net.Size(i), peak, label)
	}
	fmt.Fprintf(stdout, "wrote %s\n", html)
	return nil
}
