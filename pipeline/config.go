package pipeline

import (
	"io"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/progress"
)

// Config describes one routing run. Each field says the diffroute route flag
// that sets it; messages about a field name that flag.
type Config struct {
	RAPID string // RAPID folder: rapid_connect.csv, riv_bas_id.csv, k.csv, x.csv (--rapid)

	// Runoff is the runoff file, in a format registered in package data
	// (netCDF or CSV); RunoffVar picks its variable (default: guessed) and
	// RunoffUnits says "m3" (volume per step, RAPID's m3_riv) or "m3/s"
	// (default: the file's units attribute). (--runoff, --runoff-var,
	// --runoff-units)
	Runoff, RunoffVar, RunoffUnits string
	// PixelRunoff (Feather) replaces Runoff: it is interpolated onto the
	// catchments with Weights (Feather). (--pixel-runoff, --weights)
	PixelRunoff, Weights string
	// Qinit is RAPID's initial discharge file (--qinit); recursive method.
	Qinit string
	// Out is the discharge file, format by extension (--out); "" keeps the
	// discharge in Result only (not possible when streaming).
	Out string
	// OutFormat names the output format (nc, nc4, csv, parquet) whatever
	// Out's extension; Compress is its compression level (0: the format's
	// default: deflate 4 for nc4, zstd 3 for Parquet; -1: none); OutLayout
	// is Parquet's table layout, long (rivid, time, Q) or wide. Reach
	// coordinates come from the RAPID folder's comid_lat_lon_z.csv when it
	// has one. (--out-format, --compress, --out-layout)
	OutFormat string
	Compress  int
	OutLayout string
	// InPlace lets a plain recursive run written to Out route in the
	// router's own order (diffroute.RoutingOrder), into the runoff tensor
	// itself: runoff and discharge are then read in memory order and held
	// once, several times faster on large networks with half the memory.
	// Result.Runoff is then nil and Result.Discharge's rows come in that
	// order (labelled by reach id); the file is the same. With Outputs,
	// only the runoff of the reaches routed is read (from a netCDF file,
	// skipping the rest where the layout allows). A series long enough,
	// written to a classic netCDF file, is read, routed and written in
	// time chunks that overlap (chunk k+1 read while chunk k is routed and
	// chunk k-1 written; Result.TimeChunk says so, and Result.Discharge is
	// nil). The command line's route sets it.
	InPlace bool

	// Step is the runoff step (default: the file's time spacing), SubStep
	// the routing sub-step (default: Step); Step/SubStep must be whole.
	// (--step, --substep)
	Step, SubStep time.Duration

	// Options are the routing options. SubSteps and Params are filled in by
	// Run; Method "" lets the planner choose under a budget (recursive
	// otherwise). Options.Device is set by Run for Device "cuda".
	Options diffroute.Options
	// Params gives an IRF parameter the same value on every reach
	// (--param name=value), ParamsFile per-reach values in a CSV of
	// rivid,<name>,… (--params). Without either, Muskingum takes k and x
	// from the RAPID folder.
	// ParamsFrom is a folder written by diffroute calibrate (--params-from):
	// its k.csv and x.csv (Muskingum) or params.csv.
	Params     map[string]float64
	ParamsFile string
	ParamsFrom string
	// ParamsMap, when set, computes per-reach parameters from the network
	// and the runoff step (route --map-from: a map learned by calibrate,
	// applied to this basin's reach attributes). They replace the RAPID
	// folder's k.csv and x.csv and --params-from; --param and --params
	// still override them.
	ParamsMap func(net *diffroute.Network, step time.Duration) (diffroute.Params, error)

	// Budget is the memory budget in bytes (--mem-budget): the planner picks
	// method, staging and time chunk. 0: no budget, but a run whose runoff
	// and discharge would take more than half the available memory plans
	// for that half.
	Budget int64
	// WholeProcess makes Budget bound this whole process, as the command
	// line's --mem-budget does: the plan adds what the process holds when
	// it plans (ProcessMemory: the mapped binary and libraries, the heap)
	// to the run's own prediction (diffroute.PlanIn). Otherwise Budget
	// bounds the run's own memory, as a library caller or a notebook counts
	// it.
	WholeProcess bool
	// TimeChunk routes in chunks of that many steps, streaming runoff in and
	// discharge out (--time-chunk); MaxNodes and MaxPaths stage the network
	// in clusters (--max-nodes, --max-paths).
	TimeChunk int
	MaxNodes  int
	MaxPaths  int64
	// Outputs is a file of reach ids, one a line: only they and what drains
	// into them are routed and written (--outputs).
	Outputs string

	// StateIn continues a run from a state file written by StateOut: runoff
	// steps up to the state's time are skipped, and a state that does not
	// fit the run (network, method, IRF, parameters, sub-steps, conventions,
	// time) is refused, parameters and time unless StateForce. StateOut
	// receives the state at the end of the run, and every StateEvery steps
	// when > 0. Qfinal receives RAPID's final discharge (.nc: RAPID's Qfinal;
	// otherwise its qinit CSV). (--state-in, --state-out, --state-every,
	// --state-force, --qfinal)
	StateIn, StateOut, Qfinal string
	StateEvery                int
	StateForce                bool

	// Device is "cpu" (or "") or "cuda" (binaries built with -tags cuda);
	// GPU is the CUDA device ordinal. (--device, --gpu)
	Device string
	GPU    int

	// Log receives one-line reports (the plan, what was routed, timings);
	// Warn receives warnings; Progress draws progress bars. nil: nothing.
	Log, Warn io.Writer
	Progress  progress.Reporter
}

// Result is what a run read and routed.
type Result struct {
	RAPID   *data.RAPID
	Options diffroute.Options // as routed: parameters, sub-steps, method
	// Runoff (m³/s) and Discharge hold the whole series; both are nil when
	// the run streamed in time chunks. Discharge rows are in network order
	// but after a run routed in place (Config.InPlace), when Runoff is nil.
	// An ensemble routed in memory is routed member by member: Runoff is
	// nil, and Discharge holds every member when Out is "" (nil otherwise:
	// each member went to Out as soon as it was routed).
	Runoff, Discharge *diffroute.DataTensor
	Plan              *diffroute.MemoryPlan // nil without a budget
	Clusters          *diffroute.Clusters   // nil when not staged
	TimeChunk         int                   // steps per chunk; 0: not streamed
	Step              time.Duration         // runoff step
	Elapsed, Routing  time.Duration         // whole run; routing alone
	DeviceReport      string                // where GPU time went ("" on the CPU)
}

// SubSteps is the number of routing sub-steps per runoff step.
func (r *Result) SubSteps() int { return r.Options.SubSteps }

// ConfigError is a run refused for its configuration (contradictory or
// invalid fields) before any routing; the command line exits with status 2
// for it.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func configErrorf(format string, a ...any) error {
	return &ConfigError{Msg: sprintf(format, a...)}
}
