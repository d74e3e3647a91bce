package diffroute

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

type gradPlanCase struct {
	n, T, f  int
	irf      string
	maxDelay int
	ckpt     int // Options.CheckpointSteps
	method   Method
	compat   Compat
}

func (c gradPlanCase) opts() Options {
	return Options{Method: c.method, Compat: c.compat, IRF: c.irf, Params: testParams(c.irf, c.n, 1), SubSteps: c.f, MaxDelay: c.maxDelay, Workers: 2, CheckpointSteps: c.ckpt}
}

func (c gradPlanCase) plan() (*GradPlan, error) {
	return PlanGradient(SyntheticNetwork(c.n, 1), c.T, 1, 0, c.opts())
}

var gradPlanCases = map[string]gradPlanCase{
	// The general engine (convolution reaches).
	"hayami-whole": {6000, 60, 4, "hayami", 8, 0, "", ""},
	// The tiled adjoint (sections): scalar loops (f = 6), vector kernels,
	// cascades.
	"muskingum-auto":       {25000, 120, 6, "muskingum", 16, 0, "", ""},
	"muskingum-whole":      {20000, 240, 6, "muskingum", 16, 240, "", ""},
	"muskingum-ckpt":       {25000, 120, 6, "muskingum", 16, 7, "", ""},
	"nash-tiled":           {20000, 100, 8, "nash_cascade", 16, 0, "", ""},
	"muskingum-tiled":      {60000, 100, 24, "muskingum", 16, 0, "", ""},
	"muskingum-tiled-ckpt": {20000, 200, 12, "muskingum", 16, 5, "", ""},
	// The kernel method: the recursive parameter adjoint, whole and in
	// blocks; the FFT build's adjoint (Hayami, --compat diffroute).
	"kernel-muskingum":      {4000, 2000, 6, "muskingum", 4, 0, Kernel, ""},
	"kernel-muskingum-ckpt": {4000, 2000, 6, "muskingum", 4, 50, Kernel, ""},
	"kernel-muskingum-deep": {12000, 300, 6, "muskingum", 8, 0, Kernel, ""},
	"kernel-hayami":         {4000, 2000, 6, "hayami", 4, 0, Kernel, ""},
	"kernel-hayami-long":    {3000, 300, 8, "hayami", 24, 0, Kernel, ""},
	"kernel-compat":         {4000, 2000, 6, "muskingum", 4, 0, Kernel, CompatDiffRoute},
}

func TestGradPlanHelperProcess(t *testing.T) {
	name := os.Getenv("DIFFROUTE_GRAD_PLAN_CASE")
	if name == "" {
		t.Skip("helper process for TestGradPlanPredictsPeakRSS")
	}
	c := gradPlanCases[name]
	p, err := c.plan()
	if err == nil {
		net := SyntheticNetwork(c.n, 1)
		o := c.opts()
		o.CheckpointSteps = p.CheckpointSteps
		x := SyntheticRunoff(net, 1, c.T, 1)
		loss := func(y, gy *DataTensor) (float64, error) {
			for k, v := range y.Data {
				gy.Data[k] = 2 * v
			}
			return 0, nil
		}
		var rt Router
		if rt, err = NewRouter(context.Background(), net, o); err == nil {
			_, _, _, err = rt.(Differentiable).RouteGrad(context.Background(), x, loss)
		}
	}
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("VMHWM %d\n", vmHWM())
}

// The planner's prediction of a gradient run's peak resident memory is
// within ±25 % of the peak measured in a fresh process, with and without
// checkpoint blocks.
func TestGradPlanPredictsPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs subprocesses of a few hundred MB")
	}
	if vmHWM() < 0 {
		t.Skip("no /proc/self/status")
	}
	names := []string{"muskingum-auto", "muskingum-whole", "muskingum-ckpt", "hayami-whole", "muskingum-tiled", "muskingum-tiled-ckpt", "nash-tiled",
		"kernel-muskingum", "kernel-muskingum-ckpt", "kernel-hayami-long", "kernel-compat"}
	if only := os.Getenv("DIFFROUTE_GRAD_PLAN_ONLY"); only != "" {
		names = strings.Split(only, ",")
	}
	for _, name := range names {
		c := gradPlanCases[name]
		p, err := c.plan()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run", "^TestGradPlanHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "DIFFROUTE_GRAD_PLAN_CASE="+name)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		var peak int64
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "VMHWM "); ok {
				peak, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		ratio := float64(p.Predicted) / float64(peak)
		t.Logf("%s: predicted %s, measured %s (ratio %.2f), checkpoint steps %d", name, fmtBytes(p.Predicted), fmtBytes(peak), ratio, p.CheckpointSteps)
		if ratio < 0.75 || ratio > 1.25 {
			t.Errorf("%s: predicted peak %s, measured %s (ratio %.2f)\n%v", name, fmtBytes(p.Predicted), fmtBytes(peak), ratio, p)
		}
	}
}

// Under a budget the planner keeps the automatic blocks when they fit, and
// otherwise picks the longest checkpoint block whose prediction fits, or
// says that none does.
func TestPlanGradientBudget(t *testing.T) {
	net := SyntheticNetwork(3000, 1)
	params := testParams("muskingum", 3000, 1)
	o := Options{Params: params, SubSteps: 24, MaxDelay: 16}
	auto, err := PlanGradient(net, 400, 1, 0, o)
	if err != nil {
		t.Fatal(err)
	}
	p, err := PlanGradient(net, 400, 1, int64(float64(auto.Predicted)/planHeadroom)+1<<20, o)
	if err != nil || !p.Fits || p.CheckpointSteps != 0 {
		t.Fatalf("a budget the automatic blocks fit: %v %v", p, err)
	}
	// Without the automatic cap (one long block), a budget between the
	// smallest and the whole-series prediction needs checkpoints.
	whole, _ := PlanGradient(net, 400, 1, 0, Options{Params: params, SubSteps: 24, MaxDelay: 16, CheckpointSteps: 400})
	budget := (whole.Predicted + auto.Predicted) / 2
	for ck := 399; ck >= 1; ck-- {
		c, _ := PlanGradient(net, 400, 1, 0, Options{Params: params, SubSteps: 24, MaxDelay: 16, CheckpointSteps: ck})
		if float64(c.Predicted) <= planHeadroom*float64(budget) {
			if c.Blocks < 2 {
				t.Fatalf("block of %d steps: %d blocks", ck, c.Blocks)
			}
			break
		}
	}
	if tiny, _ := PlanGradient(net, 400, 1, 1<<20, o); tiny.Fits || tiny.Note == "" {
		t.Errorf("1 MiB cannot hold the series: %v", tiny)
	}
}

// PlanGradientIn adds what the process holds to the run's own prediction,
// and a budget that the run alone fits but the process does not is
// refused or met with shorter blocks.
func TestPlanGradientInCountsTheProcess(t *testing.T) {
	net := SyntheticNetwork(3000, 1)
	o := Options{Params: testParams("muskingum", 3000, 1), SubSteps: 3, MaxDelay: 16}
	const T = 400
	run, err := PlanGradient(net, T, 1, 0, o)
	if err != nil {
		t.Fatal(err)
	}
	counted := int64(net.Len())*planNetworkPerRch + int64(net.Len())*T*4
	proc := ProcessMemory{Peak: 90 << 20, Resident: 80 << 20, HeapLive: counted + 5<<20, HeapHeld: 60 << 20}
	in, err := PlanGradientIn(net, T, 1, 0, o, proc)
	if err != nil {
		t.Fatal(err)
	}
	heap := run.Predicted - planBaseBytes - counted
	want := max(proc.Peak, proc.Resident-proc.HeapHeld+max(proc.HeapHeld, proc.HeapLive+heap))
	if in.Predicted != want || in.Predicted <= run.Predicted || !strings.Contains(in.String(), "whole process") {
		t.Fatalf("whole process %d, want %d (run alone %d)\n%v", in.Predicted, want, run.Predicted, in)
	}
	// A budget the run alone fits with its automatic blocks.
	budget := int64(float64(run.Predicted)/planHeadroom) + 1<<20
	if p, _ := PlanGradient(net, T, 1, budget, o); !p.Fits || p.CheckpointSteps != 0 {
		t.Fatalf("run alone: %v", p)
	}
	big := proc
	big.Resident += 200 << 20 // libraries outside the heap
	p, err := PlanGradientIn(net, T, 1, budget, o, big)
	if err != nil {
		t.Fatal(err)
	}
	if p.Fits {
		t.Errorf("the process's 200 MiB outside the heap left out: %v", p)
	}
}

// The kernel method's gradient plan: its recursive parameter adjoint takes
// checkpoint blocks when they make a budget fit; the build's adjoints have
// none, and a budget they do not fit is met by staging the kernel gradient
// or refused with a note saying the kernel gradient has no time chunks and
// what the recursive method would need.
func TestPlanKernelGradientBudget(t *testing.T) {
	const n, T = 3000, 400
	net := SyntheticNetwork(n, 1)
	o := Options{Method: Kernel, Params: testParams("muskingum", n, 1), SubSteps: 6, MaxDelay: 4, Workers: 2}
	auto, err := PlanGradient(net, T, 1, 0, o)
	if err != nil {
		t.Fatal(err)
	}
	if auto.Method != Kernel || auto.adjoint != adjointRecursive || !strings.Contains(auto.String(), "kernel-method gradient") || !strings.Contains(auto.Note, "no time chunks") {
		t.Fatalf("plan of the kernel method's gradient:\n%v", auto)
	}
	// The prediction grows with the series, not with the recursive plan's.
	long, _ := PlanGradient(net, 2*T, 1, 0, o)
	if d := long.Predicted - auto.Predicted; d < 5*int64(n)*T*4 {
		t.Errorf("doubling the series adds %s, less than its five float32 tensors", fmtBytes(d))
	}
	if p, _ := PlanGradient(net, T, 1, int64(float64(auto.Predicted)/planHeadroom)+1<<20, o); !p.Fits || p.CheckpointSteps != 0 {
		t.Errorf("a budget the automatic blocks fit:\n%v", p)
	}
	// Blocks that predict less than the automatic ones make a budget
	// between the two fit.
	low := auto.Predicted
	for ck := 1; ck <= T; ck *= 2 {
		oc := o
		oc.CheckpointSteps = ck
		c, _ := PlanGradient(net, T, 1, 0, oc)
		low = min(low, c.Predicted)
	}
	if low < auto.Predicted {
		budget := int64(float64((low+auto.Predicted)/2) / planHeadroom)
		p, _ := PlanGradient(net, T, 1, budget, o)
		if !p.Fits || p.CheckpointSteps == 0 || float64(p.Predicted) > planHeadroom*float64(budget) {
			t.Errorf("budget %s between the blocks' %s and the automatic %s:\n%v", fmtBytes(budget), fmtBytes(low), fmtBytes(auto.Predicted), p)
		}
	}
	// The FFT build's adjoint (Hayami) has no blocks: a budget below its
	// prediction is refused, and the recursive method is offered where it
	// fits (a deep network's kernel, a short series).
	const short = 40
	h := Options{Method: Kernel, IRF: "hayami", Params: testParams("hayami", n, 1), SubSteps: 6, MaxDelay: 24, Workers: 2}
	hp, err := PlanGradient(net, short, 1, 0, h)
	if err != nil || hp.adjoint != adjointFFTBuild {
		t.Fatalf("%v %v", hp, err)
	}
	r := h
	r.Method = Recursive
	rp, _ := PlanGradient(net, short, 1, 0, r)
	tight, _ := PlanGradient(net, short, 1, int64(float64(rp.Predicted)/planHeadroom)+1<<20, h)
	if rp.Predicted >= hp.Predicted*9/10 {
		t.Fatalf("the recursive gradient (%s) should need less than the kernel's (%s)", fmtBytes(rp.Predicted), fmtBytes(hp.Predicted))
	}
	// there the kernel gradient is staged: one cluster's kernel at a time
	if !tight.Fits || !tight.Staged || tight.Method != Kernel || tight.Clusters == nil || tight.Clusters.Len() < 2 || tight.Predicted >= hp.Predicted {
		t.Errorf("a budget the recursive gradient fits, not the FFT build's adjoint whole:\n%v", tight)
	}
	// the whole kernel gradient's refusal offers the recursive method
	whole, _ := PlanGradient(net, short, 1, (rp.Predicted+hp.Predicted)/2, h)
	if whole.Fits && !whole.Staged || !whole.Fits && !strings.Contains(whole.Note, "--method recursive") {
		t.Errorf("between the recursive and the kernel gradient:\n%v", whole)
	}
	if tiny, _ := PlanGradient(net, short, 1, 1<<20, h); tiny.Fits || strings.Contains(tiny.Note, "--method recursive") || !strings.Contains(tiny.Note, "raise the budget") {
		t.Errorf("1 MiB fits neither method:\n%v", tiny)
	}
	// --compat diffroute has no recursive form to offer.
	c := Options{Method: Kernel, Compat: CompatDiffRoute, Params: testParams("muskingum", n, 1), SubSteps: 6, MaxDelay: 24, Workers: 2}
	if cp, _ := PlanGradient(net, short, 1, 1<<20, c); cp.Fits || cp.adjoint != adjointFFTBuild || strings.Contains(cp.Note, "--method recursive") {
		t.Errorf("--compat diffroute under 1 MiB:\n%v", cp)
	}
}

// The resident pages of the kernel counted by the planner equal those of a
// built kernel: the pages of its values holding a non-zero tap.
func TestKernelResidentBytesMatchesBuiltKernel(t *testing.T) {
	for _, c := range []struct{ n, b, taps int }{{500, 16, 4}, {2000, 16, 24}, {700, 64, 8}} {
		net := SyntheticNetwork(c.n, 3)
		o := Options{Method: Kernel, Params: testParams("muskingum", c.n, 1), SubSteps: 2, MaxDelay: c.taps, BlockSize: c.b}
		kr, err := NewKernelRouter(context.Background(), net, o)
		if err != nil {
			t.Fatal(err)
		}
		vals := kr.BlockSparse().Vals
		const per = 4096 / 4
		pages := int64(0)
		for lo := 0; lo < len(vals); lo += per {
			for _, v := range vals[lo:min(lo+per, len(vals))] {
				if v != 0 {
					pages++
					break
				}
			}
		}
		if got := kernelResidentBytes(net, c.b, c.taps); got != pages*4096 {
			t.Errorf("%+v: planner counts %d pages, the kernel has %d with taps (of %d)", c, got/4096, pages, (len(vals)+per-1)/per)
		}
	}
}

// Under a budget that no checkpoint block fits, PlanGradient plans the
// gradient staged; the plan's clusters give the plain gradient.
func TestPlanGradientStages(t *testing.T) {
	const n, T = 3000, 120
	net := SyntheticNetwork(n, 3)
	o := Options{IRF: "nash_gamma", Params: Constant(n, map[string]float64{"tau": 1.5, "n": 3}), MaxDelay: 8}
	auto, err := PlanGradient(net, T, 1, 0, o)
	if err != nil || auto.Staged {
		t.Fatalf("no budget: %v %v", auto, err)
	}
	var p *GradPlan
	for b := auto.Predicted; b > 0; b = b * 9 / 10 {
		if p, err = PlanGradient(net, T, 1, b, o); err != nil {
			t.Fatal(err)
		}
		if p.Staged || !p.Fits {
			break
		}
	}
	if !p.Staged || !p.Fits || p.Clusters == nil || p.Clusters.Len() < 2 || float64(p.Predicted) > planHeadroom*float64(p.Budget) {
		t.Fatalf("no staged plan between the unstaged one and nothing: %v", p)
	}
	t.Logf("%v", p)
	ctx := context.Background()
	x := SyntheticRunoff(net, 1, T, 5)
	loss := func(y, gy *DataTensor) (float64, error) {
		s := 0.0
		for k, v := range y.Data {
			s += float64(v) * float64(v) * float64(k%7)
			gy.Data[k] = 2 * v * float32(k%7)
		}
		return s, nil
	}
	o.Method = Recursive
	rr, err := NewRecursiveRouter(ctx, net, o)
	if err != nil {
		t.Fatal(err)
	}
	_, _, gp, err := rr.RouteGrad(ctx, x, loss)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := NewStagedRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	_, _, gs, err := sr.RouteGrad(ctx, x, p.Clusters, loss)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range gp.Params {
		peak, worst := 1e-300, 0.0
		for i, v := range want {
			peak = max(peak, math.Abs(v))
			worst = max(worst, math.Abs(gs.Params[name][i]-v))
		}
		if worst/peak > 1e-6 {
			t.Errorf("dL/d%s: staged differs by %.2g of its peak", name, worst/peak)
		}
	}
}
