// Command refroute is the plain exact reference for the side-by-side
// benchmark (scripts/peers.sh): Muskingum routing of a RAPID folder, one
// reach at a time in topological order, sub-step after sub-step, in float64,
// with no blocking, no vector code and no goroutines. It follows RAPID's
// conventions (runoff constant over its step enters the reach's inflow at
// both ends of every sub-step) and averages the fine values of each step as
// diffroute's --average does: start (RAPID's Qout) or end (river-route).
//
//	refroute --rapid DIR --runoff FILE --substep SEC --out FILE.nc [--average start|end]
//
// It reads and writes with the data package, so that an end-to-end time
// compares the routing loops and not the file readers.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "refroute:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("refroute", flag.ContinueOnError)
	rapidDir := fs.String("rapid", "", "RAPID folder (rapid_connect.csv, riv_bas_id.csv, k.csv, x.csv)")
	runoffPath := fs.String("runoff", "", "runoff netCDF, (time, reach), in m3 s-1 or m3 per step")
	subSec := fs.Float64("substep", 0, "routing sub-step in seconds (default: the runoff step)")
	out := fs.String("out", "", "Qout netCDF to write")
	average := fs.String("average", "start", "fine values averaged per step: start (RAPID) or end (river-route)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rapidDir == "" || *runoffPath == "" || *out == "" {
		return errors.New("--rapid, --runoff and --out are required")
	}
	if *average != "start" && *average != "end" {
		return fmt.Errorf("--average %q: want start or end", *average)
	}
	r, err := data.ReadRAPID(*rapidDir)
	if err != nil {
		return err
	}
	runoff, err := data.ReadRunoffNC(*runoffPath, &data.NCOptions{IDs: r.ConnectIDs})
	if err != nil {
		return err
	}
	if runoff.Step <= 0 {
		return fmt.Errorf("%s: no uniform time step", *runoffPath)
	}
	if u := strings.ReplaceAll(runoff.Units, " ", ""); u == "m3" || u == "m^3" {
		if err := data.VolumeToRate(runoff, runoff.Step); err != nil {
			return err
		}
	}
	sub := runoff.Step
	if *subSec > 0 {
		sub = time.Duration(*subSec * float64(time.Second))
	}
	f := int(runoff.Step / sub)
	if f < 1 || time.Duration(f)*sub != runoff.Step {
		return fmt.Errorf("--substep %v does not divide the runoff step %v", sub, runoff.Step)
	}
	q, err := route(r, runoff, sub.Seconds(), f, *average == "end")
	if err != nil {
		return err
	}
	return data.WriteQoutNC(*out, q, nil)
}

// route runs the Muskingum recurrence
//
//	Q(n+1) = C1·I(n+1) + C2·I(n) + C3·Q(n),  I = Σ upstream Q + lateral
//
// over every sub-step of length dt, f sub-steps per runoff step, and returns
// the mean of each step's f fine values in the runoff's reach order.
func route(r *data.RAPID, runoff *diffroute.DataTensor, dt float64, f int, averageEnd bool) (*diffroute.DataTensor, error) {
	net := r.Network
	n, steps := net.Len(), runoff.T

	// Row of each network reach in the runoff tensor.
	rowOf := make(map[int64]int, runoff.N)
	for k, id := range runoff.IDs {
		rowOf[id] = k
	}
	row := make([]int, n)
	for i := range n {
		j, ok := rowOf[net.ID(i)]
		if !ok {
			return nil, fmt.Errorf("reach %d has no runoff", net.ID(i))
		}
		row[i] = j
	}

	c1, c2, c3 := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		k, x := r.K[i], r.X[i]
		d := dt/k + 2*(1-x)
		c1[i] = (dt/k - 2*x) / d
		c2[i] = (dt/k + 2*x) / d
		c3[i] = (2*(1-x) - dt/k) / d
	}

	order := topological(net)
	q := make([]float64, n)      // discharge at the current fine time
	upPrev := make([]float64, n) // Σ upstream Q at the start of the sub-step
	upNext := make([]float64, n) // Σ upstream Q at its end, filled in order
	sum := make([]float64, n)
	lat := make([]float64, n) // this step's runoff
	out := diffroute.NewDataTensor(1, runoff.IDs, steps)
	out.Times, out.Step, out.Units = runoff.Times, runoff.Step, "m3 s-1"

	for t := range steps {
		clear(sum)
		for i := range n {
			lat[i] = float64(runoff.At(0, row[i], t))
		}
		for range f {
			for _, i := range order {
				if !averageEnd {
					sum[i] += q[i]
				}
				q[i] = c1[i]*(upNext[i]+lat[i]) + c2[i]*(upPrev[i]+lat[i]) + c3[i]*q[i]
				if averageEnd {
					sum[i] += q[i]
				}
				if d := net.Down(i); d >= 0 {
					upNext[d] += q[i]
				}
			}
			upPrev, upNext = upNext, upPrev
			clear(upNext)
		}
		for i := range n {
			out.Set(0, row[i], t, float32(sum[i]/float64(f)))
		}
	}
	for _, v := range out.Data {
		if math.IsNaN(float64(v)) {
			return nil, errors.New("NaN in the discharge (NaN runoff?)")
		}
	}
	return out, nil
}

// topological returns every reach once, each after all reaches draining into
// it (Kahn's algorithm on the downstream links).
func topological(net *diffroute.Network) []int {
	n := net.Len()
	pending := make([]int, n) // upstream reaches not yet placed
	for i := range n {
		if d := net.Down(i); d >= 0 {
			pending[d]++
		}
	}
	order := make([]int, 0, n)
	for i := range n {
		if pending[i] == 0 {
			order = append(order, i)
		}
	}
	for k := 0; k < len(order); k++ {
		if d := net.Down(order[k]); d >= 0 {
			if pending[d]--; pending[d] == 0 {
				order = append(order, d)
			}
		}
	}
	return order
}
