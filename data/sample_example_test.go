package data_test

import (
	"context"
	"fmt"
	"os"

	"github.com/diffroute-go/route/data"
)

func ExampleGenerateVPUSample() {
	root, _ := os.MkdirTemp("", "vpu")
	defer os.RemoveAll(root)

	// A small VPU-like data set in download.SingleVPU's layout; leave the
	// sizes out for one as large as VPU 305.
	v, err := data.GenerateVPUSample(root, data.SampleOptions{Reaches: 200, Pixels: 30, Days: 365, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	rapid, err := data.ReadRAPID(v.ConfigDir)
	if err != nil {
		fmt.Println(err)
		return
	}
	in, src, err := data.OpenInterpolator(v.Runoff, v.InterpWeight, nil) // m² × m/day → m³/s
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	runoff, err := in.Interpolate(context.Background(), rapid.Network.IDs(), 0, in.Len())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rapid.Network.Len(), "reaches,", len(src.Labels()), "pixels")
	fmt.Println(runoff)
	// Output:
	// 200 reaches, 30 pixels
	// DataTensor(batch=1, spatial=200, time=365) m3/s [1940-01-01T00:00:00Z .. 1940-12-30T00:00:00Z] step 24h0m0s
}
