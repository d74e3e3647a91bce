package viz_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/progress"
	"github.com/diffroute-go/route/viz"
)

// Outside a notebook Display prints plain text; in GoNB the same call shows
// an HTML summary and a chart of the network.
func ExampleDisplay() {
	net, err := diffroute.NewNetwork([]int64{10, 20, 30}, []int64{30, 30, 0})
	if err != nil {
		panic(err)
	}
	viz.Display(net)
	// Output:
	// Network
	//   reaches                    3
	//   outlets                    1
	//   headwater reaches          2
	//   largest basin              3 reaches
	//   max depth                  2
	//   mean depth                 1.7
	//   closure pairs              5
	//   kernel per tap (float32)   20 B
}

func ExampleDisplay_tensor() {
	q := diffroute.NewDataTensor(1, []int64{10, 20}, 3)
	q.Units, q.Times = "m3/s", []string{"2024-01-01", "2024-01-02", "2024-01-03"}
	q.Set(0, 1, 2, 4.5)
	viz.Display(q)
	// Output:
	// DataTensor (batch=1, spatial=2, time=3) m3/s, 2024-01-01 .. 2024-01-03
	//   reach id 2024-01-01 2024-01-02 2024-01-03
	//         10          0          0          0
	//         20          0          0        4.5
}

func ExampleHydrograph() {
	q := diffroute.NewDataTensor(1, []int64{10, 20, 30}, 48)
	q.Units = "m3/s"
	for t := 0; t < 48; t++ {
		q.Times = append(q.Times, time.Date(2024, 1, 1, 3*t, 0, 0, 0, time.UTC).Format(time.RFC3339))
	}
	c := viz.Hydrograph(q, viz.Reaches(30, 10), viz.Title("Outlet and a headwater"))
	fmt.Println(c.Err())
	fmt.Println(c)
	// Output:
	// <nil>
	// Hydrograph: 2 reaches [30 10], 2024-01-01T00:00:00Z .. 2024-01-06T21:00:00Z, m3/s
}

func ExamplePage() {
	dir, _ := os.MkdirTemp("", "viz")
	defer os.RemoveAll(dir)
	kernel := viz.IRF(time.Hour, []viz.Series{{Name: "linear storage", Values: []float64{0.5, 0.25, 0.125, 0.0625}}})
	plan := viz.MemoryPlan([]viz.MemoryStrategy{
		{Name: "unstaged", Parts: []viz.MemoryPart{{Name: "kernel", Bytes: 3 << 30}}},
		{Name: "staged", Chosen: true, Parts: []viz.MemoryPart{{Name: "kernel", Bytes: 300 << 20}}},
	}, 1<<30)
	err := viz.NewPage("Routing report", kernel, plan).WriteFile(filepath.Join(dir, "report.html"))
	fmt.Println(err, kernel, plan)
	// Output:
	// <nil> IRF: 1 kernels, up to 4 taps of 1h0m0s MemoryPlan: 2 strategies, budget 1.0 GiB
}

func ExampleNewProgress() {
	p := viz.NewProgress(true) // quiet: shows nothing
	p.Start("routing clusters", 3)
	for i := int64(1); i <= 3; i++ {
		p.Update(i)
	}
	p.Done(nil)
	fmt.Println(p == progress.Quiet)
	// Output: true
}
