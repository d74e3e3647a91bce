package diffroute

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// spySource records which pixels were read.
type spySource struct {
	PixelSource
	mu    sync.Mutex
	reads [][]string
}

func (s *spySource) ReadColumnsRange(labels []string, t0, t1 int, dst []float32) ([]float32, error) {
	s.mu.Lock()
	s.reads = append(s.reads, slices.Clone(labels))
	s.mu.Unlock()
	return s.PixelSource.ReadColumnsRange(labels, t0, t1, dst)
}

func handSource(t *testing.T) *MemPixelSource {
	t.Helper()
	nan := float32(math.NaN())
	src, err := NewMemPixelSource(
		[]string{"10", "11", "12", "13"},
		[]string{"2000-01-01", "2000-01-02", "2000-01-03"},
		24*time.Hour,
		[]float32{
			0.001, 0.002, 0.000, // pixel 10, daily depths in m
			0.003, 0.001, 0.004, // pixel 11
			0.010, 0.020, 0.030, // pixel 12
			nan, nan, 0.5, // pixel 13: used by nobody below but river 4
		})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

const day = 86400.0

func handWeights() *Weights {
	return &Weights{
		RiverID: []int64{7, 5, 9, 7, 9, 9, 4},
		Pixel:   []string{"10", "12", "11", "11", "12", "11", "13"},
		Area:    []float64{day, day / 2, day, 2 * day, day, day, day},
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*max(math.Abs(b), 1e-3) }

func TestInterpolateByHand(t *testing.T) {
	ctx := context.Background()
	spy := &spySource{PixelSource: handSource(t)}
	in, err := NewInterpolator(handWeights(), spy, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Areas are multiples of 86 400 m², so with the default scale (÷ 86 400 s)
	// each river's m³/s is Σ (area/86 400) × depth:
	//   river 7 = 1·p10 + 2·p11        = [0.001+0.006, 0.002+0.002, 0+0.008]
	//   river 5 = 0.5·p12              = [0.005, 0.010, 0.015]
	//   river 9 = p11 + p12 + p11 (two rows for pixel 11 add up)
	//           = [0.006+0.010, 0.002+0.020, 0.008+0.030]
	want := map[int64][]float64{
		7: {0.007, 0.004, 0.008},
		5: {0.005, 0.010, 0.015},
		9: {0.016, 0.022, 0.038},
	}
	rivers := []int64{9, 5, 7}
	x, err := in.Interpolate(ctx, rivers, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Validate(); err != nil {
		t.Fatal(err)
	}
	if x.B != 1 || !slices.Equal(x.IDs, rivers) || x.Units != "m3/s" || x.Step != 24*time.Hour ||
		!slices.Equal(x.Times, []string{"2000-01-01", "2000-01-02", "2000-01-03"}) {
		t.Fatalf("labels wrong: %v ids %v times %v", x, x.IDs, x.Times)
	}
	for i, id := range rivers {
		for k, w := range want[id] {
			if g := float64(x.At(0, i, k)); !near(g, w) {
				t.Errorf("river %d step %d: got %v, want %v", id, k, g, w)
			}
		}
	}
	// Only the pixels of the requested rivers are read; pixel 13 (NaN) is not.
	if len(spy.reads) != 1 || slices.Contains(spy.reads[0], "13") || len(spy.reads[0]) != 3 {
		t.Errorf("read pixels %v", spy.reads)
	}

	// A time window and a single river: only pixel 12 is read.
	spy.reads = nil
	x, err = in.Interpolate(ctx, []int64{5}, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if x.T != 2 || !near(float64(x.At(0, 0, 0)), 0.010) || !near(float64(x.At(0, 0, 1)), 0.015) || x.Times[0] != "2000-01-02" {
		t.Errorf("window: %v %v", x.Data, x.Times)
	}
	if len(spy.reads) != 1 || !slices.Equal(spy.reads[0], []string{"12"}) {
		t.Errorf("window read pixels %v", spy.reads)
	}

	// An explicit scale of 1 gives Σ area × depth (m³/day) without units.
	in1, err := NewInterpolator(handWeights(), spy, &InterpOptions{Scale: 1})
	if err != nil {
		t.Fatal(err)
	}
	x, err = in1.Interpolate(ctx, []int64{5}, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !near(float64(x.At(0, 0, 0)), 0.005*day) || x.Units != "" {
		t.Errorf("scale 1: %v %q", x.Data, x.Units)
	}

	if got := in.Rivers(); !slices.Equal(got, []int64{4, 5, 7, 9}) {
		t.Errorf("Rivers() = %v", got)
	}
	if px, err := in.PixelsFor([]int64{7, 9}); err != nil || !slices.Equal(px, []string{"10", "11", "12"}) {
		t.Errorf("PixelsFor = %v, %v", px, err)
	}
}

func TestInterpolateFill(t *testing.T) {
	ctx := context.Background()
	in, err := NewInterpolator(handWeights(), handSource(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.Interpolate(ctx, []int64{7, 4}, 0, 3)
	var pe *PixelValueError
	if !errors.As(err, &pe) || pe.Pixel != "13" || pe.Step != 0 || pe.Time != "2000-01-01" || pe.River != 4 {
		t.Fatalf("want a PixelValueError for pixel 13 at 2000-01-01, got %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `pixel "13"`) || !strings.Contains(msg, "2000-01-01") {
		t.Errorf("message %q", msg)
	}
	// From step 2 on, pixel 13 has a value.
	if _, err := in.Interpolate(ctx, []int64{4}, 2, 3); err != nil {
		t.Errorf("step 2 should be fine: %v", err)
	}
	inz, err := NewInterpolator(handWeights(), handSource(t), &InterpOptions{Fill: FillZero})
	if err != nil {
		t.Fatal(err)
	}
	x, err := inz.Interpolate(ctx, []int64{4}, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if x.At(0, 0, 0) != 0 || x.At(0, 0, 1) != 0 || !near(float64(x.At(0, 0, 2)), 0.5) {
		t.Errorf("FillZero: %v", x.Data)
	}
	// Infinite values are errors under every policy.
	src, _ := NewMemPixelSource([]string{"a"}, []string{"t0", "t1"}, 0, []float32{1, float32(math.Inf(1))})
	inf, _ := NewInterpolator(&Weights{RiverID: []int64{1}, Pixel: []string{"a"}, Area: []float64{1}}, src, &InterpOptions{Fill: FillZero})
	if _, err := inf.Interpolate(ctx, []int64{1}, 0, 2); !errors.As(err, &pe) || pe.Time != "t1" || !strings.Contains(err.Error(), "+Inf") {
		t.Errorf("infinite value: %v", err)
	}
}

func TestInterpolateBadInput(t *testing.T) {
	ctx := context.Background()
	src := handSource(t)
	in, err := NewInterpolator(handWeights(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = in.Interpolate(ctx, []int64{7, 123, 5, 456}, 0, 3)
	var me *MissingWeightsError
	if !errors.As(err, &me) || !slices.Equal(me.Rivers, []int64{123, 456}) ||
		!strings.HasPrefix(err.Error(), "river 123 has no interpolation weights") {
		t.Errorf("missing weights: %v", err)
	}
	if err := in.Check([]int64{123}); err == nil || err.Error() != "river 123 has no interpolation weights" {
		t.Errorf("Check: %v", err)
	}

	unknown := handWeights()
	unknown.RiverID = append(unknown.RiverID, 8)
	unknown.Pixel = append(unknown.Pixel, "99")
	unknown.Area = append(unknown.Area, 1)
	inu, err := NewInterpolator(unknown, src, nil)
	if err != nil {
		t.Fatalf("unknown pixels are reported on use, not on construction: %v", err)
	}
	if _, err := inu.Interpolate(ctx, []int64{7}, 0, 3); err != nil {
		t.Errorf("river 7 does not use pixel 99: %v", err)
	}
	if _, err := inu.Interpolate(ctx, []int64{7, 8}, 0, 3); err == nil || !strings.Contains(err.Error(), `pixel "99"`) || !strings.Contains(err.Error(), "river 8") || !strings.Contains(err.Error(), "row 8") {
		t.Errorf("unknown pixel: %v", err)
	}

	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"duplicate river", func() error { _, err := in.Interpolate(ctx, []int64{7, 5, 7}, 0, 3); return err }, "river 7 is listed twice"},
		{"steps past the end", func() error { _, err := in.Interpolate(ctx, []int64{7}, 0, 4); return err }, "steps [0, 4) outside"},
		{"negative steps", func() error { _, err := in.Interpolate(ctx, []int64{7}, -1, 2); return err }, "steps [-1, 2) outside"},
		{"reversed steps", func() error { _, err := in.Interpolate(ctx, []int64{7}, 2, 1); return err }, "steps [2, 1) outside"},
		{"negative area", func() error {
			_, err := NewInterpolator(&Weights{RiverID: []int64{1}, Pixel: []string{"10"}, Area: []float64{-1}}, src, nil)
			return err
		}, "row 1 (river 1, pixel \"10\") has area -1"},
		{"NaN area", func() error {
			_, err := NewInterpolator(&Weights{RiverID: []int64{1, 2}, Pixel: []string{"10", "11"}, Area: []float64{1, math.NaN()}}, src, nil)
			return err
		}, "row 2 (river 2, pixel \"11\") has area NaN"},
		{"ragged weights", func() error {
			_, err := NewInterpolator(&Weights{RiverID: []int64{1, 2}, Pixel: []string{"10"}, Area: []float64{1, 1}}, src, nil)
			return err
		}, "2 river ids, 1 pixels and 2 areas"},
		{"nil weights", func() error { _, err := NewInterpolator(nil, src, nil); return err }, "no interpolation weights"},
		{"nil source", func() error { _, err := NewInterpolator(handWeights(), nil, nil); return err }, "no pixel source"},
		{"bad fill", func() error { _, err := NewInterpolator(handWeights(), src, &InterpOptions{Fill: 7}); return err }, "unknown fill policy FillPolicy(7)"},
		{"infinite scale", func() error {
			_, err := NewInterpolator(handWeights(), src, &InterpOptions{Scale: math.Inf(1)})
			return err
		}, "scale +Inf is not finite"},
		{"duplicate source label", func() error {
			_, err := NewMemPixelSource([]string{"a", "a"}, []string{"t"}, 0, []float32{1, 2})
			return err
		}, `"a" appears twice`},
		{"short source data", func() error {
			_, err := NewMemPixelSource([]string{"a", "b"}, []string{"t"}, 0, []float32{1})
			return err
		}, "1 pixel values for 2 pixels × 1 steps"},
		{"source read fails", func() error {
			_, err := NewInterpolator(handWeights(), failing{src}, nil)
			if err != nil {
				return err
			}
			in, _ := NewInterpolator(handWeights(), failing{src}, nil)
			_, err = in.Interpolate(ctx, []int64{5}, 0, 3)
			return err
		}, "reading pixel runoff: disk on fire"},
		{"no clusters", func() error { _, err := NewStagedInterpolator(nil, handWeights(), src, nil); return err }, "no clusters"},
		{"group without weights", func() error {
			_, err := NewGroupInterpolator([][]int64{{7}, {5, 77}}, handWeights(), src, nil)
			return err
		}, "group 1: river 77 has no interpolation weights"},
	} {
		err := tc.call()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := in.Interpolate(cctx, []int64{7}, 0, 3); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

type failing struct{ PixelSource }

func (failing) ReadColumnsRange([]string, int, int, []float32) ([]float32, error) {
	return nil, errors.New("disk on fire")
}

// randomInterp builds random weights (1–4 pixels per reach, shared between
// neighbours) and pixel runoff for a network.
func randomInterp(t testing.TB, net *Network, nPix, T int, seed uint64) (*Weights, *MemPixelSource) {
	rng := rand.New(rand.NewPCG(seed, 1))
	labels := make([]string, nPix)
	for j := range labels {
		labels[j] = strconv.Itoa(1000 + 3*j)
	}
	times := make([]string, T)
	t0 := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for k := range times {
		times[k] = t0.AddDate(0, 0, k).Format(time.RFC3339)
	}
	data := make([]float32, nPix*T)
	for i := range data {
		data[i] = float32(0.002 * rng.ExpFloat64())
	}
	src, err := NewMemPixelSource(labels, times, 24*time.Hour, data)
	if err != nil {
		t.Fatal(err)
	}
	w := &Weights{}
	for p, i := range net.PreOrder() {
		base := p * nPix / net.Len()
		for k := range 1 + rng.IntN(4) {
			w.RiverID = append(w.RiverID, net.ID(int(i)))
			w.Pixel = append(w.Pixel, labels[min(base+k, nPix-1)])
			w.Area = append(w.Area, 1e6+5e7*rng.Float64())
		}
	}
	// Shuffle the rows: the table order must not matter.
	perm := rng.Perm(w.Len())
	sw := &Weights{}
	for _, r := range perm {
		sw.RiverID = append(sw.RiverID, w.RiverID[r])
		sw.Pixel = append(sw.Pixel, w.Pixel[r])
		sw.Area = append(sw.Area, w.Area[r])
	}
	return sw, src
}

func TestStagedInterpolationEqualsWhole(t *testing.T) {
	ctx := context.Background()
	net := SyntheticNetwork(3000, 21)
	w, src := randomInterp(t, net, 700, 50, 21)
	spy := &spySource{PixelSource: src}
	in, err := NewInterpolator(w, spy, &InterpOptions{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := in.Interpolate(ctx, net.IDs(), 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Schedule(net, 800, 200)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Len() < 5 {
		t.Fatalf("too few clusters: %v", cl)
	}
	st, err := NewStagedInterpolator(cl, w, spy, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Len() != cl.Len() || st.Steps() != 50 {
		t.Fatalf("Len %d Steps %d", st.Len(), st.Steps())
	}
	for _, chunk := range []struct{ t0, t1 int }{{0, 50}, {13, 29}} {
		spy.reads = nil
		seen := 0
		for cr, err := range st.Runoffs(ctx, chunk.t0, chunk.t1) {
			if err != nil {
				t.Fatal(err)
			}
			if cr.Cluster != seen {
				t.Fatalf("cluster %d yielded in position %d", cr.Cluster, seen)
			}
			c := &cl.Clusters[cr.Cluster]
			if !slices.Equal(cr.Runoff.IDs, c.Net.IDs()) {
				t.Fatalf("cluster %d: rows not in the cluster's order", cr.Cluster)
			}
			want, err := whole.SelectIDs(c.Net.IDs())
			if err != nil {
				t.Fatal(err)
			}
			want = want.SliceTime(chunk.t0, chunk.t1)
			if !slices.Equal(cr.Runoff.Data, want.Data) || !slices.Equal(cr.Runoff.Times, want.Times) {
				t.Fatalf("cluster %d, steps [%d, %d): staged differs from whole", cr.Cluster, chunk.t0, chunk.t1)
			}
			// Each cluster reads its own pixels only.
			pix, _ := in.PixelsFor(c.Net.IDs())
			if last := spy.reads[len(spy.reads)-1]; !slices.Equal(last, pix) {
				t.Fatalf("cluster %d read %d pixels, needs %d", cr.Cluster, len(last), len(pix))
			}
			seen++
		}
		if seen != cl.Len() {
			t.Fatalf("yielded %d of %d clusters", seen, cl.Len())
		}
	}

	// Chunks walk time chunk by time chunk, every cluster in each.
	var parts []*DataTensor
	k := 0
	for cr, err := range st.ChunkedRunoffs(ctx, 16) {
		if err != nil {
			t.Fatal(err)
		}
		if cr.Cluster != k%cl.Len() {
			t.Fatalf("chunked: cluster %d at position %d", cr.Cluster, k)
		}
		if cr.Cluster == 0 {
			parts = append(parts, cr.Runoff)
		}
		k++
	}
	if k != 4*cl.Len() {
		t.Fatalf("chunked yielded %d, want %d", k, 4*cl.Len())
	}
	c0, err := ConcatTime(parts...)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := whole.SelectIDs(cl.Clusters[0].Net.IDs())
	if !slices.Equal(c0.Data, want.Data) {
		t.Error("chunked cluster 0 differs from whole")
	}

	// Breaking out stops reading.
	spy.reads = nil
	for range st.Runoffs(ctx, 0, 50) {
		break
	}
	if len(spy.reads) != 1 {
		t.Errorf("break after the first cluster read %d times", len(spy.reads))
	}
}

func TestStagedInterpolationRoutes(t *testing.T) {
	// Interpolated per cluster and routed staged = interpolated whole and
	// routed plainly.
	ctx := context.Background()
	net := SyntheticNetwork(2000, 5)
	w, src := randomInterp(t, net, 400, 30, 5)
	n := net.Len()
	k, x := make([]float64, n), make([]float64, n)
	for i := range k {
		k[i], x[i] = 0.1+0.5*float64(i%7)/7, 0.2
	}
	o := Options{Params: Params{"k": k, "x": x}}
	in, err := NewInterpolator(w, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	runoff, err := in.Interpolate(ctx, net.IDs(), 0, 30)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := NewRecursiveRouter(context.Background(), net, o)
	if err != nil {
		t.Fatal(err)
	}
	want, err := rr.Route(ctx, runoff)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := Schedule(net, 600, 150)
	if err != nil {
		t.Fatal(err)
	}
	st, err := in.Staged(cl)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := NewStagedRouter(o)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for cd, err := range sr.RouteClusters(ctx, st.ChunkedRunoffs(ctx, 12), cl) {
		if err != nil {
			t.Fatal(err)
		}
		for j, id := range cd.Discharge.IDs {
			i, _ := net.Index(id)
			for s := range cd.Discharge.T {
				g, wv := float64(cd.Discharge.At(0, j, s)), float64(want.At(0, i, cd.Start+s))
				if math.Abs(g-wv) > 1e-5*max(math.Abs(wv), 1e-3) {
					t.Fatalf("reach %d step %d: staged %v, plain %v", id, cd.Start+s, g, wv)
				}
			}
		}
		got++
	}
	if got != 3*cl.Len() {
		t.Errorf("routed %d cluster chunks, want %d", got, 3*cl.Len())
	}
}

func ExampleInterpolator() {
	// Two pixels with daily runoff depths (m) over three days.
	src, _ := NewMemPixelSource([]string{"101", "102"}, []string{"2000-01-01", "2000-01-02", "2000-01-03"}, 24*time.Hour,
		[]float32{
			0.010, 0.020, 0.000, // pixel 101
			0.000, 0.004, 0.008, // pixel 102
		})
	// River 1 covers 8.64 km² of pixel 101; river 2 covers 4.32 km² of
	// each pixel. Areas in m², as in DiffHydro's interp_weight tables.
	w := &Weights{
		RiverID: []int64{1, 2, 2},
		Pixel:   []string{"101", "101", "102"},
		Area:    []float64{8.64e6, 4.32e6, 4.32e6},
	}
	in, err := NewInterpolator(w, src, nil) // default: m² × m/day ÷ 86 400 s = m³/s
	if err != nil {
		panic(err)
	}
	x, err := in.Interpolate(context.Background(), []int64{1, 2}, 0, 3)
	if err != nil {
		panic(err)
	}
	for i, id := range x.IDs {
		fmt.Printf("river %d: %.2f %s\n", id, x.Series(0, i), x.Units)
	}
	_, err = in.Interpolate(context.Background(), []int64{3}, 0, 3)
	fmt.Println(err)
	// Output:
	// river 1: [1.00 2.00 0.00] m3/s
	// river 2: [0.50 1.20 0.40] m3/s
	// river 3 has no interpolation weights
}

func BenchmarkInterpolate(b *testing.B) {
	ctx := context.Background()
	net := SyntheticNetwork(5000, 3)
	w, src := randomInterp(b, net, 800, 8192, 3)
	in, err := NewInterpolator(w, src, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(net.Len() * 8192 * 4))
	for b.Loop() {
		if _, err := in.Interpolate(ctx, net.IDs(), 0, 8192); err != nil {
			b.Fatal(err)
		}
	}
}
