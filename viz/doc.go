// Package viz renders diffroute values for people: charts (hydrographs,
// impulse responses, river networks, memory plans, cluster schedules), HTML
// summaries of networks and tensors, and progress bars.
//
// Charts are Apache ECharts charts built with go-echarts and rendered
// offline: the echarts.min.js library is embedded in this package (see
// assets/ for its version, LICENSE and NOTICE) and inlined into the output,
// so pages and notebooks work without network access.
//
// In a GoNB notebook, Display shows any value inline as HTML (the ECharts
// library is sent once per kernel session) and NewProgress draws an
// in-place progress bar in the cell. Outside a notebook the same calls print
// plain text, and Page / WriteHTML write standalone HTML files.
//
// Viewers that do not run a notebook's scripts (code hosts showing committed
// notebooks) show charts blank. With DIFFROUTE_NOTEBOOK_PNG=1 in the
// environment (SnapshotEnv) and Chromium installed, Display gives each chart
// output a static PNG snapshot as well, taken with headless Chromium: one
// output holding both text/html and image/png, of which Jupyter shows the
// interactive HTML. Snapshot renders such an image on its own.
//
// Chart constructors never fail outright: a chart built from bad input
// carries the error (see Chart.Err) and displays it in place of the chart,
// which keeps notebook cells to one line:
//
//	viz.Display(viz.Hydrograph(q, viz.Reaches(101, 205)))
//
// The package depends on the core diffroute package; the core never imports
// it.
package viz
