package basins

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diffroute-go/route/atomicfile"
	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// Basin is one basin of a basins folder.
type Basin struct {
	Name  string // the folder's name
	Dir   string // the basin's folder
	RAPID string // its RAPID configuration folder: Dir, or Dir/configs (GEOGLOWS layout)
}

// Discover lists the basins under root, sorted by name: every folder that
// holds rapid_connect.csv, itself or in a configs/ subfolder (the layout of
// GEOGLOWS VPUs and of package download).
func Discover(root string) ([]Basin, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("basins: %w", err)
	}
	var out []Basin
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		for _, cfg := range []string{dir, filepath.Join(dir, "configs")} {
			if fi, err := os.Stat(filepath.Join(cfg, data.RAPIDConnectFile)); err == nil && fi.Mode().IsRegular() {
				out = append(out, Basin{Name: e.Name(), Dir: dir, RAPID: cfg})
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("basins: %s holds no basin (no subfolder with %s)", root, data.RAPIDConnectFile)
	}
	return out, nil
}

// Task is one unit of work: one basin, one ensemble member.
type Task struct {
	Basin  string `json:"basin"`
	Member string `json:"member,omitempty"`
	RAPID  string `json:"rapid"`  // RAPID configuration folder
	Runoff string `json:"runoff"` // runoff file
	// Observed is a calibration task's observed discharge: a file of the
	// basin's folder, or the basin's cut of one file for all basins.
	Observed string `json:"observed,omitempty"`
	// Reaches, Steps and SubSteps size the run; Predicted is the planner's
	// peak resident memory of the route command, Request what a task reserves
	// (Predicted plus the netCDF reader's copy and library), Seconds the
	// expected run time.
	Reaches   int     `json:"reaches"`
	Steps     int     `json:"steps"`
	SubSteps  int     `json:"substeps"`
	Predicted int64   `json:"predicted_bytes"`
	Request   int64   `json:"request_bytes"`
	Seconds   float64 `json:"expected_seconds"`
}

// Dir is the task's output folder relative to the job's: basin[/member].
func (t *Task) Dir() string {
	if t.Member == "" {
		return t.Basin
	}
	return filepath.Join(t.Basin, t.Member)
}

// Name names the task in messages: basin or basin/member.
func (t *Task) Name() string { return filepath.ToSlash(t.Dir()) }

// Kinds of job: what each task runs.
const (
	KindRoute     = "route"     // `diffroute route`: OUT/<basin>/Qout.nc
	KindCalibrate = "calibrate" // `diffroute calibrate`: OUT/<basin>/k.csv, x.csv (or params.csv), report.csv, …
)

// Job is a multi-basin run: its tasks, how each is routed, and where.
type Job struct {
	Version int `json:"version"`
	// Kind is KindRoute (also when empty) or KindCalibrate.
	Kind   string `json:"kind,omitempty"`
	Basins string `json:"basins"` // the basins folder
	Out    string `json:"out"`    // the job folder (absolute)
	Runoff string `json:"runoff"` // --runoff as given: a name in each basin folder, or one file
	// Observed is --observed of a calibration job as given: a name in each
	// basin folder, or one file for all basins (cut per basin by reach id).
	Observed string `json:"observed,omitempty"`
	// Members are the ensemble members ({member} in Runoff); none: one run per basin.
	Members []string `json:"members,omitempty"`
	// RouteArgs are passed to every task's command (`diffroute route` or
	// `diffroute calibrate`) after its own --rapid, --runoff, --observed
	// and --out; {basin} and {member} in them are replaced.
	RouteArgs []string `json:"route_args,omitempty"`
	Tasks     []Task   `json:"tasks"`
	// Bundles group tasks into Slurm array tasks (index = array index).
	Bundles [][]int `json:"bundles"`
}

// JobFile is the name of a job's description in its folder.
const JobFile = "job.json"

// Throughput used for expected run times: routed reach-sub-steps per second
// of one task, end to end (reading, routing, writing). The recursive
// Muskingum router does 500-1,300 M/s per core here; 50 M/s leaves room
// for slower IRFs, file systems and busy nodes.
const planRate = 50e6

// PrepareOptions describe a multi-basin run to Prepare.
type PrepareOptions struct {
	// Kind is what every task runs: KindRoute (default) or KindCalibrate.
	Kind string
	// Observed is a calibration's observed discharge: a file name in each
	// basin folder, or one file for all basins, cut per basin by reach id
	// into OUT/<basin>/observed.csv.
	Observed string
	// Epochs is a calibration's number of optimizer iterations (for the
	// expected run time; default 100).
	Epochs    int
	Basins    string   // folder of basins (see Discover)
	Out       string   // job folder
	Runoff    string   // file name in each basin folder ({basin}, {member} replaced), or one file for all basins
	Members   []string // ensemble members; {member} must appear in Runoff
	RouteArgs []string // flags for every route command
	// SubSteps and Options tune the memory plan: the IRF and method the
	// route commands use (zero: Muskingum, recursive, one sub-step).
	SubSteps int
	Options  diffroute.Options
	// TaskSeconds bundles small tasks into Slurm array tasks of about this
	// expected run time (0: one task per array index).
	TaskSeconds float64
	// Only, when not empty, keeps the basins of these names.
	Only []string
}

// Prepare discovers the basins, resolves each task's runoff and plans its
// memory and run time with diffroute.Plan.
func Prepare(o PrepareOptions) (*Job, error) {
	if o.Runoff == "" {
		return nil, errors.New("basins: no runoff given")
	}
	switch o.Kind {
	case "", KindRoute:
		o.Kind = ""
		if o.Observed != "" {
			return nil, errors.New("basins: observed discharge is for calibration jobs")
		}
	case KindCalibrate:
		if o.Observed == "" {
			return nil, errors.New("basins: a calibration job needs observed discharge")
		}
		if len(o.Members) > 0 {
			return nil, errors.New("basins: a calibration job has no ensemble members")
		}
	default:
		return nil, fmt.Errorf("basins: unknown job kind %q", o.Kind)
	}
	if len(o.Members) > 0 && !strings.Contains(o.Runoff, "{member}") {
		return nil, fmt.Errorf("basins: runoff %q has no {member} to replace with the %d members", o.Runoff, len(o.Members))
	}
	for _, m := range o.Members {
		if m == "" || strings.ContainsAny(m, `/\ `) || m == "." || m == ".." {
			return nil, fmt.Errorf("basins: member name %q must be a plain word (it names a folder)", m)
		}
	}
	// Absolute paths: tasks run from other folders (Slurm nodes, --resume).
	root, err := filepath.Abs(o.Basins)
	if err != nil {
		return nil, err
	}
	list, err := Discover(root)
	if err != nil {
		return nil, err
	}
	if len(o.Only) > 0 {
		keep := list[:0]
		for _, b := range list {
			if slices.Contains(o.Only, b.Name) {
				keep = append(keep, b)
			}
		}
		if len(keep) == 0 {
			return nil, fmt.Errorf("basins: none of %s is a basin of %s", strings.Join(o.Only, ", "), o.Basins)
		}
		list = keep
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	job := &Job{Version: 1, Kind: o.Kind, Basins: root, Out: out, Runoff: o.Runoff, Observed: o.Observed, Members: o.Members, RouteArgs: o.RouteArgs}
	var cut *observedCut
	if o.Kind == KindCalibrate && sharedObserved(o.Observed, list) {
		if cut, err = readObservedCut(o.Observed); err != nil {
			return nil, err
		}
	}
	members := o.Members
	if len(members) == 0 {
		members = []string{""}
	}
	f := max(o.SubSteps, 1)
	// One runoff file for all basins: read its labels once.
	type runoffInfo struct {
		T, N int // steps, reaches of the file
		step time.Duration
	}
	shared := map[string]runoffInfo{}
	var mu sync.Mutex // guards shared and cut
	// planBasin reads a basin's network and plans its tasks.
	planBasin := func(b Basin) ([]Task, error) {
		cfg, err := data.ReadRAPID(b.RAPID)
		if err != nil {
			return nil, fmt.Errorf("basin %s: %w", b.Name, err)
		}
		var tasks []Task
		for _, m := range members {
			t := Task{Basin: b.Name, Member: m, RAPID: b.RAPID, Reaches: cfg.Network.Len(), SubSteps: f}
			if t.Runoff, err = resolveRunoff(o.Runoff, b, m); err != nil {
				return nil, err
			}
			var ri runoffInfo
			if isInside(t.Runoff, b.Dir) {
				if ri.T, ri.N, ri.step, err = runoffSize(t.Runoff, cfg); err != nil {
					return nil, fmt.Errorf("basin %s: %w", t.Name(), err)
				}
			} else { // one file for all basins: read its labels once
				mu.Lock()
				var ok bool
				if ri, ok = shared[t.Runoff]; !ok {
					if ri.T, ri.N, ri.step, err = runoffSize(t.Runoff, cfg); err == nil {
						shared[t.Runoff] = ri
					}
				}
				mu.Unlock()
				if err != nil {
					return nil, fmt.Errorf("basin %s: %w", t.Name(), err)
				}
			}
			t.Steps = ri.T
			if o.Kind == KindCalibrate {
				if cut != nil {
					mu.Lock()
					t.Observed, err = cut.write(cfg.Network, b.Name, filepath.Join(out, t.Dir(), ObservedFile))
					mu.Unlock()
				} else {
					t.Observed, err = resolveFile("observed discharge", o.Observed, b, "")
				}
				if err != nil {
					return nil, err
				}
			}
			if err := planTask(&t, cfg, ri.step, ri.N, o.Kind, o.Epochs, o.Options); err != nil {
				return nil, fmt.Errorf("basin %s: %w", t.Name(), err)
			}
			tasks = append(tasks, t)
		}
		return tasks, nil
	}
	// Basins are planned on every CPU: reading the networks is most of
	// the time of preparing a large job.
	planned := make([][]Task, len(list))
	errs := make([]error, len(list))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(list), 8) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				planned[k], errs[k] = planBasin(list[k])
			}
		}()
	}
	for k := range list {
		next <- k
	}
	close(next)
	wg.Wait()
	for k := range list {
		if errs[k] != nil {
			return nil, errs[k]
		}
		job.Tasks = append(job.Tasks, planned[k]...)
	}
	if cut != nil && len(o.Only) == 0 {
		if err := cut.allUsed(); err != nil {
			return nil, err
		}
	}
	job.Bundles = Bundle(job.Tasks, o.TaskSeconds)
	return job, nil
}

// resolveRunoff finds a task's runoff: name with {basin} and {member}
// replaced, in the basin's folder (or its RAPID folder), else as a path.
func resolveRunoff(name string, b Basin, member string) (string, error) {
	return resolveFile("runoff", name, b, member)
}

// resolveFile finds a task's input file (what names it in errors).
func resolveFile(what, name string, b Basin, member string) (string, error) {
	p := strings.ReplaceAll(strings.ReplaceAll(name, "{basin}", b.Name), "{member}", member)
	var tried []string
	if !filepath.IsAbs(p) {
		for _, dir := range []string{b.Dir, b.RAPID} {
			c := filepath.Join(dir, p)
			if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() {
				return c, nil
			}
			tried = append(tried, c)
		}
	}
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return filepath.Abs(p)
	}
	tried = append(tried, p)
	return "", fmt.Errorf("basin %s: %s %q not found (looked for %s)", b.Name, what, name, strings.Join(slices.Compact(tried), ", "))
}

func isInside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && !strings.HasPrefix(rel, "..")
}

// runoffSize reads the number of steps and reaches and the step of a
// runoff file without its values (CSV tables are read whole).
func runoffSize(path string, cfg *data.RAPID) (T, N int, step time.Duration, err error) {
	// Ranged formats give labels only for TimeCount -1; others read whole.
	x, err := data.ReadSeries(path, &data.NCOptions{IDs: cfg.ConnectIDs, TimeCount: -1})
	if err != nil {
		return 0, 0, 0, err
	}
	T = len(x.Times)
	if T == 0 {
		T = x.T
	}
	return T, len(x.IDs), x.Step, nil
}

// planTask fills the task's memory and time predictions; fileReaches is
// the number of reaches of its runoff file, which the route command reads
// whole (one file for all basins costs every task the whole file).
func planTask(t *Task, cfg *data.RAPID, step time.Duration, fileReaches int, kind string, epochs int, opts diffroute.Options) error {
	if (opts.IRF == "" || opts.IRF == "muskingum") && opts.Params == nil {
		if step <= 0 {
			step = 24 * time.Hour
		}
		p, err := cfg.Muskingum(step)
		if err != nil {
			return err
		}
		opts.Params = p
	}
	e := Estimate(cfg.Network, t.Steps, t.SubSteps, fileReaches, opts)
	if kind == KindCalibrate {
		e = EstimateCalibration(cfg.Network, t.Steps, t.SubSteps, fileReaches, epochs, opts)
	}
	t.Predicted, t.Request, t.Seconds = e.Predicted, e.Request, e.Seconds
	return nil
}

// TaskEstimate is the plan of one task: the planner's predicted peak of the
// routing, the memory the task reserves (Request) and its expected run time.
type TaskEstimate struct {
	Predicted, Request int64
	Seconds            float64
}

// Estimate plans routing net for steps runoff steps of substeps sub-steps
// each, as one task whose runoff file holds fileReaches reaches (0: the
// network's): diffroute.Plan's predicted peak (opts give the IRF, its
// parameters and the method; default Muskingum, recursive), the reserved
// memory of Request, and the run time at planRate reach-sub-steps per
// second plus the file transfers.
func Estimate(net *diffroute.Network, steps, substeps, fileReaches int, opts diffroute.Options) TaskEstimate {
	if opts.IRF == "" {
		opts.IRF = "muskingum"
	}
	if opts.Method == "" {
		opts.Method = diffroute.Recursive
	}
	substeps = max(substeps, 1)
	opts.SubSteps = substeps
	n := int64(net.Len())
	series := n * int64(steps) * 4
	var e TaskEstimate
	if p, err := diffroute.Plan(net, max(steps, 1), 1, 0, opts); err == nil {
		e.Predicted = p.Predicted
	} else {
		// An IRF the plan cannot sample without its parameters: count the
		// runoff and discharge series and the network.
		e.Predicted = 2*series + n*400 + 16<<20
	}
	e.Request = Request(e.Predicted, max(n, int64(fileReaches))*int64(steps)*4)
	e.Seconds = float64(n)*float64(steps)*float64(substeps)/planRate + float64(series)/100e6 + 1
	return e
}

// EstimateCalibration plans a calibration of net over steps runoff steps
// (the `diffroute calibrate` of one basin): diffroute.PlanGradient's
// predicted peak of a forward and backward pass over the whole series
// (the calibration holds the runoff, the observations and the optimizer's
// state besides, which are small next to it), and epochs iterations of
// about three routings each.
func EstimateCalibration(net *diffroute.Network, steps, substeps, fileReaches, epochs int, opts diffroute.Options) TaskEstimate {
	if opts.IRF == "" {
		opts.IRF = "muskingum"
	}
	opts.Method = diffroute.Recursive
	substeps = max(substeps, 1)
	opts.SubSteps = substeps
	if epochs <= 0 {
		epochs = 100
	}
	n := int64(net.Len())
	series := n * int64(steps) * 4
	var e TaskEstimate
	if p, err := diffroute.PlanGradient(net, max(steps, 1), 1, 0, opts); err == nil {
		e.Predicted = p.Predicted
	} else {
		// About 32 bytes per reach and step: runoff, discharge, their
		// adjoints and the float64 forward state.
		e.Predicted = 8*series + n*400 + 16<<20
	}
	// The runoff as read, then selected: two copies of the file's part.
	e.Request = Request(e.Predicted, 2*max(n, int64(fileReaches))*int64(steps)*4)
	route := float64(n) * float64(steps) * float64(substeps) / planRate
	e.Seconds = float64(epochs+2)*3*route + float64(series)/100e6 + 1
	return e
}

// CommandBytes is the resident memory of the diffroute command beyond what
// the planner counts: its binary, libnetcdf, the Parquet/Arrow libraries
// and the Go runtime. Measured (/usr/bin/time -v, 2026-12-05): `diffroute
// irfs` peaks at 57 MiB and a route of 167 reaches at 64-72 MiB, of which
// the planner counts 12 MiB.
const CommandBytes = 80 << 20

// Request is the memory a task reserves: the planner's predicted peak of
// the routing, plus what the planner leaves to its caller: the netCDF
// reader's copy of the runoff file (read bytes), and the command's own
// baseline: binary, libraries and runtime (CommandBytes).
func Request(predicted, read int64) int64 {
	return predicted + read + CommandBytes
}

// Bundle groups tasks into bundles of about seconds expected run time each
// (every task alone when seconds ≤ 0), largest tasks first, tasks of
// different memory classes never together (each class is one Slurm array).
func Bundle(tasks []Task, seconds float64) [][]int {
	order := make([]int, len(tasks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := memClass(tasks[b].Request) - memClass(tasks[a].Request); c != 0 {
			return int(c)
		}
		return strings.Compare(tasks[a].Name(), tasks[b].Name())
	})
	var out [][]int
	var cur []int
	var sum float64
	for _, i := range order {
		if len(cur) > 0 && (seconds <= 0 || sum+tasks[i].Seconds > seconds || memClass(tasks[cur[0]].Request) != memClass(tasks[i].Request)) {
			out = append(out, cur)
			cur, sum = nil, 0
		}
		cur = append(cur, i)
		sum += tasks[i].Seconds
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// memClass rounds a request up to a power of two of MiB (at least 64 MiB):
// one Slurm array per class, whose --mem is the class's largest request.
func memClass(b int64) int64 {
	mib := max(64, (b+1<<20-1)>>20)
	return int64(1) << int64(math.Ceil(math.Log2(float64(mib))))
}

// Save writes the job description to Out/job.json (atomically).
func (j *Job) Save() error {
	if err := os.MkdirAll(j.Out, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(j.Out, JobFile), append(b, '\n'))
}

// Load reads the job of a job folder.
func Load(dir string) (*Job, error) {
	path := filepath.Join(dir, JobFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no job here (no %s)", dir, JobFile)
		}
		return nil, err
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if j.Version != 1 || len(j.Tasks) == 0 {
		return nil, fmt.Errorf("%s: not a job description of this version", path)
	}
	for k, b := range j.Bundles {
		for _, i := range b {
			if i < 0 || i >= len(j.Tasks) {
				return nil, fmt.Errorf("%s: bundle %d names task %d of %d", path, k, i, len(j.Tasks))
			}
		}
	}
	// The folder may have moved since it was written.
	if abs, err := filepath.Abs(dir); err == nil {
		j.Out = abs
	}
	return &j, nil
}

// Same reports whether two jobs do the same work (same tasks, inputs and
// route flags), so that a rerun may reuse the outputs of the other.
func (j *Job) Same(o *Job) bool {
	if j.Kind != o.Kind || j.Observed != o.Observed || j.Runoff != o.Runoff || !slices.Equal(j.Members, o.Members) || !slices.Equal(j.RouteArgs, o.RouteArgs) || len(j.Tasks) != len(o.Tasks) {
		return false
	}
	for i := range j.Tasks {
		a, b := j.Tasks[i], o.Tasks[i]
		if a.Basin != b.Basin || a.Member != b.Member || a.Runoff != b.Runoff || a.RAPID != b.RAPID || a.Observed != b.Observed {
			return false
		}
	}
	return true
}

// writeFileAtomic writes a job's small files (job, manifest, task states):
// the whole file or, on error, nothing.
var writeFileAtomic = atomicfile.WriteBytes
