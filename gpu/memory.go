package gpu

import (
	"fmt"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/route/diffroute"
)

// fineThreads caps the grid of dr_pair_taps_fine, whose threads each keep a
// spectrum and a fine kernel in device scratch.
const fineThreads = 1 << 15

// deviceHeadroom is the share of the device memory a plan may be predicted
// to use; the rest absorbs the prediction's error and the driver's own
// allocations.
const deviceHeadroom = 0.9

// MemoryModel is the device-memory model of the kernel method on a GPU,
// for diffroute.PlanDevice: the largest cluster kernel, its transfer tables
// and fine inflow for one host time chunk (warm-up included), two slots
// (double buffering) of runoff-with-history and discharge chunk buffers,
// and the resident pixels — what a StagedBackend (a staged plan) or a Router
// (otherwise) allocates. It chooses the largest device time chunk that fits
// 90 % of Bytes.
type MemoryModel struct {
	// Bytes is the device memory routing may use.
	Bytes int64
	// ResidentPixels is the number of pixel values (pixels × steps) kept
	// resident on the device (DevicePixels), 0 when runoff is uploaded per
	// chunk.
	ResidentPixels int64
	// ChunkSteps fixes the device time chunk; 0 lets the model choose the
	// largest that fits (at most the host time chunk).
	ChunkSteps int
}

var _ diffroute.DeviceMemory = MemoryModel{}

// PlanMemory implements diffroute.DeviceMemory. An error says when not even
// one step fits.
func (m MemoryModel) PlanMemory(net *diffroute.Network, p *diffroute.MemoryPlan, o diffroute.Options) (*diffroute.DeviceEstimate, error) {
	d := &diffroute.DeviceEstimate{Name: "GPU kernel method", Budget: m.Bytes}
	B, f, hist := int64(p.Batch), int64(o.SubSteps), int64(o.MaxDelay-1)
	host := int64(max(1, p.TimeChunk))
	warm := int64(diffroute.KernelWarmup(o))
	// The worst cluster: largest kernel; its transfers into it.
	var kernel, tables, inflow int64
	var build int64 // an unstaged kernel built on the device, before routing
	nmax := int64(net.Len())
	if cl := p.Clusters; cl != nil {
		nmax = int64(cl.MaxClusterNodes())
		for k := range cl.Clusters {
			c := &cl.Clusters[k]
			ks, err := diffroute.EstimateKernelBytes(c.Net, o)
			if err != nil {
				return d, err
			}
			kernel = max(kernel, ks.BlockBytes)
			// Polyphase rows: one per reach from each target to the outlet
			// (at most the cluster's depth), Taps·f taps, with a task each.
			rows := int64(len(c.In)) * int64(c.Net.MaxDepth())
			tables = max(tables, rows*(int64(o.MaxDelay)*f*4+12)+int64(c.Net.Len())*12)
			inflow = max(inflow, int64(len(c.In))*B*(host+warm)*f*4)
		}
	} else {
		ks, err := diffroute.EstimateKernelBytes(net, o)
		if err != nil {
			return d, err
		}
		kernel = ks.BlockBytes
		build = buildBytes(ks, o)
	}
	pixels := m.ResidentPixels * 4
	interp := int64(0)
	if pixels > 0 {
		interp = nmax * 8 * 3 // row index and a few weights per reach
	}
	fixed := kernel + tables + inflow + pixels + interp + 2*B*nmax*hist*4
	per := 2 * 2 * B * nmax * 4 // two slots × (input + output) per step
	limit := int64(deviceHeadroom * float64(m.Bytes))
	tc := int64(m.ChunkSteps)
	if tc <= 0 {
		tc = min(host, (limit-fixed)/per)
	}
	d.ChunkSteps = int(max(tc, 1))
	tcb := int64(d.ChunkSteps)
	d.Parts = []diffroute.MemPart{
		{Name: "largest cluster kernel (block-sparse)", Bytes: kernel},
		{Name: "transfer tables (polyphase rows)", Bytes: tables},
		{Name: fmt.Sprintf("fine transfer inflow (%d steps × f)", host+warm), Bytes: inflow},
		{Name: fmt.Sprintf("2 × runoff chunk (%d + %d history steps)", tcb, hist), Bytes: 2 * B * nmax * (hist + tcb) * 4},
		{Name: fmt.Sprintf("2 × discharge chunk (%d steps)", tcb), Bytes: 2 * B * nmax * tcb * 4},
	}
	if pixels > 0 {
		d.Parts = append(d.Parts, diffroute.MemPart{Name: "resident pixels", Bytes: pixels}, diffroute.MemPart{Name: "interpolation tables", Bytes: interp})
	}
	for _, part := range d.Parts {
		d.Total += part.Bytes
	}
	d.Fits = m.Bytes <= 0 || max(d.Total, build) <= limit
	switch {
	case build > limit && m.Bytes > 0:
		d.Note = fmt.Sprintf("building the kernel on the device needs %s, over 90%% of %s: build it on the CPU (RouterOptions.CPUBuild) or stage the network", ibytes(build), ibytes(m.Bytes))
	case d.Fits:
		d.Note = fmt.Sprintf("device chunks of %d steps keep the GPU within %s (90%% of %s)", d.ChunkSteps, ibytes(limit), ibytes(m.Bytes))
	case tc < 1:
		d.Note = "not even one-step device chunks fit: lower max_paths (smaller cluster kernels), the host time chunk, or keep fewer pixels resident"
		return d, fmt.Errorf("gpu: the device's %s cannot hold the largest cluster (needs %s with one-step chunks)", ibytes(m.Bytes), ibytes(d.Total))
	default:
		d.Note = fmt.Sprintf("device chunks of %d steps need %s, over 90%% of %s", d.ChunkSteps, ibytes(d.Total), ibytes(m.Bytes))
	}
	return d, nil
}

// BuildBytes predicts the device memory of building net's kernel on a GPU
// (a SpectralKernel: spectra, prefix sums, pair lists and sums, the kernel),
// 0 where the kernel is built on the CPU only (IRFs with a recursive form,
// built in the time domain).
func BuildBytes(net *diffroute.Network, opts diffroute.Options) (int64, error) {
	if opts.Method == "" || opts.Method == diffroute.Recursive {
		opts.Method = diffroute.Kernel
	}
	o, err := opts.Resolved()
	if err != nil {
		return 0, err
	}
	ks, err := diffroute.EstimateKernelBytes(net, o)
	if err != nil {
		return 0, err
	}
	return buildBytes(ks, o), nil
}

// buildBytes is BuildBytes for a kernel's estimated sizes and resolved
// options: log spectra and their prefix sums, pair lists and sums, offsets
// and links by reach, the row index, and the fold tables or, under ReLU,
// the twiddles and a per-thread scratch (fineThreads at most).
func buildBytes(ks diffroute.KernelStats, o diffroute.Options) int64 {
	if ks.FFTLen == 0 {
		return 0
	}
	m, f, taps := int64(ks.FFTLen), int64(ks.SubSteps), int64(ks.Taps)
	nf := m/2 + 1
	n := int64(ks.Reaches)
	nb := (n + int64(ks.BlockSize) - 1) / int64(ks.BlockSize)
	tables := 2*n*nf*16 + ks.Pairs*16 + n*(8+3*4) + 8 + (nb+1)*8 + taps*8
	if o.Lateral == diffroute.LateralRAPID && !o.ExcludeSelf {
		tables += n*nf*16 + n*4 // source lateral spectra, boxed flags
	}
	if o.ReLU {
		tables += m*16 + min(ks.Pairs, fineThreads)*(2*nf+taps*f+taps)*8
	} else {
		half := m/f/2 + 1
		tables += 2 * (4*nf + 2*taps*half) * 8
	}
	return ks.BlockBytes + tables
}

func ibytes(b int64) string { return humanize.IBytes(uint64(max(b, 0))) }
