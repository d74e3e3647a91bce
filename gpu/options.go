package gpu

import (
	"errors"
	"fmt"
)

// ErrNoCUDA is returned by Open in builds without the cuda tag.
var ErrNoCUDA = errors.New("gpu: this binary was built without CUDA support (build with -tags cuda; see package gpu's documentation)")

// ErrOutOfMemory is wrapped by errors of device allocations that failed for
// lack of memory; the message names the buffer and the sizes.
var ErrOutOfMemory = errors.New("gpu: out of device memory")

// ErrClosed is returned by calls on a closed Device or Router.
var ErrClosed = errors.New("gpu: device is closed")

// RouterOptions tune the GPU convolution; the zero value picks defaults.
type RouterOptions struct {
	// MemoryBudget bounds the device memory of the time-chunk buffers (two
	// slots of input and output); 0 means 80% of the memory free after the
	// kernel is uploaded.
	MemoryBudget int64
	// HostBudget bounds the pinned host buffers (the same two slots); 0 means
	// 1 GiB.
	HostBudget int64
	// ChunkSteps caps the time-chunk length in runoff steps; 0 lets the
	// budgets decide. Short chunks overlap copies with convolution better,
	// each costs MaxDelay−1 steps of re-read history.
	ChunkSteps int
	// Threads per block of the convolution; 0 means 256.
	Threads int
	// CPUBuild builds every kernel on the CPU. Otherwise kernels built from
	// spectra (IRFs without a recursive form: Hayami, pure lag, fractional
	// Nash; every IRF under Compat "diffroute") are built on the device
	// (diffroute.SpectralKernel); other IRFs with a recursive form are built
	// on the CPU, in the time domain, which is exact and fast.
	CPUBuild bool
}

// pairMaxFold is dr_pair_taps' bound on the folded bins FFTPad·MaxDelay/2+1
// (DR_MAX_FOLD in gpu/kernels/pairs.cu); larger kernels build on the CPU.
const pairMaxFold = 160 // for the fold; the fine kernel (ReLU) has no such bound

// orDefaults is *o with defaults filled in; nil means every default.
func (o *RouterOptions) orDefaults() (RouterOptions, error) {
	var ro RouterOptions
	if o != nil {
		ro = *o
	}
	return ro.withDefaults()
}

func (o RouterOptions) withDefaults() (RouterOptions, error) {
	if o.MemoryBudget < 0 || o.HostBudget < 0 || o.ChunkSteps < 0 || o.Threads < 0 {
		return o, fmt.Errorf("gpu: negative router option in %+v", o)
	}
	if o.HostBudget == 0 {
		o.HostBudget = 1 << 30
	}
	if o.Threads == 0 {
		o.Threads = 256
	}
	if o.Threads > 1024 {
		return o, fmt.Errorf("gpu: %d threads per block, the maximum is 1024", o.Threads)
	}
	return o, nil
}

// DeviceInfo describes an open device.
type DeviceInfo struct {
	Ordinal       int
	Name          string
	Major, Minor  int   // compute capability
	SMs           int   // multiprocessors
	TotalBytes    int64 // device memory
	FreeBytes     int64 // free when asked
	DriverVersion int   // e.g. 13000 for CUDA 13.0
	// PeakFLOPs is the FP32 FMA peak (2 FLOPs per FMA) and PeakBandwidth
	// the DRAM bandwidth in bytes/s, from the device's clocks; zero when the
	// driver does not report the clocks.
	PeakFLOPs, PeakBandwidth float64
	// Emulated is true for the CPU-emulated device of builds with the tag
	// cudaemu (tests of the CUDA host code without a GPU).
	Emulated bool
}

func (d DeviceInfo) String() string {
	return fmt.Sprintf("GPU %d: %s (sm_%d%d, %d SMs, %.1f GiB, %.1f GiB free, driver %d.%d; peak %.1f TFLOP/s FP32, %.0f GB/s)",
		d.Ordinal, d.Name, d.Major, d.Minor, d.SMs, float64(d.TotalBytes)/(1<<30), float64(d.FreeBytes)/(1<<30),
		d.DriverVersion/1000, d.DriverVersion%1000/10, d.PeakFLOPs/1e12, d.PeakBandwidth/1e9)
}

// fp32Lanes is the number of FP32 FMA units per SM by compute capability.
func fp32Lanes(major, minor int) int {
	switch {
	case major >= 9, major == 8 && minor >= 6:
		return 128
	default:
		return 64
	}
}

// RouteStats describes the last Route call of a Router.
type RouteStats struct {
	Chunks, ChunkSteps int
	// FMAs is the number of multiply-adds of the convolution: for every
	// batch member, reach d, source s in its closure and output step t,
	// min(Taps, t+1).
	FMAs int64
	// Bytes is the least DRAM traffic of the convolution: the kernel once per
	// batch member and chunk, runoff with history in, discharge out.
	Bytes int64
	// Timing is where device time went (CUDA events): its ConvSeconds is
	// the time of the convolution launches alone; its OverlapSeconds shows
	// copies running under kernels.
	Timing
	// TotalSeconds is the whole Route call (packing, copies, unpacking).
	TotalSeconds float64
}

// Roofline returns the achieved FP32 rate, the attainable one for the
// convolution's arithmetic intensity on a device, and their ratio.
func (s RouteStats) Roofline(d DeviceInfo) (achieved, attainable, fraction float64) {
	if s.ConvSeconds <= 0 || d.PeakFLOPs <= 0 {
		return 0, 0, 0
	}
	achieved = 2 * float64(s.FMAs) / s.ConvSeconds
	attainable = d.PeakFLOPs
	if s.Bytes > 0 {
		attainable = min(d.PeakFLOPs, 2*float64(s.FMAs)/float64(s.Bytes)*d.PeakBandwidth)
	}
	return achieved, attainable, achieved / attainable
}
