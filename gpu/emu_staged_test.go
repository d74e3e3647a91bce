//go:build !cuda

package gpu

import (
	"context"
	"math"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
	"github.com/diffroute-go/route/gpu/kernels"
)

// emuStaged is the staged run's device with the kernel emulator in place of
// CUDA: the host code (transfer and interpolation tables, chunks, pipeline)
// is the CUDA backend's; "device memory" is Go slices that the loads and
// runs copy into, and slot buffers are kept and grown across jobs as the
// CUDA backend keeps its pinned and device buffers.
type emuStaged struct {
	hin, hout, din, dout [2][]float32
	job                  *clusterJob
	tr                   *transferTables // device copy of the job's tables
	runs, loads, grows   int
	kernels              int   // kernels resident
	kernelBytes, peak    int64 // "device memory" of the resident kernels; peak of everything
	pixBytes             int64 // resident pixels, counted in peak
	dropInflow           int   // test of the test: zero this inflow of the next job with any (−1: none)
}

func newEmuStaged() *emuStaged { return &emuStaged{dropInflow: -1} }

func (e *emuStaged) hostIn(s int) []float32  { return e.hin[s] }
func (e *emuStaged) hostOut(s int) []float32 { return e.hout[s] }
func (e *emuStaged) wait(s int) error        { return nil }

func kernelBytes(bs *diffroute.BlockSparseKernel) int64 {
	return int64(len(bs.Vals)+len(bs.TileCol)+len(bs.Size))*4 + int64(len(bs.RowTiles))*8
}

func (e *emuStaged) uploadKernel(bs *diffroute.BlockSparseKernel) (any, error) {
	e.kernels++
	e.kernelBytes += kernelBytes(bs)
	c := *bs
	c.Vals = append([]float32(nil), bs.Vals...)
	return &c, nil
}

func (e *emuStaged) freeKernel(dk any) {
	e.kernels--
	e.kernelBytes -= kernelBytes(dk.(*diffroute.BlockSparseKernel))
}

func (e *emuStaged) load(j *clusterJob, tc int) error {
	e.loads++
	nin, nout := j.B*j.bs.N*(j.hist+tc), j.B*j.bs.N*tc
	for s := range 2 {
		if len(e.din[s]) < nin || len(e.dout[s]) < nout {
			e.grows++
			e.hin[s], e.din[s] = make([]float32, nin), make([]float32, nin)
			e.hout[s], e.dout[s] = make([]float32, nout), make([]float32, nout)
		}
	}
	e.job = j
	if j.tr != nil {
		t := *j.tr
		t.z = append([]float32(nil), j.tr.z...)
		t.kf = append([]float32(nil), j.tr.kf...)
		if e.dropInflow >= 0 && e.dropInflow < t.nin {
			// Zero one inflow's series, once: the transfer is lost on
			// the device.
			clear(t.z[e.dropInflow*j.B*t.tz : (e.dropInflow+1)*j.B*t.tz])
			e.dropInflow = -1
		}
		e.tr = &t
	}
	slots := int64(len(e.din[0])+len(e.din[1])+len(e.dout[0])+len(e.dout[1])) * 4
	e.peak = max(e.peak, e.kernelBytes+slots+j.tr.bytes()+j.itab.bytes()+e.pixBytes)
	return nil
}

func (e *emuStaged) unload() { e.job, e.tr = nil, nil }

func (e *emuStaged) run(s int, c chunk) error {
	e.runs++
	j := e.job
	bs := j.dk.(*diffroute.BlockSparseKernel)
	n := bs.N
	nin, nout := j.B*n*c.TX(), j.B*n*c.Len
	if j.pix == nil {
		copy(e.din[s][:nin], e.hin[s][:nin])
	} else {
		kernels.InterpWindow(kernels.DefaultGrid, &kernels.InterpWindowArgs{
			X: e.din[s][:nin], Pix: j.pix.data, WStart: j.itab.wStart, Pixel: j.itab.pixel, Weight: j.itab.weight,
			N: n, NPix: j.pix.npix, NB: 1, TX: c.TX(), PNT: j.pix.nt, PS: j.psFor(c)})
	}
	kernels.BSConv(kernels.DefaultGrid, false, &kernels.BSConvArgs{
		Y: e.dout[s][:nout], X: e.din[s][:nin], Vals: bs.Vals, RowTiles: bs.RowTiles, TileCol: bs.TileCol, Size: bs.Size,
		N: n, B: bs.B, Taps: bs.Taps, NB: j.B, TX: c.TX(), T0: c.Hist})
	if t := e.tr; t != nil {
		kernels.TransferAdd(kernels.DefaultGrid, &kernels.TransferArgs{
			Y: e.dout[s][:nout], Z: t.z, Kf: t.kf, GroupStart: t.groupStart, GroupRow: t.groupRow, TaskIn: t.taskIn, TaskOff: t.taskOff,
			NY: n, NB: j.B, TY: c.Len, Q0: c.T0, F: j.kr.Options().SubSteps, WF: t.wf, NIn: t.nin, TZ: t.tz})
	}
	copy(e.hout[s][:nout], e.dout[s][:nout])
	return nil
}

// emuCore is a staged backend on the emulator with chunks of tc steps.
func emuCore(dev *emuStaged, pix *pixelMatrix, tc int) *stagedCore {
	return &stagedCore{dev: dev, pix: pix, chunk: func(*clusterJob) (int, error) { return tc, nil }}
}

// TestEmulatedStagedMatchesCPU plugs the emulated device into StagedRouter
// (ClusterRouter) and compares with the CPU staged kernel method: fine
// transfers go through the polyphase transfer kernels on the "device".
func TestEmulatedStagedMatchesCPU(t *testing.T) {
	net, o, x, cl := stagedCase(t, 2500, 31, 3, 24, 70, 2)
	t.Logf("%d reaches, %d clusters, %d transfers", net.Len(), cl.Len(), len(cl.Transfers))
	plain := plainRecursive(t, net, o, x)
	for _, tc := range []struct {
		time, dev int
		keep      bool
	}{{0, 1000, false}, {0, 9, true}, {17, 5, false}, {30, 64, true}} {
		want := stagedRoute(t, o, x, cl, tc.time, tc.keep, nil)
		dev := newEmuStaged()
		got := stagedRoute(t, o, x, cl, tc.time, tc.keep, emuCore(dev, nil, tc.dev).factory())
		pr, er, err := gputest.RelErr(got, want)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("time chunks %d, device chunks %d, keep kernels %v: %d cluster loads, %d launches, slot buffers grown %d times; emulated vs CPU staged %.2g of peak, %.2g elementwise",
			tc.time, tc.dev, tc.keep, dev.loads, dev.runs, dev.grows, pr, er)
		if pr > 1e-5 {
			t.Errorf("time chunks %d, device chunks %d: emulated staged GPU run differs from the CPU staged kernel method by %.3g of peak", tc.time, tc.dev, pr)
		}
		pp, _, err := gputest.RelErr(got, plain)
		if err != nil || pp > 1e-4 {
			t.Errorf("time chunks %d, device chunks %d: emulated staged GPU run differs from the plain run by %.3g of peak (%v)", tc.time, tc.dev, pp, err)
		}
		if dev.kernels != 0 {
			t.Errorf("%d cluster kernels left on the device after the run", dev.kernels)
		}
		if dev.grows > 2 {
			t.Errorf("slot buffers reallocated %d times in %d loads: not kept", dev.grows, dev.loads)
		}
	}
}

// TestEmulatedStagedDroppedTransfer loses one transfer's inflow on the
// device: the comparison with the CPU must notice.
func TestEmulatedStagedDroppedTransfer(t *testing.T) {
	_, o, x, cl := stagedCase(t, 2500, 31, 3, 24, 70, 2)
	want := stagedRoute(t, o, x, cl, 0, false, nil)
	dev := newEmuStaged()
	dev.dropInflow = 0
	got := stagedRoute(t, o, x, cl, 0, false, emuCore(dev, nil, 16).factory())
	pr, _, err := gputest.RelErr(got, want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one transfer (the first inflow of the first cluster with any) dropped on the device: %.3g of peak", pr)
	if pr < 1e-2 {
		t.Errorf("a dropped transfer went unnoticed (%.3g)", pr)
	}
}

// TestEmulatedInterpolationMatchesCPU interpolates on the "device" from the
// resident pixel matrix, windows with zero history included, and compares
// with diffroute.Interpolator.
func TestEmulatedInterpolationMatchesCPU(t *testing.T) {
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(400, 3)
	w, src, err := pixelCase(net, 60, 50, 3)
	if err != nil {
		t.Fatal(err)
	}
	in, err := diffroute.NewInterpolator(w, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	const first = 4
	pm, err := newPixelMatrix(w, src, PixelOptions{First: first})
	if err != nil {
		t.Fatal(err)
	}
	kr, err := diffroute.NewKernelRouter(ctx, net, diffroute.Options{Params: gputest.RandomParams(gputest.NewRand(3), "muskingum", net.Len()), MaxDelay: 6})
	if err != nil {
		t.Fatal(err)
	}
	bs := kr.BlockSparse()
	tab, err := pm.tables(net, bs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := in.Interpolate(ctx, net.IDs(), first, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, win := range [][2]int{{0, 46}, {-5, 12}, {30, 46}, {40, 50}} {
		ps, tx := win[0], win[1]-win[0]
		x := make([]float32, bs.N*tx)
		kernels.InterpWindow(kernels.DefaultGrid, &kernels.InterpWindowArgs{X: x, Pix: pm.data, WStart: tab.wStart, Pixel: tab.pixel, Weight: tab.weight,
			N: bs.N, NPix: pm.npix, NB: 1, TX: tx, PNT: pm.nt, PS: ps})
		worst := 0.0
		for p, v := range bs.Order {
			ws := want.Series(0, int(v))
			peak := 1e-30
			for _, q := range ws {
				peak = max(peak, math.Abs(float64(q)))
			}
			for t := 0; t < tx; t++ {
				ref := float32(0)
				if c := ps + t; c >= 0 && c < pm.nt {
					ref = ws[c]
				}
				worst = max(worst, math.Abs(float64(x[p*tx+t])-float64(ref))/peak)
			}
		}
		t.Logf("window [%d, %d) of the resident steps: device interpolation vs diffroute.Interpolator %.2g of peak", win[0], win[1], worst)
		if worst > 1e-6 {
			t.Errorf("window %v: interpolation differs by %.3g of peak", win, worst)
		}
	}
	// Errors as on the CPU: a river without weights, a missing used value.
	w2 := &diffroute.Weights{RiverID: w.RiverID[1:], Pixel: w.Pixel[1:], Area: w.Area[1:]}
	for w2.RiverID[0] == w.RiverID[0] {
		w2 = &diffroute.Weights{RiverID: w2.RiverID[1:], Pixel: w2.Pixel[1:], Area: w2.Area[1:]}
	}
	pm2, err := newPixelMatrix(w2, src, PixelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pm2.tables(net, bs); err == nil {
		t.Error("a river without weights was not reported")
	}
	w3 := &diffroute.Weights{RiverID: []int64{net.ID(0)}, Pixel: []string{src.Labels()[59]}, Area: []float64{1}}
	if _, err := newPixelMatrix(w3, src, PixelOptions{}); err == nil {
		t.Error("a missing value in a used pixel was not reported")
	}
}

// TestEmulatedStagedFromResidentPixels routes a staged run whose cluster
// runoff the "device" interpolates itself from resident pixels, in time
// chunks, and compares with the CPU staged kernel method fed by the CPU
// interpolator.
func TestEmulatedStagedFromResidentPixels(t *testing.T) {
	o, cl, w, src, x := pixelStagedCase(t)
	pm, err := newPixelMatrix(w, src, PixelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		time, dev int
		keep      bool
	}{{0, 100, false}, {13, 6, true}, {25, 25, false}} {
		want := stagedRoute(t, o, x, cl, tc.time, tc.keep, nil)
		dev := newEmuStaged()
		// The host runoff handed to the staged router is zero: what the
		// device routes can only come from the resident pixels (the CPU
		// transfer sources still read it, so they get the real one).
		got := stagedRouteSources(t, o, x, cl, tc.time, tc.keep, emuCore(dev, pm, tc.dev).factory())
		pr, er, err := gputest.RelErr(got, want)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("time chunks %d, device chunks %d: staged from resident pixels vs CPU interpolation + CPU staged %.2g of peak, %.2g elementwise", tc.time, tc.dev, pr, er)
		if pr > 1e-5 {
			t.Errorf("time chunks %d: differs by %.3g of peak", tc.time, pr)
		}
	}
}
