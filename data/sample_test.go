package data

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

func TestSampleDefaults(t *testing.T) {
	o, err := SampleOptions{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.VPU != 305 || o.Reaches != 15562 || o.Days != 29220 || o.Pixels != 15562/6 ||
		!o.Start.Equal(time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("defaults %+v", o)
	}
	// 29 220 days from 1940-01-01 end on 2019-12-31.
	if end := o.Start.AddDate(0, 0, o.Days-1); end.Format("2006-01-02") != "2019-12-31" {
		t.Errorf("last day %v", end)
	}
	for _, bad := range []SampleOptions{{Reaches: -1}, {Days: -3}, {Pixels: -1}, {VPU: -2}} {
		if _, err := GenerateVPUSample(t.TempDir(), bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestGenerateVPUSampleReadsBack(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	opts := SampleOptions{VPU: 999, Reaches: 600, Pixels: 90, Days: 400, Seed: 7}
	v, err := GenerateVPUSample(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Exists() || v.Dir != filepath.Join(root, "999") || len(v.Config) != 4 {
		t.Fatalf("layout %+v", v)
	}

	// RAPID folder: the synthetic network, basin order upstream first.
	r, err := ReadRAPID(v.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) > 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}
	net := diffroute.SyntheticNetwork(600, 7)
	if r.Network.Len() != 600 || !slices.Equal(r.ConnectIDs, net.IDs()) {
		t.Fatal("rapid_connect.csv does not hold the synthetic network in its order")
	}
	pos := map[int64]int{}
	for i, id := range r.Network.IDs() {
		pos[id] = i
		j, _ := net.Index(id)
		d, dd := net.Down(j), r.Network.Down(i)
		if (d < 0) != (dd < 0) || (d >= 0 && net.ID(d) != r.Network.ID(dd)) {
			t.Fatalf("reach %d drains elsewhere", id)
		}
	}
	for i := range r.Network.Len() {
		if d := r.Network.Down(i); d >= 0 && d < i {
			t.Fatalf("riv_bas_id.csv lists reach %d after its downstream reach", r.Network.ID(i))
		}
	}
	for i, k := range r.K {
		if k < 200 || k > 80000 || r.X[i] != 0.25 {
			t.Fatalf("reach %d: k = %v s, x = %v", r.Network.ID(i), k, r.X[i])
		}
	}

	// Pixel runoff: daily, labels are grid indices, depths of about 1 mm/day.
	src, err := OpenPixelRunoff(v.Runoff)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if len(src.Labels()) != 90 || src.Len() != 400 || src.Step() != 24*time.Hour || !strings.HasPrefix(src.Times()[0], "1940-01-01T00:00:00") {
		t.Fatalf("pixels %d, rows %d, step %v, first %q", len(src.Labels()), src.Len(), src.Step(), src.Times()[0])
	}
	all, err := src.ReadColumns(src.Labels(), nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, x := range all {
		if !(x >= 0) || x > 0.2 {
			t.Fatalf("implausible depth %v m", x)
		}
		sum += float64(x)
	}
	if mean := sum / float64(len(all)); mean < 2e-4 || mean > 5e-3 {
		t.Errorf("mean depth %.3g m/day", mean)
	}

	// Weights: every reach 1–4 known pixels; areas sum to its catchment.
	w, err := ReadWeights(v.InterpWeight)
	if err != nil {
		t.Fatal(err)
	}
	per := map[int64]int{}
	area := map[int64]float64{}
	for k, id := range w.RiverID {
		per[id]++
		area[id] += w.Area[k]
		if !src.Has(w.Pixel[k]) {
			t.Fatalf("row %d: pixel %q not in the runoff", k+1, w.Pixel[k])
		}
	}
	for _, id := range net.IDs() {
		if per[id] < 1 || per[id] > 4 || area[id] < 1e5 || area[id] > 2e9 {
			t.Fatalf("reach %d: %d pixels, %.3g m²", id, per[id], area[id])
		}
	}

	// Interpolation over the whole network, whole and staged.
	in, src2, err := OpenInterpolator(v.Runoff, v.InterpWeight, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src2.Close()
	x, err := in.Interpolate(ctx, r.Network.IDs(), 0, src.Len())
	if err != nil {
		t.Fatal(err)
	}
	if x.Units != "m3/s" || x.Step != 24*time.Hour {
		t.Errorf("units %q step %v", x.Units, x.Step)
	}
	// Check one reach by hand: Σ area × depth / 86 400.
	id := r.Network.ID(17)
	want := 0.0
	for k, rid := range w.RiverID {
		if rid == id {
			col, _ := src.ReadColumnsRange([]string{w.Pixel[k]}, 100, 101, nil)
			want += w.Area[k] * float64(col[0])
		}
	}
	want /= 86400
	if got := float64(x.At(0, 17, 100)); math.Abs(got-want) > 1e-6*want {
		t.Errorf("reach %d day 100: %v m3/s, want %v", id, got, want)
	}
	cl, err := diffroute.Schedule(r.Network, 2000, 150)
	if err != nil {
		t.Fatal(err)
	}
	st, err := in.Staged(cl)
	if err != nil {
		t.Fatal(err)
	}
	for cr, err := range st.Runoffs(ctx, 50, 80) {
		if err != nil {
			t.Fatal(err)
		}
		y, _ := x.SelectIDs(cr.Runoff.IDs)
		if !slices.Equal(cr.Runoff.Data, y.SliceTime(50, 80).Data) {
			t.Fatalf("cluster %d differs", cr.Cluster)
		}
	}

	// runoff.nc round trip.
	nc := filepath.Join(root, "runoff.nc")
	if err := InterpolateToNC(ctx, nc, in, r.Network.IDs()); err != nil {
		t.Fatal(err)
	}
	back, err := ReadRunoffNC(nc, &NCOptions{Var: "runoff"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.IDs, x.IDs) || !slices.Equal(back.Data, x.Data) || back.Step != 24*time.Hour || back.Times[0] != x.Times[0] {
		t.Errorf("runoff.nc read back differs: %v vs %v", back, x)
	}

	// Determinism: same options, same bytes; another seed, other runoff.
	v2, err := GenerateVPUSample(filepath.Join(root, "again"), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]string{{v.Runoff, v2.Runoff}, {v.InterpWeight, v2.InterpWeight}, {v.Config[0], v2.Config[0]}, {v.Config[2], v2.Config[2]}} {
		a, _ := os.ReadFile(p[0])
		b, _ := os.ReadFile(p[1])
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between runs", filepath.Base(p[0]))
		}
	}
	opts.Seed = 8
	v3, err := GenerateVPUSample(filepath.Join(root, "other"), opts)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(v.Runoff)
	b, _ := os.ReadFile(v3.Runoff)
	if bytes.Equal(a, b) {
		t.Error("seed does not change the runoff")
	}
}

func TestSampleFeatherOptions(t *testing.T) {
	v, err := GenerateVPUSample(t.TempDir(), SampleOptions{Reaches: 50, Days: 30, Seed: 1, Feather: &FeatherOptions{BatchRows: 7, Compression: "zstd"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.VPU != 305 || filepath.Base(v.Runoff) != "305_daily_sparse_runoff.feather" {
		t.Errorf("default VPU: %+v", v)
	}
	in, src, err := OpenInterpolator(v.Runoff, v.InterpWeight, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r, err := ReadRAPID(v.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Interpolate(context.Background(), r.Network.IDs(), 3, 25); err != nil {
		t.Fatal(err)
	}
	if len(src.Labels()) != 8 {
		t.Errorf("%d pixels for 50 reaches", len(src.Labels()))
	}
}

func TestOpenInterpolatorErrors(t *testing.T) {
	dir := t.TempDir()
	v, err := GenerateVPUSample(dir, SampleOptions{Reaches: 20, Days: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenInterpolator(v.Runoff, filepath.Join(dir, "nope.feather"), nil); err == nil {
		t.Error("missing weights file: no error")
	}
	if _, _, err := OpenInterpolator(filepath.Join(dir, "nope.feather"), v.InterpWeight, nil); err == nil {
		t.Error("missing runoff file: no error")
	}
	if _, _, err := OpenInterpolator(v.Runoff, v.InterpWeight, &diffroute.InterpOptions{Fill: 9}); err == nil {
		t.Error("bad options: no error")
	}
	// Runoff in other units cannot go into runoff.nc.
	x := diffroute.NewDataTensor(1, []int64{1}, 2)
	x.Units = "m"
	if err := WriteCatchmentRunoffNC(filepath.Join(dir, "r.nc"), x); err == nil {
		t.Error("units m accepted")
	}
}
