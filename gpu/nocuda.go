//go:build !cuda

package gpu

import (
	"context"

	"github.com/diffroute-go/diffroute/diffroute"
)

// Device is a CUDA device; in this build (without the cuda tag) none can be
// opened.
type Device struct{}

// Open fails with ErrNoCUDA in builds without the cuda tag.
func Open(ordinal int) (*Device, error) { return nil, ErrNoCUDA }

// Info describes the device.
func (d *Device) Info() DeviceInfo { return DeviceInfo{} }

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

// Network returns nil.
func (r *Router) Network() *diffroute.Network { return nil }

// Close does nothing.
func (r *Router) Close() error { return nil }

// Stats returns the zero value.
func (r *Router) Stats() RouteStats { return RouteStats{} }

var _ diffroute.Router = (*Router)(nil)
