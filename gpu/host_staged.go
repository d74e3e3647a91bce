package gpu

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/diffroute-go/route/diffroute"
)

// This file holds the host side of staged routing on a device, shared by the
// CUDA backend (cuda_conv.go) and the emulator tests: the tables of the
// transfer-add kernel (fine inflow through the polyphase transfer kernels,
// built on the CPU), the interpolation tables of resident pixels, and the
// time-chunked run of one cluster over an abstract device.

// transferTables are the arguments of dr_transfer_add for one cluster chunk:
// tasks (output position, inflow, kernel row) grouped by output position, the
// concatenated polyphase rows and the stacked fine inflow.
type transferTables struct {
	groupStart []int64
	groupRow   []int32 // kernel positions
	taskIn     []int32
	taskOff    []int64
	kf         []float32
	z          []float32 // [nin][B][tz]
	nin, wf    int
	tz         int // fine values per inflow and batch member: T·f
}

// bytes is the device memory the tables take.
func (t *transferTables) bytes() int64 {
	if t == nil {
		return 0
	}
	return int64(len(t.groupStart)+len(t.taskOff))*8 + int64(len(t.groupRow)+len(t.taskIn))*4 + int64(len(t.kf)+len(t.z))*4
}

// buildTransfers lays out the fine inflow of a cluster chunk (B batch
// members, T runoff steps) for dr_transfer_add: one task per inflow and reach
// on its path to the outlet, grouped by the reach's kernel position so that
// one thread owns each output value. Inflows into the same reach share their
// kernel rows. nil when there is no inflow.
func buildTransfers(kr *diffroute.KernelRouter, inflow []diffroute.FineInflow, B, T int) (*transferTables, error) {
	if len(inflow) == 0 {
		return nil, nil
	}
	net := kr.Network()
	o := kr.Options()
	f, wf := o.SubSteps, o.MaxDelay*o.SubSteps
	tt := &transferTables{nin: len(inflow), wf: wf, tz: T * f, z: make([]float32, 0, len(inflow)*B*T*f)}
	type task struct {
		pos, in int32
		off     int64
	}
	var tasks []task
	base := map[int]int64{} // reach → offset of its rows in kf
	for j, in := range inflow {
		if len(in.Q) != B*T*f {
			return nil, fmt.Errorf("gpu: inflow %d into reach position %d has %d values, want batch %d × %d steps × %d sub-steps", j, in.Reach, len(in.Q), B, T, f)
		}
		rows, vals, err := kr.TransferKernel(in.Reach)
		if err != nil {
			return nil, err
		}
		off, ok := base[in.Reach]
		if !ok {
			off = int64(len(tt.kf))
			base[in.Reach] = off
			tt.kf = append(tt.kf, vals...)
		}
		for r, d := range rows {
			tasks = append(tasks, task{pos: int32(net.Pre(int(d))), in: int32(j), off: off + int64(r*wf)})
		}
		tt.z = append(tt.z, in.Q...)
	}
	slices.SortStableFunc(tasks, func(a, b task) int { return int(a.pos) - int(b.pos) })
	for i, tk := range tasks {
		if i == 0 || tk.pos != tasks[i-1].pos {
			tt.groupStart = append(tt.groupStart, int64(i))
			tt.groupRow = append(tt.groupRow, tk.pos)
		}
		tt.taskIn = append(tt.taskIn, tk.in)
		tt.taskOff = append(tt.taskOff, tk.off)
	}
	tt.groupStart = append(tt.groupStart, int64(len(tasks)))
	return tt, nil
}

// pixelMatrix is the host side of resident pixels: the pixels the weights
// use, for source steps [First, First+NT), screened for missing values, as
// one [NPix][NT] float32 matrix, and the weights by river.
type pixelMatrix struct {
	first, nt int
	labels    []string
	data      []float32 // the CUDA backend drops it once uploaded
	npix      int
	scale     float64
	// Weight rows of each river, in weight-table order (the CPU
	// Interpolator's order): pixel column (−1: not in the source) and area.
	rivers map[int64][]pixWeight
}

type pixWeight struct {
	col  int32
	area float64
	row  int32 // weight-table row, for messages
	lab  string
}

// PixelOptions choose what NewDevicePixels keeps on the device.
type PixelOptions struct {
	// Interp gives the scale and the fill policy, as for
	// diffroute.NewInterpolator (nil: its defaults).
	Interp *diffroute.InterpOptions
	// First and End bound the source steps kept resident, [First, End); End
	// 0 means the end of the source. Step t of a routing run reads source
	// step First + t; steps before First read as zero runoff, as they do
	// when a CPU run starts there.
	First, End int
}

// newPixelMatrix reads and screens every pixel the weights name that the
// source has, for the window of po.
func newPixelMatrix(w *diffroute.Weights, src diffroute.PixelSource, po PixelOptions) (*pixelMatrix, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, fmt.Errorf("gpu: no pixel source")
	}
	iopt := diffroute.InterpOptions{}
	if po.Interp != nil {
		iopt = *po.Interp
	}
	if iopt.Scale == 0 {
		iopt.Scale = diffroute.DefaultInterpScale
	}
	if math.IsNaN(iopt.Scale) || math.IsInf(iopt.Scale, 0) {
		return nil, fmt.Errorf("gpu: interpolation scale %v is not finite", iopt.Scale)
	}
	times := src.Times()
	end := po.End
	if end == 0 {
		end = len(times)
	}
	if po.First < 0 || end > len(times) || po.First > end {
		return nil, fmt.Errorf("gpu: pixel steps [%d, %d) outside the source's [0, %d)", po.First, end, len(times))
	}
	index := map[string]int32{}
	for j, l := range src.Labels() {
		if _, dup := index[l]; dup {
			return nil, fmt.Errorf("gpu: pixel source has label %q twice", l)
		}
		index[l] = int32(j)
	}
	m := &pixelMatrix{first: po.First, nt: end - po.First, scale: iopt.Scale, rivers: map[int64][]pixWeight{}}
	colOf := map[string]int32{}
	users := map[int32]int64{}
	for r, id := range w.RiverID {
		lab := w.Pixel[r]
		c := int32(-1)
		if _, ok := index[lab]; ok {
			var seen bool
			if c, seen = colOf[lab]; !seen {
				c = int32(len(m.labels))
				colOf[lab] = c
				m.labels = append(m.labels, lab)
				users[c] = id
			}
		}
		m.rivers[id] = append(m.rivers[id], pixWeight{col: c, area: w.Area[r], row: int32(r), lab: lab})
	}
	data, err := src.ReadColumnsRange(m.labels, po.First, end, nil)
	if err != nil {
		return nil, fmt.Errorf("gpu: reading pixel runoff: %w", err)
	}
	if len(data) != len(m.labels)*m.nt {
		return nil, fmt.Errorf("gpu: pixel source returned %d values for %d pixels × %d steps", len(data), len(m.labels), m.nt)
	}
	for c := range m.labels {
		s := data[c*m.nt : (c+1)*m.nt]
		for t, v := range s {
			if v-v == 0 {
				continue
			}
			if v != v && iopt.Fill == diffroute.FillZero {
				s[t] = 0
				continue
			}
			e := &diffroute.PixelValueError{Pixel: m.labels[c], Step: po.First + t, River: users[int32(c)], Value: v}
			if po.First+t < len(times) {
				e.Time = times[po.First+t]
			}
			return nil, e
		}
	}
	m.data, m.npix = data, len(m.labels)
	return m, nil
}

// bytes is the device memory of the matrix.
func (m *pixelMatrix) bytes() int64 { return int64(m.npix) * int64(m.nt) * 4 }

// interpTables are the arguments of dr_interp_window for the reaches of a
// kernel, rows in kernel position order; weights carry the scale.
type interpTables struct {
	wStart []int64
	pixel  []int32
	weight []float64
}

func (t *interpTables) bytes() int64 {
	if t == nil {
		return 0
	}
	return int64(len(t.wStart))*8 + int64(len(t.pixel))*4 + int64(len(t.weight))*8
}

// tables lays out the weights of the reaches of bs (network net) for
// dr_interp_window, rows in kernel position order.
func (m *pixelMatrix) tables(net *diffroute.Network, bs *diffroute.BlockSparseKernel) (*interpTables, error) {
	ids := make([]int64, len(bs.Order))
	for p, v := range bs.Order {
		ids[p] = net.ID(int(v))
	}
	return m.tablesFor(ids)
}

// tablesFor lays out the weights of rivers (rows in that order). Rivers
// without weights, or whose weights name pixels the source lacks, are
// errors, as for the CPU Interpolator.
func (m *pixelMatrix) tablesFor(rivers []int64) (*interpTables, error) {
	t := &interpTables{wStart: make([]int64, 1, len(rivers)+1)}
	var missing []int64
	for _, id := range rivers {
		ws, ok := m.rivers[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		for _, w := range ws {
			if w.col < 0 {
				return nil, fmt.Errorf("gpu: river %d: weight row %d names pixel %q, which the pixel source lacks", id, w.row+1, w.lab)
			}
			t.pixel = append(t.pixel, w.col)
			t.weight = append(t.weight, w.area*m.scale)
		}
		t.wStart = append(t.wStart, int64(len(t.pixel)))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("gpu: %w", &diffroute.MissingWeightsError{Rivers: missing})
	}
	return t, nil
}

// clusterJob is what a device needs to route one cluster chunk, or a
// Router's whole network: the kernel, the input (host runoff, packed per
// chunk, or resident pixels) and the transfer tables. Steps count from the
// start of Runoff (warm-up first). An adjoint job (a Router's
// BackwardRunoff) runs the transposed convolution, hist steps of lookahead
// in place of history.
type clusterJob struct {
	kr   *diffroute.KernelRouter
	bs   *diffroute.BlockSparseKernel
	dk   any // the device's copy of bs
	B, T int // batch members, runoff steps (warm-up included)
	warm int
	hist int // zero-padded history of every chunk: Taps − 1

	x    *diffroute.DataTensor // host runoff (nil with pixels)
	xrow []int                 // runoff row of each kernel position

	pix   *pixelMatrix  // resident pixels
	itab  *interpTables // their tables for this kernel
	pcol0 int           // pixel column of runoff step 0 (may be negative)

	tr *transferTables

	adj bool
}

// psFor is the pixel column of the first input step of chunk c.
func (j *clusterJob) psFor(c chunk) int { return j.pcol0 + c.T0 - c.Hist }

// jobChunks cuts the output steps [warm, T) into chunks of at most tc steps.
func (j *clusterJob) chunks(tc int) []chunk {
	var cs []chunk
	for t0 := j.warm; t0 < j.T; t0 += tc {
		cs = append(cs, chunk{T0: t0, Len: min(tc, j.T-t0), Hist: j.hist})
	}
	return cs
}

// clusterDevice is the device of a staged run: the pipeline's two slots, and
// the job whose kernel, tables and inflow the slots' runs use. run(s, c)
// queues on slot s: the input of chunk c (upload of hostIn(s), or the
// interpolation of resident pixels into the slot's input buffer), the
// convolution, the transfer-add kernel for output steps [c.T0, c.T0+c.Len)
// and the download into hostOut(s).
type clusterDevice interface {
	convDevice
	// uploadKernel makes a device copy of a cluster's kernel; the handle
	// goes into clusterJob.dk and back to freeKernel.
	uploadKernel(bs *diffroute.BlockSparseKernel) (any, error)
	freeKernel(dk any)
	// load makes job the current one: it uploads its transfer tables and
	// inflow, its interpolation tables, and makes sure the slots hold chunks
	// of tc steps.
	load(job *clusterJob, tc int) error
	// unload frees what load uploaded (after both slots are idle).
	unload()
}

// newClusterJob prepares job j for kernel router kr (the cluster's).
// With pixels, runoff steps are read from the resident matrix, step t of
// job.Runoff being run step job.Start + t; Runoff is then only consulted for
// its shape.
func newClusterJob(kr *diffroute.KernelRouter, job diffroute.ClusterJob, pix *pixelMatrix, itab *interpTables) (*clusterJob, error) {
	x := job.Runoff
	if x == nil {
		return nil, fmt.Errorf("gpu: no runoff")
	}
	if job.Warmup < 0 || job.Warmup > x.T {
		return nil, fmt.Errorf("gpu: warm-up of %d steps outside [0, %d]", job.Warmup, x.T)
	}
	bs := kr.BlockSparse()
	j := &clusterJob{kr: kr, bs: bs, B: x.B, T: x.T, warm: job.Warmup, hist: bs.Taps - 1}
	if pix != nil {
		if x.B != 1 {
			return nil, fmt.Errorf("gpu: resident pixels give one batch member, the runoff has %d", x.B)
		}
		// Source step of runoff step 0: First + Start; column = that − first.
		j.pix, j.itab, j.pcol0 = pix, itab, job.Start
		if job.Start+x.T > pix.nt {
			return nil, fmt.Errorf("gpu: run steps [%d, %d) go beyond the %d resident pixel steps", job.Start, job.Start+x.T, pix.nt)
		}
	} else {
		idx, err := alignRows(x, kr.Network())
		if err != nil {
			return nil, err
		}
		j.x, j.xrow = x, make([]int, bs.N)
		for p, v := range bs.Order {
			j.xrow[p] = idx[v]
		}
	}
	var err error
	if j.tr, err = buildTransfers(kr, job.Inflow, x.B, x.T); err != nil {
		return nil, err
	}
	return j, nil
}

// routeJob routes a prepared job on dev in chunks of at most tc output
// steps and returns the discharge of steps [warm, T) in network order, as
// KernelRouter.RouteWith does.
func routeJob(ctx context.Context, dev clusterDevice, j *clusterJob, labels *diffroute.DataTensor, tc int, hostNanos *atomic.Int64) (*diffroute.DataTensor, error) {
	net := j.kr.Network()
	ty := j.T - j.warm
	y := diffroute.NewDataTensor(j.B, net.IDs(), ty)
	if labels != nil {
		if len(labels.Times) == j.T {
			y.Times = slices.Clone(labels.Times[j.warm:])
		}
		y.Step = labels.Step
	}
	y.Units = "m3/s"
	if ty == 0 || j.bs.N == 0 {
		return y, nil
	}
	host, err := runJob(ctx, dev, j, y, tc)
	hostNanos.Add(int64(host * 1e9))
	if err != nil {
		return nil, err
	}
	return y, nil
}

// runJob routes a prepared job on dev in chunks of tc output steps into y
// (network order; its step 0 is the job's step warm), loading the job on
// the device for the run, and returns the host's packing time.
func runJob(ctx context.Context, dev clusterDevice, j *clusterJob, y *diffroute.DataTensor, tc int) (hostSecs float64, err error) {
	var pack func(dst []float32, c chunk)
	if j.pix == nil {
		pack = func(dst []float32, c chunk) { packChunk(dst, j.x, j.xrow, c) }
	}
	unpack := func(src []float32, c chunk) { unpackChunk(y, src, j.bs.Order, c, j.warm) }
	return runChunks(ctx, dev, j, tc, pack, unpack)
}

// runChunks loads job j on dev for chunks of tc steps and runs its chunks
// through the pipeline with pack and unpack.
func runChunks(ctx context.Context, dev clusterDevice, j *clusterJob, tc int, pack, unpack func(buf []float32, c chunk)) (hostSecs float64, err error) {
	if j.T-j.warm == 0 || j.bs.N == 0 {
		return 0, nil
	}
	tc = max(1, min(tc, j.T-j.warm))
	if err := dev.load(j, tc); err != nil {
		return 0, err
	}
	defer dev.unload()
	return pipeline(ctx, dev, j.chunks(tc), pack, unpack)
}

// jobChunkSteps picks the chunk length of a job from a device budget: what
// the budget leaves after the job's tables and inflow, over two slots.
func jobChunkSteps(budget int64, j *clusterJob) (int, error) {
	left := budget - j.tr.bytes() - j.itab.bytes()
	if left <= 0 {
		return 0, fmt.Errorf("gpu: out of memory: the cluster's transfer inflow and tables need %s of device memory, %s available", mib(j.tr.bytes()+j.itab.bytes()), mib(budget))
	}
	return chunkSteps(left, j.B, j.bs.N, j.hist, j.T-j.warm)
}

// stagedCore makes the cluster routers of a staged run on one device,
// optionally reading runoff from resident pixels.
type stagedCore struct {
	dev   clusterDevice
	pix   *pixelMatrix
	chunk func(j *clusterJob) (int, error) // chunk steps of a job
	host  atomic.Int64                     // nanoseconds of chunk packing
}

// factory is the diffroute.ClusterRouterFactory of the device: it uploads
// each cluster's kernel (and lays out its interpolation tables) once; the
// router frees the kernel when the staged router closes it.
func (sc *stagedCore) factory() diffroute.ClusterRouterFactory {
	return func(ctx context.Context, cluster int, kr *diffroute.KernelRouter) (diffroute.ClusterKernelRouter, error) {
		r := &clusterRouter{sc: sc, kr: kr}
		if sc.pix != nil {
			var err error
			if r.itab, err = sc.pix.tables(kr.Network(), kr.BlockSparse()); err != nil {
				return nil, fmt.Errorf("gpu: cluster %d: %w", cluster, err)
			}
		}
		dk, err := sc.dev.uploadKernel(kr.BlockSparse())
		if err != nil {
			return nil, err
		}
		r.dk = dk
		return r, nil
	}
}

// clusterRouter routes one cluster on a device (diffroute.ClusterKernelRouter).
type clusterRouter struct {
	sc   *stagedCore
	kr   *diffroute.KernelRouter
	itab *interpTables
	dk   any
}

// RouteCluster routes one time chunk of the cluster: runoff (uploaded, or
// interpolated on the device from resident pixels), convolution and fine
// transfer inflow on the device.
func (r *clusterRouter) RouteCluster(ctx context.Context, job diffroute.ClusterJob) (*diffroute.DataTensor, error) {
	if r.dk == nil {
		return nil, ErrClosed
	}
	j, err := newClusterJob(r.kr, job, r.sc.pix, r.itab)
	if err != nil {
		return nil, err
	}
	j.dk = r.dk
	tc, err := r.sc.chunk(j)
	if err != nil {
		return nil, err
	}
	return routeJob(ctx, r.sc.dev, j, job.Runoff, tc, &r.sc.host)
}

// Close frees the cluster's kernel on the device.
func (r *clusterRouter) Close() error {
	if r.dk != nil {
		r.sc.dev.freeKernel(r.dk)
		r.dk = nil
	}
	return nil
}
