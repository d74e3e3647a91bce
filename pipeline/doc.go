// Package pipeline routes a basin from files to files: it opens the inputs
// (a RAPID folder, runoff or pixel runoff with interpolation weights, an
// initial state), plans for a memory budget, routes — whole, staged by
// clusters, streamed in time chunks, for selected reaches only, on the CPU
// or a GPU — and writes the discharge, with progress, cancellation and a
// memory policy. The command line (diffroute route, diffroute demo) is flag
// parsing around one call of Run, and a notebook routes its basin with the
// same call:
//
//	res, err := pipeline.Run(ctx, pipeline.Config{RAPID: dir, Runoff: file, SubStep: 15 * time.Minute})
//	q := res.Discharge // by reach, in m³/s
//
// File formats are chosen by extension through package data's registry
// (data.SeriesFormatFor).
package pipeline
