package gpu

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// Cases shared by the emulated staged tests and the device tests (tag cuda).

// stagedCase is a network cut into many clusters with many transfers.
func stagedCase(t *testing.T, n int, seed uint64, f, taps, T, B int) (*diffroute.Network, diffroute.Options, *diffroute.DataTensor, *diffroute.Clusters) {
	t.Helper()
	net := diffroute.SyntheticNetwork(n, seed)
	rng := gputest.NewRand(seed)
	o := diffroute.Options{Params: gputest.RandomParams(rng, "muskingum", net.Len()), SubSteps: f, MaxDelay: taps, Method: diffroute.Kernel}
	cl, err := diffroute.Schedule(net, 1200, 150)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Len() < 8 || len(cl.Transfers) < 15 {
		t.Fatalf("too few clusters or transfers: %v", cl)
	}
	return net, o, diffroute.SyntheticRunoff(net, B, T, seed+1), cl
}

func stagedRoute(t *testing.T, o diffroute.Options, x *diffroute.DataTensor, cl *diffroute.Clusters, chunk int, keep bool, f diffroute.ClusterRouterFactory) *diffroute.DataTensor {
	t.Helper()
	sr, err := diffroute.NewStagedRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	sr.TimeChunk, sr.KeepKernels, sr.ClusterRouter = chunk, keep, f
	y, err := sr.Route(context.Background(), x, cl)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// hayamiStagedCase is stagedCase with fast Hayami waves (celerity ×10: about
// 0.05 step per reach), so that paths across the whole network fit in
// MaxDelay and the plain recursive run is a fair reference.
func hayamiStagedCase(t *testing.T) (*diffroute.Network, diffroute.Options, *diffroute.DataTensor, *diffroute.Clusters) {
	t.Helper()
	net, o, x, cl := stagedCase(t, 2500, 37, 3, 24, 40, 1)
	o.IRF, o.Params = "hayami", gputest.RandomParams(gputest.NewRand(37), "hayami", net.Len())
	for i := range o.Params["c"] {
		o.Params["c"][i] *= 10
	}
	return net, o, x, cl
}

// plainRecursive routes x through the whole network with the recursive
// method: exact, where a plain kernel would truncate paths longer than
// MaxDelay (which staging avoids).
func plainRecursive(t *testing.T, net *diffroute.Network, o diffroute.Options, x *diffroute.DataTensor) *diffroute.DataTensor {
	t.Helper()
	o.Method = diffroute.Recursive
	r, err := diffroute.NewRouter(context.Background(), net, o)
	if err != nil {
		t.Fatal(err)
	}
	y, err := r.Route(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// stagedBuilt is a staged run in time chunks of 15 steps, keeping kernels,
// with a kernel builder and a cluster router (nil: the CPU's).
func stagedBuilt(t *testing.T, o diffroute.Options, x *diffroute.DataTensor, cl *diffroute.Clusters,
	build func(context.Context, *diffroute.Network, diffroute.Options) (*diffroute.KernelRouter, error), f diffroute.ClusterRouterFactory) *diffroute.DataTensor {
	t.Helper()
	sr, err := diffroute.NewStagedRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	sr.TimeChunk, sr.KeepKernels, sr.KernelBuilder, sr.ClusterRouter = 15, true, build, f
	y, err := sr.Route(context.Background(), x, cl)
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// pixelCase makes a pixel source and weights for net: every river uses 1–4
// of npix pixels with areas of 1e4–1e7 m², one pixel is missing a value
// that no river uses.
func pixelCase(net *diffroute.Network, npix, T int, seed uint64) (*diffroute.Weights, *diffroute.MemPixelSource, error) {
	rng := rand.New(rand.NewPCG(seed, 5))
	labels := make([]string, npix)
	for j := range labels {
		labels[j] = strconv.Itoa(1000 + 7*j)
	}
	times := make([]string, T)
	for t := range times {
		times[t] = fmt.Sprintf("day %d", t)
	}
	data := make([]float32, npix*T)
	for j := 0; j < npix; j++ {
		for t := 0; t < T; t++ {
			data[j*T+t] = float32(0.002 * (1 + math.Sin(float64(t)/5+float64(j))) * rng.Float64())
		}
	}
	w := &diffroute.Weights{}
	for _, id := range net.IDs() {
		for range 1 + rng.IntN(4) {
			w.RiverID = append(w.RiverID, id)
			w.Pixel = append(w.Pixel, labels[rng.IntN(npix-1)])
			w.Area = append(w.Area, math.Pow(10, 4+3*rng.Float64()))
		}
	}
	data[(npix-1)*T+3] = float32(math.NaN()) // the last pixel is never used
	src, err := diffroute.NewMemPixelSource(labels, times, 0, data)
	return w, src, err
}

// stagedRouteSources is stagedRoute with a factory whose routers see a
// runoff tensor zeroed except for what the CPU transfer sources need: it
// proves the device does not read the host runoff.
func stagedRouteSources(t *testing.T, o diffroute.Options, x *diffroute.DataTensor, cl *diffroute.Clusters, chunk int, keep bool, f diffroute.ClusterRouterFactory) *diffroute.DataTensor {
	t.Helper()
	zeroing := func(ctx context.Context, k int, kr *diffroute.KernelRouter) (diffroute.ClusterKernelRouter, error) {
		r, err := f(ctx, k, kr)
		if err != nil {
			return nil, err
		}
		return zeroRunoff{r}, nil
	}
	return stagedRoute(t, o, x, cl, chunk, keep, zeroing)
}

type zeroRunoff struct{ diffroute.ClusterKernelRouter }

func (z zeroRunoff) RouteCluster(ctx context.Context, job diffroute.ClusterJob) (*diffroute.DataTensor, error) {
	x := *job.Runoff
	x.Data = make([]float32, len(job.Runoff.Data))
	job.Runoff = &x
	return z.ClusterKernelRouter.RouteCluster(ctx, job)
}

func (z zeroRunoff) Close() error {
	if c, ok := z.ClusterKernelRouter.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// pixelStagedCase is a staged case whose runoff comes from pixels: the
// options and clusters of a 2,000-reach network, the weights and pixel
// source, and the runoff the CPU interpolator makes of them (60 steps).
func pixelStagedCase(t *testing.T) (diffroute.Options, *diffroute.Clusters, *diffroute.Weights, *diffroute.MemPixelSource, *diffroute.DataTensor) {
	t.Helper()
	net, o, _, cl := stagedCase(t, 2000, 41, 2, 20, 10, 1)
	const T = 60
	w, src, err := pixelCase(net, 300, T, 41)
	if err != nil {
		t.Fatal(err)
	}
	in, err := diffroute.NewInterpolator(w, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	x, err := in.Interpolate(context.Background(), net.IDs(), 0, T)
	if err != nil {
		t.Fatal(err)
	}
	return o, cl, w, src, x
}
