package diffroute

import (
	"context"
	"fmt"
	"runtime"
)

// Method selects how a router computes discharge.
type Method string

const (
	// Recursive visits reaches upstream first, each running its recursive
	// filter or causal convolution over a block of sub-steps. Exact; the CPU
	// default.
	Recursive Method = "recursive"
	// Kernel builds DiffRoute's transitive-closure kernel and applies one
	// block-sparse causal convolution.
	Kernel Method = "kernel"
)

// LateralRule says how runoff, constant over its step Δ, enters a reach.
type LateralRule string

const (
	// LateralRAPID reproduces RAPID: in Q(n+1) = C0·I(n+1) + C1·I(n) + C2·Q(n)
	// both I(n) and I(n+1) carry the current step's runoff, even on the first
	// sub-step of a step. Only IRFs with a B1 term (Muskingum) are affected.
	LateralRAPID LateralRule = "rapid"
	// LateralLTI is DiffRoute's: runoff is upsampled and passed through the
	// plain IRF, so the first sub-step of a step sees the previous step's
	// runoff in I(n).
	LateralLTI LateralRule = "lti"
)

// Sampling says how fine-grid discharge becomes one value per runoff step.
type Sampling string

const (
	SampleAvg  Sampling = "avg"    // mean of the f fine values in the step
	SampleLast Sampling = "sample" // the last fine value of the step
)

// Average says which fine values represent a sub-step.
type Average string

const (
	// AverageStart uses Q at the start of each sub-step (RAPID's Qout): the
	// state before the step is included, the last value excluded.
	AverageStart Average = "start"
	// AverageEnd uses Q at the end of each sub-step (DiffRoute).
	AverageEnd Average = "end"
)

// Compat names a compatibility mode: a bundle of settings that reproduces
// another implementation's numbers.
type Compat string

const (
	// CompatNone is no compatibility mode: every setting is as given.
	CompatNone Compat = ""
	// CompatDiffRoute reproduces DiffRoute's numbers: the kernel method with
	// LateralLTI, AverageEnd, FFTPad 1, ReLU and renormalised path kernels.
	CompatDiffRoute Compat = "diffroute"
)

// Options configures routing. The zero value of each field means its default;
// the defaults reproduce RAPID's Qout.
type Options struct {
	IRF      string // registered IRF name; default "muskingum"
	Params   Params // per-reach IRF parameters, network index order
	SubSteps int    // f: routing sub-steps per runoff step; default 1
	Method   Method // default Recursive
	Lateral  LateralRule
	Sampling Sampling
	Average  Average
	// MaxDelay is the kernel length in runoff steps (and the window, times f,
	// of convolution IRFs such as pure_lag and hayami). Default 64.
	MaxDelay int
	// FFTPad multiplies the FFT length used to build path kernels: 1 is
	// DiffRoute's length W = MaxDelay·f, whose circular wrap-around folds the
	// path response beyond W back into the kernel; p folds only the response
	// beyond p·W (default 2). It matters only where path kernels are built by
	// FFT (convolution IRFs, Compat "diffroute"); IRFs with a recursive form
	// are built in the time domain, exactly, with no wrap-around.
	FFTPad int
	// ExcludeSelf adds a reach's own runoff to its discharge directly instead of
	// routing it through the reach (DiffRoute's include_index_diag = false).
	// It is the kernel method's: with Method unset it selects that method,
	// and the recursive method refuses it.
	ExcludeSelf bool
	// ReLU clips negative path-kernel taps and Normalize rescales each path
	// kernel to sum 1 (DiffRoute's post-processing; off by default).
	ReLU, Normalize bool
	// Compat CompatDiffRoute reproduces DiffRoute's numbers.
	Compat Compat
	// BlockSize is the tile size of the block-sparse kernel; default 16.
	BlockSize int
	// InitialQ is the discharge of each reach at the start (RAPID qinit),
	// network index order; nil means zero. Recursive method only.
	InitialQ []float64
	// Workers bounds parallelism; default GOMAXPROCS.
	Workers int
	// Device, when set, runs the kernel method there instead of on the CPU
	// (package gpu's *Device is one): NewRouter asks it for the router.
	Device Device
	// CheckpointSteps bounds the memory of gradient runs: the backward pass
	// keeps every reach's fine outflow for blocks of this many runoff steps,
	// recomputing all but the last block from state checkpoints (about one
	// more forward pass). 0 keeps the whole series in one block when the
	// outflows and adjoints of all reaches take at most 32 MiB, and cuts it
	// into blocks of about that size (at most 32 blocks) otherwise;
	// PlanGradient chooses for a budget.
	CheckpointSteps int
}

// Device is where a router can run other than this process's CPU cores.
// NewRouter calls NewRouter of Options.Device with the options, Device
// cleared, and returns what it returns.
type Device interface {
	NewRouter(ctx context.Context, net *Network, opts Options) (Router, error)
}

// MaxSubSteps bounds Options.SubSteps and MaxFineWindow bounds the fine
// window MaxDelay·SubSteps. Far beyond any useful resolution (a 1-second
// sub-step of a daily runoff step is f = 86,400; the default MaxDelay fits the
// window at MaxSubSteps), they turn a typo such as a sub-step in microseconds
// into a clear error instead of buffers that no machine could allocate.
const (
	MaxSubSteps   = 1 << 20
	MaxFineWindow = 1 << 26
)

// Resolved returns the options as a router uses them: defaults filled in
// and the compatibility mode applied, or the error NewRouter would give.
func (o Options) Resolved() (Options, error) { return o.withDefaults() }

// withDefaults returns a copy with defaults filled in and compatibility
// settings applied, or an error for contradictory settings.
func (o Options) withDefaults() (Options, error) {
	if o.IRF == "" {
		o.IRF = "muskingum"
	}
	if o.SubSteps == 0 {
		o.SubSteps = 1
	}
	if o.SubSteps < 0 {
		return o, fmt.Errorf("diffroute: sub-steps per runoff step must be ≥ 1, got %d", o.SubSteps)
	}
	if o.Lateral == "" {
		o.Lateral = LateralRAPID
	}
	if o.Sampling == "" {
		o.Sampling = SampleAvg
	}
	if o.Average == "" {
		o.Average = AverageStart
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 64
	}
	if o.FFTPad == 0 {
		o.FFTPad = 2
	}
	if o.BlockSize == 0 {
		o.BlockSize = 16
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	switch o.Compat {
	case CompatNone:
	case CompatDiffRoute:
		if o.Method == "" {
			o.Method = Kernel // ReLU and renormalisation act on path kernels
		}
		o.Lateral, o.Average, o.FFTPad, o.ReLU, o.Normalize = LateralLTI, AverageEnd, 1, true, true
	default:
		return o, fmt.Errorf("diffroute: unknown compat mode %q (want \"diffroute\")", o.Compat)
	}
	if o.Method == "" {
		o.Method = Recursive
		if o.ExcludeSelf || o.ReLU || o.Normalize {
			o.Method = Kernel // they act on path kernels
		}
	}
	switch {
	case o.Method != Recursive && o.Method != Kernel:
		return o, fmt.Errorf("diffroute: unknown method %q (want recursive or kernel)", o.Method)
	case o.Lateral != LateralRAPID && o.Lateral != LateralLTI:
		return o, fmt.Errorf("diffroute: unknown lateral rule %q (want rapid or lti)", o.Lateral)
	case o.Sampling != SampleAvg && o.Sampling != SampleLast:
		return o, fmt.Errorf("diffroute: unknown sampling %q (want avg or sample)", o.Sampling)
	case o.Average != AverageStart && o.Average != AverageEnd:
		return o, fmt.Errorf("diffroute: unknown average %q (want start or end)", o.Average)
	case o.SubSteps > MaxSubSteps:
		return o, fmt.Errorf("diffroute: %d sub-steps per runoff step is more than %d: choose a longer sub-step", o.SubSteps, MaxSubSteps)
	case o.MaxDelay < 1:
		return o, fmt.Errorf("diffroute: max delay must be ≥ 1 step, got %d", o.MaxDelay)
	case int64(o.MaxDelay)*int64(o.SubSteps) > MaxFineWindow:
		return o, fmt.Errorf("diffroute: max delay of %d steps × %d sub-steps is a window of %d sub-steps, more than %d: lower the max delay or the sub-steps",
			o.MaxDelay, o.SubSteps, int64(o.MaxDelay)*int64(o.SubSteps), MaxFineWindow)
	case o.FFTPad < 1:
		return o, fmt.Errorf("diffroute: FFT padding factor must be ≥ 1, got %d", o.FFTPad)
	case o.CheckpointSteps < 0:
		return o, fmt.Errorf("diffroute: checkpoint steps must be ≥ 0, got %d", o.CheckpointSteps)
	case o.BlockSize < 1:
		return o, fmt.Errorf("diffroute: block size must be ≥ 1, got %d", o.BlockSize)
	case o.InitialQ != nil && o.Method == Kernel:
		return o, fmt.Errorf("diffroute: an initial discharge (qinit) needs the recursive method")
	case o.Device != nil && o.Method != Kernel:
		return o, fmt.Errorf("diffroute: a device runs the kernel method; set Method to Kernel")
	case (o.ReLU || o.Normalize) && o.Method == Recursive:
		return o, fmt.Errorf("diffroute: ReLU and kernel normalisation (--compat diffroute) exist only in the kernel method")
	case o.ExcludeSelf && o.Method == Recursive:
		return o, fmt.Errorf("diffroute: excluded self pairs (--exclude-self) exist only in the kernel method: the recursive method routes every reach's own runoff through it")
	}
	return o, nil
}
