// Package calibrate fits routing parameters to observed discharge with the
// exact gradients of package diffroute: per-reach calibration against
// gauges, and learning a map from reach attributes to parameters that
// carries over to basins without gauges (DiffHydro's two routing
// workflows).
//
// The pieces, from observation to parameters:
//
//   - Gauges hold observed discharge at some reaches (NaN = missing), and
//     Loss measures a fit per gauge (1 − NSE, 1 − KGE, MSE, 1 − log-NSE)
//     with its gradient; Gauges.LossFunc averages it over gauges, after a
//     warm-up, as a diffroute.LossFunc.
//   - A Space maps free variables to per-reach parameters: a Map (one
//     value per reach, per group, or learned from standardised reach
//     attributes by a linear model or a small MLP) followed by a Transform
//     per parameter (a sigmoid between bounds, or exp above a minimum).
//   - Run optimises the free variables with Adam on random time windows or
//     with L-BFGS on the whole training period, with early stopping on a
//     validation period and an optional ridge towards the start.
//   - For basins that do not fit in memory: Sequential calibrates a
//     per-reach space cluster by cluster, from headwaters to outlets, each
//     cluster against its own gauges; StagedGradient gives Run the whole
//     basin's exact gradient computed cluster by cluster, for maps whose
//     free variables all reaches share (a reach upstream of a gauge's
//     cluster still feels that gauge).
//
// Twenty gauges do not identify each reach's own k (the hydrographs see
// travel times summed along rivers); a law of reach attributes with a few
// free variables is identified. See the twin experiment in BENCHMARKS.md.
//
// Every gradient is exact: the routing gradient comes from the core's
// reverse mode, the loss, transform and map gradients are written out here
// and checked against central finite differences in the tests.
package calibrate
