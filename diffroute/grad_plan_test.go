package diffroute

import (
	"context"
	"fmt"
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
}

func (c gradPlanCase) opts() Options {
	return Options{IRF: c.irf, Params: testParams(c.irf, c.n, 1), SubSteps: c.f, MaxDelay: c.maxDelay, Workers: 2, CheckpointSteps: c.ckpt}
}

func (c gradPlanCase) plan() (*GradPlan, error) {
	return PlanGradient(SyntheticNetwork(c.n, 1), c.T, 1, 0, c.opts())
}

var gradPlanCases = map[string]gradPlanCase{
	// The general engine (convolution reaches).
	"hayami-whole": {6000, 60, 4, "hayami", 8, 0},
	// The tiled adjoint (sections): scalar loops (f = 6), vector kernels,
	// cascades.
	"muskingum-auto":       {25000, 120, 6, "muskingum", 16, 0},
	"muskingum-whole":      {20000, 240, 6, "muskingum", 16, 240},
	"muskingum-ckpt":       {25000, 120, 6, "muskingum", 16, 7},
	"nash-tiled":           {20000, 100, 8, "nash_cascade", 16, 0},
	"muskingum-tiled":      {60000, 100, 24, "muskingum", 16, 0},
	"muskingum-tiled-ckpt": {20000, 200, 12, "muskingum", 16, 5},
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
		var rr *RecursiveRouter
		if rr, err = NewRecursiveRouter(context.Background(), net, o); err == nil {
			_, _, _, err = rr.RouteGrad(context.Background(), x, func(y, gy *DataTensor) (float64, error) {
				for k, v := range y.Data {
					gy.Data[k] = 2 * v
				}
				return 0, nil
			})
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
	for _, name := range []string{"muskingum-auto", "muskingum-whole", "muskingum-ckpt", "hayami-whole", "muskingum-tiled", "muskingum-tiled-ckpt", "nash-tiled"} {
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
