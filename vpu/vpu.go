// Package vpu is the folder layout of one GEOGLOWS VPU (vector processing
// unit) as DiffHydro's sample data set lays it out: what package download
// fetches, package data generates and reads, and notebooks open.
//
//	root/<vpu>/<vpu>_daily_sparse_runoff.feather   pixel runoff (daily depths, m)
//	root/<vpu>/<vpu>_interp_weight.feather         river_id, pixel_idx, area_sqm_total
//	root/<vpu>/configs/                             the RAPID configuration folder
//	root/<vpu>/manifest.json                        what a download fetched (sizes, digests)
package vpu

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// ManifestName is the file, in root/<vpu>, where a download records what it
// fetched.
const ManifestName = "manifest.json"

// Layout gives the paths of one VPU's data.
type Layout struct {
	VPU          int
	Dir          string   // root/<vpu>
	Runoff       string   // Dir/<vpu>_daily_sparse_runoff.feather
	InterpWeight string   // Dir/<vpu>_interp_weight.feather
	ConfigDir    string   // Dir/configs: the RAPID configuration folder
	Config       []string // files under ConfigDir, sorted (filled by whoever wrote them)
}

// Of returns the layout of VPU n under root, without touching the disk.
func Of(root string, n int) *Layout {
	dir := filepath.Join(root, strconv.Itoa(n))
	return &Layout{
		VPU:          n,
		Dir:          dir,
		Runoff:       filepath.Join(dir, fmt.Sprintf("%d_daily_sparse_runoff.feather", n)),
		InterpWeight: filepath.Join(dir, fmt.Sprintf("%d_interp_weight.feather", n)),
		ConfigDir:    filepath.Join(dir, "configs"),
	}
}

// Exists reports whether the two Feather files and the RAPID files routing
// needs (rapid_connect.csv, k.csv, x.csv) are all present.
func (l *Layout) Exists() bool {
	for _, p := range []string{l.Runoff, l.InterpWeight,
		filepath.Join(l.ConfigDir, "rapid_connect.csv"), filepath.Join(l.ConfigDir, "k.csv"), filepath.Join(l.ConfigDir, "x.csv")} {
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}
