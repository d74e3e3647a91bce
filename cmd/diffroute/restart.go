package main

import (
	"flag"

	"github.com/diffroute-go/route/pipeline"
)

// restartFlags are route's restart options: state files in and out, and
// RAPID's Qfinal.
type restartFlags struct {
	in, out, qfinal string
	every           int
	force           bool
}

func (r *restartFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.in, "state-in", "", "continue from this state file (written by --state-out or --state-every); runoff steps up to the state's time are skipped")
	fs.StringVar(&r.out, "state-out", "", "write the routing state at the end of the run to this netCDF file, for --state-in")
	fs.IntVar(&r.every, "state-every", 0, "also write the state to --state-out every N runoff steps (crash recovery)")
	fs.BoolVar(&r.force, "state-force", false, "accept a --state-in whose IRF parameters or time differ from this run's")
	fs.StringVar(&r.qfinal, "qfinal", "", "write RAPID's final discharge: .nc (RAPID Qfinal) or .csv (RAPID qinit), for --qinit or RAPID")
}

func (r *restartFlags) apply(c *pipeline.Config) {
	c.StateIn, c.StateOut, c.Qfinal, c.StateEvery, c.StateForce = r.in, r.out, r.qfinal, r.every, r.force
}

// check refuses unwritable outputs before any input is read.
func (r *restartFlags) check() error {
	for _, f := range []struct{ flag, path string }{{"state-out", r.out}, {"qfinal", r.qfinal}} {
		if f.path == "" {
			continue
		}
		if err := checkWritable("route", f.flag, f.path, false); err != nil {
			return err
		}
	}
	return nil
}
