package basins

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// WorldOptions size a generated world of basins.
type WorldOptions struct {
	Basins  int    // number of basins
	Reaches int    // reaches of all basins together
	Days    int    // daily runoff steps
	Seed    uint64 // the same options give the same files
	// Spread is the ratio of the largest basin to the smallest (default 10):
	// sizes are spaced geometrically, as real VPUs range from small coastal
	// regions to continental basins.
	Spread float64
}

// GenerateWorld writes o.Basins synthetic basins under dir, one RAPID
// folder each (basin_001, …): rapid_connect.csv, riv_bas_id.csv, k.csv
// (seconds), x.csv and runoff.nc (runoff(time, river_id), m3/s, daily from
// 2000-01-01). Reach ids are unique across the world, so that the basins'
// discharge merges into one file. It returns the basins' sizes.
func GenerateWorld(dir string, o WorldOptions) ([]int, error) {
	if o.Basins < 1 || o.Days < 1 || o.Reaches < o.Basins {
		return nil, fmt.Errorf("basins: a world needs ≥ 1 basin, ≥ 1 day and ≥ 1 reach per basin (got %d, %d, %d)", o.Basins, o.Days, o.Reaches)
	}
	sizes, err := WorldSizes(o)
	if err != nil {
		return nil, err
	}
	// Shuffle, so that basin names do not sort by size.
	rng := rand.New(rand.NewPCG(o.Seed, 11))
	rng.Shuffle(len(sizes), func(a, b int) { sizes[a], sizes[b] = sizes[b], sizes[a] })
	var base int64
	for k, n := range sizes {
		name := fmt.Sprintf("basin_%03d", k+1)
		if err := writeBasin(filepath.Join(dir, name), n, o.Days, o.Seed+uint64(k)*7919, base); err != nil {
			return nil, fmt.Errorf("basins: %s: %w", name, err)
		}
		base += int64(n) * 100 // SyntheticNetwork ids lie in [1, 100 n]
	}
	if base > math.MaxInt32 {
		return nil, fmt.Errorf("basins: %d reaches is too many for unique int32 reach ids", o.Reaches)
	}
	return sizes, nil
}

// WorldSizes are the basin sizes of a world: o.Reaches split into o.Basins
// sizes spaced geometrically from smallest to largest (ratio o.Spread), in
// that order (GenerateWorld shuffles them).
func WorldSizes(o WorldOptions) ([]int, error) {
	if o.Basins < 1 || o.Reaches < o.Basins {
		return nil, fmt.Errorf("basins: cannot split %d reaches into %d basins", o.Reaches, o.Basins)
	}
	spread := o.Spread
	if spread <= 0 {
		spread = 10
	}
	w := make([]float64, o.Basins)
	var sum float64
	for k := range w {
		w[k] = math.Pow(spread, float64(k)/float64(max(o.Basins-1, 1)))
		sum += w[k]
	}
	sizes := make([]int, o.Basins)
	left := o.Reaches
	for k := range sizes {
		sizes[k] = max(1, int(float64(o.Reaches)*w[k]/sum))
		left -= sizes[k]
	}
	sizes[o.Basins-1] += left
	if sizes[o.Basins-1] < 1 {
		return nil, fmt.Errorf("basins: cannot split %d reaches into %d basins", o.Reaches, o.Basins)
	}
	return sizes, nil
}

// writeBasin writes one synthetic basin whose reach ids start after base.
func writeBasin(dir string, n, days int, seed uint64, base int64) error {
	syn := diffroute.SyntheticNetwork(n, seed)
	ids := slices.Clone(syn.IDs())
	down := make([]int, n)
	for i := range ids {
		ids[i] += base
		down[i] = syn.Down(i)
	}
	net, err := diffroute.NewNetworkIndex(ids, down)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	var conn, bas, ks, xs strings.Builder
	for i := 0; i < n; i++ {
		d := int64(0)
		if di := net.Down(i); di >= 0 {
			d = net.ID(di)
		}
		ups := net.Upstream(i)
		fmt.Fprintf(&conn, "%d,%d,%d", net.ID(i), d, len(ups))
		for k := 0; k < max(3, len(ups)); k++ {
			if k < len(ups) {
				fmt.Fprintf(&conn, ",%d", net.ID(int(ups[k])))
			} else {
				conn.WriteString(",0")
			}
		}
		conn.WriteString("\n")
		fmt.Fprintf(&ks, "%.1f\n", 3600*(2+18*rng.Float64())) // 2 to 20 hours
		fmt.Fprintf(&xs, "%.3f\n", 0.1+0.2*rng.Float64())
		fmt.Fprintf(&bas, "%d\n", net.ID(i))
	}
	for name, s := range map[string]string{data.RAPIDConnectFile: conn.String(), data.RAPIDBasinFile: bas.String(), data.RAPIDKFile: ks.String(), data.RAPIDXFile: xs.String()} {
		if err := writeFileAtomic(filepath.Join(dir, name), []byte(s)); err != nil {
			return err
		}
	}
	runoff := diffroute.SyntheticRunoff(net, 1, days, seed)
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	runoff.Times = make([]string, days)
	for t := range runoff.Times {
		runoff.Times[t] = start.AddDate(0, 0, t).Format(time.RFC3339)
	}
	runoff.Step = 24 * time.Hour
	runoff.Units = "m3 s-1"
	return data.WriteQoutNC(filepath.Join(dir, "runoff.nc"), runoff, &data.QoutOptions{Var: "runoff", Title: "synthetic lateral runoff"})
}

// CombineWorld writes every basin of world as one RAPID folder in dir (the
// basins' RAPID files concatenated, their runoff in one runoff.nc), to
// compare a split run with one run of the whole world.
func CombineWorld(world, dir string) error {
	list, err := Discover(world)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{data.RAPIDConnectFile, data.RAPIDBasinFile, data.RAPIDKFile, data.RAPIDXFile} {
		var all []byte
		for _, b := range list {
			part, err := os.ReadFile(filepath.Join(b.RAPID, name))
			if err != nil {
				return err
			}
			if n := len(part); n > 0 && part[n-1] != '\n' {
				part = append(part, '\n')
			}
			all = append(all, part...)
		}
		if err := writeFileAtomic(filepath.Join(dir, name), all); err != nil {
			return err
		}
	}
	var parts []*diffroute.DataTensor
	n := 0
	for _, b := range list {
		x, err := data.ReadRunoffNC(filepath.Join(b.Dir, "runoff.nc"), nil)
		if err != nil {
			return err
		}
		if len(parts) > 0 && !slices.Equal(x.Times, parts[0].Times) {
			return fmt.Errorf("basins: %s and %s have different runoff times", list[0].Name, b.Name)
		}
		parts = append(parts, x)
		n += x.N
	}
	ids := make([]int64, 0, n)
	for _, x := range parts {
		ids = append(ids, x.IDs...)
	}
	all := diffroute.NewDataTensor(1, ids, parts[0].T)
	all.Times, all.Step, all.Units = parts[0].Times, parts[0].Step, parts[0].Units
	off := 0
	for k, x := range parts {
		off += copy(all.Data[off:], x.Data)
		parts[k] = nil
	}
	return data.WriteQoutNC(filepath.Join(dir, "runoff.nc"), all, &data.QoutOptions{Var: "runoff", Title: "synthetic lateral runoff"})
}
