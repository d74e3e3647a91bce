package pipeline_test

import (
	"context"
	"fmt"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/pipeline"
)

// The README's library snippet: RAPID's test basin routed from its files in
// one call, then the same numbers from the core's router, and both against
// RAPID's own output.
func Example() {
	ctx := context.Background()
	dir := "../testdata/rapid_xx9"
	res, err := pipeline.Run(ctx, pipeline.Config{
		RAPID:   dir,
		Runoff:  dir + "/m3_riv_bas_erai_t511_3hr_20030121to20030122.nc",
		SubStep: 15 * time.Minute, // 12 routing steps per 3-hour runoff step
	})
	if err != nil {
		panic(err)
	}
	q := res.Discharge // (batch, reach, time), m³/s, reaches in riv_bas_id.csv order

	// The same with the core alone: runoff volumes (m³ per step) to m³/s,
	// Muskingum k and x from the RAPID folder, one router.
	cfg, _ := data.ReadRAPID(dir)
	runoff, _ := data.ReadSeries(dir+"/m3_riv_bas_erai_t511_3hr_20030121to20030122.nc", &data.NCOptions{IDs: cfg.ConnectIDs})
	_ = data.VolumeToRate(runoff, 3*time.Hour)
	params, _ := cfg.Muskingum(3 * time.Hour)
	router, _ := diffroute.NewRouter(ctx, cfg.Network, diffroute.Options{Params: params, SubSteps: 12})
	q2, _ := router.Route(ctx, runoff)

	rapid, _ := data.ReadSeries(dir+"/Qout_erai_t511_3hr_20030121to20030122.nc", nil)
	outlet := cfg.Network.ID(cfg.Network.Outlets()[0])
	mine, _ := q.SeriesOf(0, outlet)
	core, _ := q2.SeriesOf(0, outlet)
	theirs, _ := rapid.SeriesOf(0, outlet)
	st := diffroute.Stats(mine)
	fmt.Printf("outlet %d: peak %.4g m³/s at %s\n", outlet, st.Peak, q.Times[st.PeakStep])
	fmt.Printf("pipeline = core router: %v\n", fmt.Sprint(mine) == fmt.Sprint(core))
	fmt.Printf("NSE against RAPID's Qout: %.6f\n", diffroute.NSE(mine, theirs))
	// Output:
	// outlet 17880298: peak 0.06191 m³/s at 2003-01-21T18:00:00Z
	// pipeline = core router: true
	// NSE against RAPID's Qout: 1.000000
}
