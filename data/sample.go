package data

import (
	"bytes"
	"fmt"
	"github.com/diffroute-go/route/vpu"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// Sizes of the DiffHydro sample VPU 305, the defaults of GenerateVPUSample.
const (
	SampleVPU     = 305
	SampleReaches = 15562 // reaches of VPU 305
	SampleDays    = 29220 // 1940-01-01 to 2019-12-31, daily
)

// SampleOptions size a generated VPU-like data set. Zero fields take the
// defaults of VPU 305.
type SampleOptions struct {
	VPU     int // VPU number naming the folder and files; default 305
	Reaches int // default SampleReaches
	// Pixels is the number of runoff pixels; default Reaches/6 (at least 1).
	Pixels int
	Days   int       // daily steps; default SampleDays
	Start  time.Time // first day; default 1940-01-01 UTC
	Seed   uint64    // the same seed gives the same files
	// Feather tunes the Feather writers (record batch rows, compression);
	// nil writes one uncompressed batch, which reads fastest.
	Feather *FeatherOptions
}

func (o SampleOptions) withDefaults() (SampleOptions, error) {
	if o.VPU == 0 {
		o.VPU = SampleVPU
	}
	if o.Reaches == 0 {
		o.Reaches = SampleReaches
	}
	if o.Pixels == 0 {
		o.Pixels = max(1, o.Reaches/6)
	}
	if o.Days == 0 {
		o.Days = SampleDays
	}
	if o.Start.IsZero() {
		o.Start = time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	switch {
	case o.VPU < 0:
		return o, fmt.Errorf("data: sample VPU %d must be positive", o.VPU)
	case o.Reaches < 1 || o.Pixels < 1 || o.Days < 1:
		return o, fmt.Errorf("data: sample needs at least one reach, pixel and day (got %d, %d, %d)", o.Reaches, o.Pixels, o.Days)
	case int64(o.Pixels)*int64(o.Days) > math.MaxInt32*4:
		return o, fmt.Errorf("data: sample of %d pixels × %d days is too large", o.Pixels, o.Days)
	}
	return o, nil
}

// GenerateVPUSample writes a synthetic data set shaped like DiffHydro's VPU
// sample under root (package vpu's layout) and returns its paths:
//
//   - a RAPID configuration folder for diffroute.SyntheticNetwork(Reaches,
//     Seed): rapid_connect.csv (reaches in shuffled order, upstream columns
//     padded with zeros), riv_bas_id.csv (upstream reaches first), k.csv
//     (Muskingum k in seconds: reach length over a wave celerity, about 1–3
//     hours) and x.csv (0.25);
//   - <vpu>_daily_sparse_runoff.feather: a time column (daily timestamps from
//     Start) and one float32 column per pixel, named by the pixel's index on
//     a global 0.25° grid (row·1440 + column), holding daily runoff depths in
//     m (about 1 mm/day on average: a seasonal base flow plus storms shared
//     across the region and local to each pixel);
//   - <vpu>_interp_weight.feather: river_id, pixel_idx, area_sqm_total.
//     Each reach overlaps 1–4 neighbouring pixels; the areas (m²) sum to a
//     catchment area drawn around 30 km².
//
// The same options give byte-identical files. Existing files are replaced,
// each atomically.
func GenerateVPUSample(root string, opts SampleOptions) (*vpu.Layout, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	v := vpu.Of(root, o.VPU)
	if err := os.MkdirAll(v.ConfigDir, 0o755); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	net := diffroute.SyntheticNetwork(o.Reaches, o.Seed)
	if v.Config, err = writeSampleRAPID(v.ConfigDir, net, o.Seed); err != nil {
		return nil, err
	}
	labels := samplePixelLabels(o.Pixels, o.Seed)
	w := sampleWeights(net, labels, o.Seed)
	if err := WriteWeights(v.InterpWeight, w, o.Feather); err != nil {
		return nil, err
	}
	// Columns in increasing label order, as a pivoted table would have them.
	sorted := slices.Clone(labels)
	slices.SortFunc(sorted, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	if err := WritePixelRunoff(v.Runoff, sampleRunoff(sorted, o), o.Feather); err != nil {
		return nil, err
	}
	return v, nil
}

// writeSampleRAPID writes the RAPID configuration of net.
func writeSampleRAPID(dir string, net *diffroute.Network, seed uint64) ([]string, error) {
	rng := rand.New(rand.NewPCG(seed, 0x7a91d))
	n := net.Len()
	maxUp := 0
	for i := range n {
		maxUp = max(maxUp, len(net.Upstream(i)))
	}
	var conn, ks, xs, bas bytes.Buffer
	for i := range n {
		down := int64(0)
		if d := net.Down(i); d >= 0 {
			down = net.ID(d)
		}
		ups := net.Upstream(i)
		fmt.Fprintf(&conn, "%d,%d,%d", net.ID(i), down, len(ups))
		for k := range maxUp {
			u := int64(0)
			if k < len(ups) {
				u = net.ID(int(ups[k]))
			}
			fmt.Fprintf(&conn, ",%d", u)
		}
		conn.WriteByte('\n')
		// k = length / celerity: lengths around 4 km, celerities 0.5–1.5 m/s.
		length := 4000 * math.Exp(0.6*rng.NormFloat64())
		length = min(max(length, 300), 40000)
		k := length / (0.5 + rng.Float64())
		fmt.Fprintf(&ks, "%.4f\n", k)
		xs.WriteString("0.25\n")
	}
	// Upstream reaches first: the reversed pre-order is topological.
	order := net.PreOrder()
	for p := len(order) - 1; p >= 0; p-- {
		fmt.Fprintf(&bas, "%d\n", net.ID(int(order[p])))
	}
	var paths []string
	for _, f := range []struct {
		name string
		buf  *bytes.Buffer
	}{{RAPIDConnectFile, &conn}, {RAPIDBasinFile, &bas}, {RAPIDKFile, &ks}, {RAPIDXFile, &xs}} {
		p := filepath.Join(dir, f.name)
		err := writeAtomic(p, func(tmp string) error { return os.WriteFile(tmp, f.buf.Bytes(), 0o644) })
		if err != nil {
			return nil, fmt.Errorf("data: %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths, nil
}

// samplePixelLabels places n pixels on a rectangle of the global 0.25° grid
// (1440 columns × 720 rows), walked row by row in a snake so that
// consecutive pixels are neighbours, and labels each by row·1440 + column.
func samplePixelLabels(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0x91c5e1))
	cols := min(1440, int(math.Ceil(math.Sqrt(1.5*float64(n)))))
	rows := (n + cols - 1) / cols
	r0 := rng.IntN(max(1, 720-rows))
	c0 := rng.IntN(1440 - cols + 1)
	labels := make([]string, n)
	for k := range labels {
		r, c := k/cols, k%cols
		if r%2 == 1 {
			c = cols - 1 - c
		}
		labels[k] = strconv.Itoa((r0+r)*1440 + c0 + c)
	}
	return labels
}

// sampleWeights gives each reach 1–4 consecutive pixels. Reaches are taken
// in network pre-order, so that the pixels of a subtree are close together
// and neighbouring reaches share pixels.
func sampleWeights(net *diffroute.Network, labels []string, seed uint64) *Weights {
	rng := rand.New(rand.NewPCG(seed, 0xa4ea5))
	n, P := net.Len(), len(labels)
	w := &Weights{}
	share := make([]float64, 4)
	for p, i := range net.PreOrder() {
		k := min(1+rng.IntN(4), P)
		base := min(p*P/n, P-k)
		// Catchment area: log-normal around 30 km², within [0.1, 2000] km².
		area := min(max(3e7*math.Exp(0.9*rng.NormFloat64()), 1e5), 2e9)
		sum := 0.0
		for j := range k {
			share[j] = rng.ExpFloat64()
			sum += share[j]
		}
		for j := range k {
			w.RiverID = append(w.RiverID, net.ID(int(i)))
			w.Pixel = append(w.Pixel, labels[base+j])
			w.Area = append(w.Area, math.Round(area*share[j]/sum*100)/100)
		}
	}
	return w
}

// sampleRunoff generates daily runoff depths (m) for the pixels: a seasonal
// base flow scaled per pixel plus storms, 70 % shared by the region and 30 %
// local, each decaying over a few days.
func sampleRunoff(labels []string, o SampleOptions) *PixelTable {
	T := o.Days
	times := make([]string, T)
	for t := range times {
		times[t] = FormatTime(o.Start.AddDate(0, 0, t))
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x4e9107))
	region := make([]float64, T)
	storm := 0.0
	for t := range region {
		storm *= 0.6
		if rng.Float64() < 0.1 {
			storm += 0.003 * rng.ExpFloat64()
		}
		region[t] = storm
	}
	season := make([]float64, T)
	phase := 2 * math.Pi * rng.Float64()
	for t := range season {
		doy := float64(o.Start.AddDate(0, 0, t).YearDay())
		season[t] = 1 + 0.6*math.Sin(2*math.Pi*doy/365.25+phase)
	}
	P := len(labels)
	data := make([]float32, P*T)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), P)
	for wk := range workers {
		wg.Go(func() {
			for j := wk; j < P; j += workers {
				r := rand.New(rand.NewPCG(o.Seed, 0x1000000+uint64(j)))
				scale := math.Exp(0.4 * r.NormFloat64())
				base := 0.0003 * math.Exp(0.3*r.NormFloat64())
				local := 0.0
				s := data[j*T : (j+1)*T]
				for t := range s {
					local *= 0.5
					if r.Float64() < 0.08 {
						local += 0.002 * r.ExpFloat64()
					}
					s[t] = float32(scale * (base*season[t] + 0.7*region[t] + 0.3*local))
				}
			}
		})
	}
	wg.Wait()
	return &PixelTable{Times: times, Labels: labels, Data: data}
}
