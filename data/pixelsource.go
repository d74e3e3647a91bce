package data

import (
	"context"
	"fmt"

	"github.com/diffroute-go/route/diffroute"
)

// A PixelRunoff table is the core's pixel source for catchment
// interpolation.
var _ diffroute.PixelSource = (*PixelRunoff)(nil)

// CoreWeights returns the weight table as the core's interpolation weights,
// sharing the columns.
func (w *Weights) CoreWeights() *diffroute.Weights {
	return &diffroute.Weights{RiverID: w.RiverID, Pixel: w.Pixel, Area: w.Area}
}

// OpenInterpolator opens a pixel runoff Feather file and reads a weight
// table Feather file (DiffHydro's <vpu>_daily_sparse_runoff.feather and
// <vpu>_interp_weight.feather) and prepares catchment interpolation over
// them. The interpolator reads the pixel file until the returned
// PixelRunoff is closed.
func OpenInterpolator(runoffPath, weightsPath string, opts *diffroute.InterpOptions) (*diffroute.Interpolator, *PixelRunoff, error) {
	w, err := ReadWeights(weightsPath)
	if err != nil {
		return nil, nil, err
	}
	src, err := OpenPixelRunoff(runoffPath)
	if err != nil {
		return nil, nil, err
	}
	in, err := diffroute.NewInterpolator(w.CoreWeights(), src, opts)
	if err != nil {
		src.Close()
		return nil, nil, err
	}
	return in, src, nil
}

// WriteCatchmentRunoffNC writes interpolated catchment runoff (one batch
// member, m3/s) as DiffHydro's processed runoff.nc: variable
// runoff(time, rivid) with rivid and CF time coordinates, written by
// WriteQoutNC. ReadRunoffNC reads it back.
func WriteCatchmentRunoffNC(path string, x *diffroute.DataTensor) error {
	return WriteQoutNC(path, x, &QoutOptions{
		Var:     "runoff",
		Title:   "diffroute-go catchment runoff",
		Comment: "lateral inflow per river: pixel runoff interpolated by catchment area",
	})
}

// InterpolateToNC interpolates the catchment runoff of rivers over all steps
// of the interpolator's pixel source and writes it with
// WriteCatchmentRunoffNC. The whole (rivers × steps) array is held in memory
// once.
func InterpolateToNC(ctx context.Context, path string, in *diffroute.Interpolator, rivers []int64) error {
	x, err := in.Interpolate(ctx, rivers, 0, in.Len())
	if err != nil {
		return err
	}
	if err := WriteCatchmentRunoffNC(path, x); err != nil {
		return fmt.Errorf("data: writing catchment runoff: %w", err)
	}
	return nil
}
