package pipeline

import (
	"context"
	"fmt"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu"
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

// StagedGradRouter prepares a staged router whose RouteGrad runs the
// gradient cluster by cluster on the device name: on "cuda" (the kernel
// method) each cluster's forward convolution, transposed convolution and
// per-tap correlations run on the GPU, the transfers' and the parameters'
// adjoints on the CPU. release frees the device; call it when done, also
// after an error.
func StagedGradRouter(name string, ordinal int, opts diffroute.Options) (sr *diffroute.StagedRouter, release func(), err error) {
	var d device
	release = d.close
	if err := d.open(name, ordinal, &opts); err != nil {
		return nil, release, err
	}
	if sr, err = diffroute.NewStagedRouter(opts); err != nil {
		return nil, release, err
	}
	if err := d.stage(sr); err != nil {
		return nil, release, err
	}
	if dev := d.dev; dev != nil {
		sr.ClusterGrad = func(ctx context.Context, _ int, net *diffroute.Network, o diffroute.Options) (*diffroute.KernelRouter, diffroute.ClusterKernelAdjoint, error) {
			r, err := gpu.NewRouter(ctx, dev, net, o, nil)
			if err != nil {
				return nil, nil, err
			}
			return r.CPU(), r, nil
		}
	}
	return sr, release, nil
}
