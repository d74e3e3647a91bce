package main

import (
	"flag"

	"github.com/diffroute-go/route/pipeline"
)

// outFlags choose the output format beyond the --out extension.
type outFlags struct {
	format, layout string
	compress       int
}

func (o *outFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.format, "out-format", "", "output format whatever --out's extension: nc (RAPID Qout, classic), nc4 (netCDF-4, compressed, CF-1.8), csv or parquet")
	fs.IntVar(&o.compress, "compress", 0, "compression level: 1-9 deflate (nc4), 1-22 zstd (parquet); -1 none; 0 the format's default")
	fs.StringVar(&o.layout, "out-layout", "", "Parquet layout: long (rivid, time, Q rows; default) or wide (a column per reach)")
}

func (o *outFlags) apply(c *pipeline.Config) {
	c.OutFormat, c.Compress, c.OutLayout = o.format, o.compress, o.layout
}
