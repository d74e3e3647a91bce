package pipeline

import (
	"context"
	"fmt"

	"github.com/diffroute-go/route/diffroute"
)

// GradRouter prepares a router with a backward pass for net on the device
// name ("cpu", or "cuda" for the kernel method: ∂L/∂runoff on the GPU, the
// parameter gradients on the CPU). release frees the device; call it when
// done, also after an error.
func GradRouter(ctx context.Context, name string, ordinal int, net *diffroute.Network, opts diffroute.Options) (r diffroute.Differentiable, release func(), err error) {
	var d device
	release = func() {
		for _, r := range d.routers {
			r.Close()
		}
		d.close()
	}
	if err := d.open(name, ordinal, &opts); err != nil {
		return nil, release, err
	}
	rt, err := d.router(ctx, net, opts)
	if err != nil {
		return nil, release, err
	}
	dr, ok := rt.(diffroute.Differentiable)
	if !ok {
		return nil, release, fmt.Errorf("grad: the %s method has no gradient", opts.Method)
	}
	return dr, release, nil
}
