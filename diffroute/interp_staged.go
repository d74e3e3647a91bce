package diffroute

import (
	"context"
	"fmt"
	"iter"
	"slices"
)

// StagedInterpolator interpolates catchment runoff one group of rivers at a
// time — typically the clusters of a staged run — so that only one group's
// pixels and runoff are in memory at once (docs/design.md, pixel runoff: on-the-fly catchment
// interpolation). Its iterators feed StagedRouter.RouteClusters directly.
type StagedInterpolator struct {
	in     *Interpolator
	groups [][]int64
}

// NewStagedInterpolator prepares interpolation per cluster of cl: group k
// holds the reach ids of cluster k in its local order, so each yielded
// runoff tensor lines up with cluster k's network. Every reach must have
// weights whose pixels are in the source; this is checked here, before any
// runoff is read.
func NewStagedInterpolator(cl *Clusters, w *Weights, src PixelSource, opts *InterpOptions) (*StagedInterpolator, error) {
	if cl == nil {
		return nil, fmt.Errorf("diffroute: no clusters")
	}
	in, err := NewInterpolator(w, src, opts)
	if err != nil {
		return nil, err
	}
	return in.Staged(cl)
}

// NewGroupInterpolator is NewStagedInterpolator for plain groups of river
// ids (group k yields ClusterRunoff{Cluster: k}). A river may belong to
// several groups.
func NewGroupInterpolator(groups [][]int64, w *Weights, src PixelSource, opts *InterpOptions) (*StagedInterpolator, error) {
	in, err := NewInterpolator(w, src, opts)
	if err != nil {
		return nil, err
	}
	return in.Groups(groups)
}

// Staged returns a StagedInterpolator over the clusters of cl sharing this
// interpolator's weights, source and options.
func (in *Interpolator) Staged(cl *Clusters) (*StagedInterpolator, error) {
	groups := make([][]int64, cl.Len())
	for k := range cl.Clusters {
		groups[k] = cl.Clusters[k].Net.IDs()
	}
	return in.Groups(groups)
}

// Groups returns a StagedInterpolator over groups of river ids sharing this
// interpolator's weights, source and options. Every river is checked for
// weights and pixels up front; errors name the group.
func (in *Interpolator) Groups(groups [][]int64) (*StagedInterpolator, error) {
	s := &StagedInterpolator{in: in, groups: make([][]int64, len(groups))}
	for k, g := range groups {
		if err := in.Check(g); err != nil {
			return nil, fmt.Errorf("diffroute: group %d: %w", k, err)
		}
		s.groups[k] = slices.Clone(g)
	}
	return s, nil
}

// Interpolator returns the underlying whole-set interpolator.
func (s *StagedInterpolator) Interpolator() *Interpolator { return s.in }

// Len returns the number of groups.
func (s *StagedInterpolator) Len() int { return len(s.groups) }

// Group returns the river ids of group k. The slice must not be modified.
func (s *StagedInterpolator) Group(k int) []int64 { return s.groups[k] }

// Steps returns the number of time steps of the pixel source.
func (s *StagedInterpolator) Steps() int { return s.in.nT }

// Runoffs yields, lazily and in group order, the catchment runoff of each
// group for pixel-source steps [t0, t1): each group's pixels are read and
// combined only when the consumer asks for it. The first error ends the
// sequence; a cancelled ctx ends it with ctx's error.
func (s *StagedInterpolator) Runoffs(ctx context.Context, t0, t1 int) iter.Seq2[ClusterRunoff, error] {
	return func(yield func(ClusterRunoff, error) bool) {
		var buf []float32 // pixel buffer reused across groups
		for k, g := range s.groups {
			x, err := s.in.interpolate(ctx, g, t0, t1, &buf)
			if err != nil {
				yield(ClusterRunoff{Cluster: k}, fmt.Errorf("diffroute: group %d: %w", k, err))
				return
			}
			if !yield(ClusterRunoff{Cluster: k, Runoff: x}, nil) {
				return
			}
		}
	}
}

// ChunkedRunoffs yields every group for steps [0, chunk), then every group
// for [chunk, 2·chunk), and so on to the end of the source: the order in
// which StagedRouter.RouteClusters walks time chunks. chunk ≤ 0 means one
// chunk covering all steps.
func (s *StagedInterpolator) ChunkedRunoffs(ctx context.Context, chunk int) iter.Seq2[ClusterRunoff, error] {
	return func(yield func(ClusterRunoff, error) bool) {
		T := s.in.nT
		if chunk <= 0 {
			chunk = max(T, 1)
		}
		for t0 := 0; t0 < T; t0 += chunk {
			for cr, err := range s.Runoffs(ctx, t0, min(T, t0+chunk)) {
				if !yield(cr, err) || err != nil {
					return
				}
			}
		}
	}
}
