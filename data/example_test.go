package data_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

func ExampleReadRAPID() {
	r, err := data.ReadRAPID("../testdata/rapid_xx9")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Network)
	p, _ := r.Muskingum(3 * time.Hour)
	i, _ := r.Network.Index(17880258)
	fmt.Printf("reach 17880258: k = %.0f s = %.4f steps, x = %.1f\n", r.K[i], p["k"][i], p["x"][i])
	// Output:
	// Network: 9 reaches, 1 outlets, max depth 4, 25 closure pairs
	// reach 17880258: k = 943 s = 0.0874 steps, x = 0.3
}

func ExampleReadRunoffNC() {
	x, err := data.ReadRunoffNC("../testdata/rapid_xx9/m3_riv_bas_erai_t511_3hr_20030121to20030122.nc", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(x.Units, x.Step, x.Times[0])
	data.VolumeToRate(x, x.Step) // m3 per step -> m3/s
	fmt.Printf("%s %.3g\n", x.Units, x.At(0, 5, 5))
	// Output:
	// m3 3h0m0s 2003-01-21T00:00:00Z
	// m3 s-1 0.0563
}

func ExampleReadCSVTable() {
	in := "time,10,20\n2000-01-01,1.5,2\n2000-01-02,3,NaN\n"
	x, err := data.ReadCSVTable(strings.NewReader(in), "inline.csv")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(x.IDs, x.Times, x.Step, x.Series(0, 1))
	_, err = data.ReadCSVTable(strings.NewReader("time,10\n0,abc\n"), "bad.csv")
	fmt.Println(err)
	// Output:
	// [10 20] [2000-01-01 2000-01-02] 24h0m0s [2 NaN]
	// bad.csv:2:2: reach 10: "abc" is not a number
}

func ExampleWriteQoutNC() {
	dir, _ := os.MkdirTemp("", "qout")
	defer os.RemoveAll(dir)
	q := diffroute.NewDataTensor(1, []int64{7, 3}, 2)
	copy(q.Data, []float32{1, 2, 3, 4})
	q.Times = []string{"2020-05-01T00:00:00Z", "2020-05-02T00:00:00Z"}
	path := filepath.Join(dir, "Qout.nc")
	if err := data.WriteQoutNC(path, q, nil); err != nil {
		fmt.Println(err)
		return
	}
	back, _ := data.ReadRunoffNC(path, nil)
	fmt.Println(back.IDs, back.Units, back.Step, back.Series(0, 1))
	// Output:
	// [7 3] m3 s-1 24h0m0s [3 4]
}

func ExampleOpenPixelRunoff() {
	dir, _ := os.MkdirTemp("", "pixels")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "runoff.feather")
	table := &data.PixelTable{
		Times:  []string{"2001-01-01", "2001-01-02", "2001-01-03"},
		Labels: []string{"101", "102", "205"},
		Data:   []float32{1, 2, 3, 10, 20, 30, 100, 200, 300},
	}
	if err := data.WritePixelRunoff(path, table, &data.FeatherOptions{BatchRows: 2}); err != nil {
		fmt.Println(err)
		return
	}
	p, err := data.OpenPixelRunoff(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	cols, _ := p.ReadColumnsRange([]string{"205", "101"}, 1, 3, nil) // only these two columns
	fmt.Println(p.Labels(), p.Times()[0], p.Step(), cols)
	// Output:
	// [101 102 205] 2001-01-01T00:00:00Z 24h0m0s [200 300 2 3]
}
