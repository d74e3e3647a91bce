//go:build !cuda && !cudaemu

package gpu

import (
	"context"

	"github.com/diffroute-go/route/diffroute"
)

// Device is a CUDA device; in this build (without the cuda tag) none can be
// opened.
type Device struct{}

// Open fails with ErrNoCUDA in builds without the cuda tag.
func Open(ordinal int) (*Device, error) { return nil, ErrNoCUDA }

// Info describes the device.
func (d *Device) Info() DeviceInfo { return DeviceInfo{} }

// NewRouter fails with ErrNoCUDA.
func (d *Device) NewRouter(ctx context.Context, net *diffroute.Network, opts diffroute.Options) (diffroute.Router, error) {
	return nil, ErrNoCUDA
}

// Close releases the device.
func (d *Device) Close() error { return nil }

// Router routes on a GPU; in this build none can be made.
type Router struct{}

// NewRouter fails with ErrNoCUDA in builds without the cuda tag.
func NewRouter(ctx context.Context, d *Device, net *diffroute.Network, opts diffroute.Options, ropts *RouterOptions) (*Router, error) {
	return nil, ErrNoCUDA
}

// Route fails with ErrNoCUDA.
func (r *Router) Route(ctx context.Context, runoff *diffroute.DataTensor) (*diffroute.DataTensor, error) {
	return nil, ErrNoCUDA
}

// RouteWarm fails with ErrNoCUDA.
func (r *Router) RouteWarm(ctx context.Context, runoff *diffroute.DataTensor, warmup int) (*diffroute.DataTensor, error) {
	return nil, ErrNoCUDA
}

// RouteTo fails with ErrNoCUDA.
func (r *Router) RouteTo(ctx context.Context, dst, runoff *diffroute.DataTensor) error {
	return ErrNoCUDA
}

// Reset does nothing.
func (r *Router) Reset() {}

// Network returns nil.
func (r *Router) Network() *diffroute.Network { return nil }

// Close does nothing.
func (r *Router) Close() error { return nil }

// Stats returns the zero value.
func (r *Router) Stats() RouteStats { return RouteStats{} }

// BuiltOnDevice is false without CUDA.
func (r *Router) BuiltOnDevice() bool { return false }

// DevicePixels is pixel runoff resident on a device; in this build none can
// be made.
type DevicePixels struct{}

// NewDevicePixels fails with ErrNoCUDA in builds without the cuda tag.
func NewDevicePixels(d *Device, w *diffroute.Weights, src diffroute.PixelSource, po PixelOptions) (*DevicePixels, error) {
	return nil, ErrNoCUDA
}

// Bytes returns 0.
func (p *DevicePixels) Bytes() int64 { return 0 }

// Steps returns 0.
func (p *DevicePixels) Steps() int { return 0 }

// Close does nothing.
func (p *DevicePixels) Close() error { return nil }

// Interpolate fails with ErrNoCUDA.
func (p *DevicePixels) Interpolate(ctx context.Context, rivers []int64, t0, t1 int) (*diffroute.DataTensor, error) {
	return nil, ErrNoCUDA
}

// StagedBackend routes a staged run's clusters on a GPU; in this build none
// can be made.
type StagedBackend struct{}

// NewStagedBackend fails with ErrNoCUDA in builds without the cuda tag.
func NewStagedBackend(d *Device, ropts *RouterOptions, pixels *DevicePixels) (*StagedBackend, error) {
	return nil, ErrNoCUDA
}

// Factory returns a factory whose routers fail with ErrNoCUDA.
func (b *StagedBackend) Factory() diffroute.ClusterRouterFactory {
	return func(context.Context, int, *diffroute.KernelRouter) (diffroute.ClusterKernelRouter, error) {
		return nil, ErrNoCUDA
	}
}

// ConvSeconds returns 0.
func (b *StagedBackend) ConvSeconds() float64 { return 0 }

// KernelBuilder builds on the CPU without CUDA.
func (b *StagedBackend) KernelBuilder() func(ctx context.Context, net *diffroute.Network, opts diffroute.Options) (*diffroute.KernelRouter, error) {
	return diffroute.NewKernelRouter
}

// Timing is zero without CUDA.
func (b *StagedBackend) Timing() Timing { return Timing{} }

// Close does nothing.
func (b *StagedBackend) Close() error { return nil }

var _ diffroute.Router = (*Router)(nil)

// CPU is nil without CUDA.
func (r *Router) CPU() *diffroute.KernelRouter { return nil }
