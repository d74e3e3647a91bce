package data

import (
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// randomQout is a tensor of n reaches (shuffled ids) and T 3-hourly steps.
func randomQout(rng *rand.Rand, n, T int) *diffroute.DataTensor {
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(1000 + 7*i)
	}
	rng.Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	x := diffroute.NewDataTensor(1, ids, T)
	for i := range x.Data {
		x.Data[i] = rng.Float32() * 100
	}
	x.Data[3] = float32(math.Inf(1))
	t0 := time.Date(2003, 1, 21, 0, 0, 0, 0, time.UTC)
	x.Times = make([]string, T)
	for t := range x.Times {
		x.Times[t] = FormatTime(t0.Add(time.Duration(t) * 3 * time.Hour))
	}
	x.Step = 3 * time.Hour
	x.Units = "m3 s-1"
	return x
}

// writePieces writes x through w in shuffled clusters of reaches (some
// contiguous in the file, some scattered) and time chunks, skipping the
// piece with index skip (-1: none). It returns the number of pieces.
func writePieces(t *testing.T, w *QoutWriter, x *diffroute.DataTensor, rng *rand.Rand, skip int) int {
	t.Helper()
	// Clusters: contiguous blocks of the file order, then a scattered one
	// taken from the remaining reaches.
	perm := rng.Perm(x.N)
	var clusters [][]int64
	for k := 0; k < x.N; {
		sz := 1 + rng.Intn(12)
		if rng.Intn(3) == 0 {
			// Scattered: random positions.
			var c []int64
			for j := 0; j < sz && k < x.N; j, k = j+1, k+1 {
				c = append(c, x.IDs[perm[k]])
			}
			clusters = append(clusters, c)
			continue
		}
		// Contiguous in file order (file order is x.IDs order), from
		// whatever positions are left in perm[k:] sorted.
		rest := slices.Clone(perm[k:])
		slices.Sort(rest)
		start := rest[rng.Intn(len(rest))]
		var c []int64
		for _, p := range rest {
			if p >= start && len(c) < sz {
				c = append(c, x.IDs[p])
			}
		}
		// Remove the chosen positions from perm[k:].
		chosen := map[int64]bool{}
		for _, id := range c {
			chosen[id] = true
		}
		left := perm[:k]
		var tail []int
		for _, p := range perm[k:] {
			if !chosen[x.IDs[p]] {
				tail = append(tail, p)
			}
		}
		perm = append(append(slices.Clone(left), make([]int, len(c))...), tail...)
		k += len(c)
		rng.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		clusters = append(clusters, c)
	}
	rng.Shuffle(len(clusters), func(i, j int) { clusters[i], clusters[j] = clusters[j], clusters[i] })

	piece := 0
	for _, c := range clusters {
		sub, err := x.SelectIDs(c)
		if err != nil {
			t.Fatal(err)
		}
		// Time chunks of random lengths, in shuffled order, with an
		// overlapping rewrite now and then.
		var chunks [][2]int
		for t0 := 0; t0 < x.T; {
			t1 := min(x.T, t0+1+rng.Intn(x.T/2+1))
			chunks = append(chunks, [2]int{t0, t1})
			t0 = t1
		}
		if rng.Intn(4) == 0 {
			a := rng.Intn(x.T)
			chunks = append(chunks, [2]int{a, min(x.T, a+3)})
		}
		rng.Shuffle(len(chunks), func(i, j int) { chunks[i], chunks[j] = chunks[j], chunks[i] })
		for _, ch := range chunks {
			if piece != skip {
				if err := w.Write(sub.SliceTime(ch[0], ch[1]), ch[0]); err != nil {
					t.Fatal(err)
				}
			}
			piece++
		}
	}
	return piece
}

func TestQoutWriterMatchesWriteQoutNC(t *testing.T) {
	dir := t.TempDir()
	for seed := int64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewSource(seed))
		x := randomQout(rng, 5+rng.Intn(60), 3+rng.Intn(40))

		whole := filepath.Join(dir, "whole.nc")
		if err := WriteQoutNC(whole, x, &QoutOptions{Comment: "c"}); err != nil {
			t.Fatal(err)
		}
		want, err := ReadRunoffNC(whole, nil)
		if err != nil {
			t.Fatal(err)
		}

		out := filepath.Join(dir, "stream.nc")
		os.Remove(out) // from the previous seed
		w, err := NewQoutWriter(out, x.IDs, x.Times, x.Step, &QoutOptions{Comment: "c"})
		if err != nil {
			t.Fatal(err)
		}
		n := writePieces(t, w, x, rng, -1)
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("file at path before Close: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w.Abort() // no-op after Close
		checkRecordTime(t, out, x.T)
		got, err := ReadRunoffNC(out, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.Times, want.Times) || got.Step != want.Step ||
			got.Units != want.Units || got.Step != x.Step {
			t.Fatalf("seed %d: labels differ:\n%v\n%v", seed, got, want)
		}
		for i := range want.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) || got.Data[i] != x.Data[i] {
				t.Fatalf("seed %d (%d pieces): value %d: got %v, whole %v, tensor %v", seed, n, i, got.Data[i], want.Data[i], x.Data[i])
			}
		}
		checkGlobal(t, out, "Conventions", "CF-1.6")
		checkGlobal(t, out, "comment", "c")
		// Same header, variable for variable.
		if a, b := ncdumpHeader(t, whole), ncdumpHeader(t, out); a != b {
			t.Fatalf("headers differ:\n%s\n---\n%s", a, b)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Fatalf("leftover files: %v", entries)
		}
	}
}

// ncdumpHeader describes the variables, their types, dims and attributes
// (the history attribute, a date, left out).
func ncdumpHeader(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range []string{"Qout", "rivid", "time", "time_bnds"} {
		for _, a := range []string{"long_name", "units", "cell_methods", "cf_role", "standard_name", "calendar", "axis", "bounds", "comment"} {
			s, ok := varAttr(t, path, name, a)
			b.WriteString(name + "." + a + "=" + s + strconv.FormatBool(ok) + "\n")
		}
	}
	return b.String()
}

func varAttr(t *testing.T, path, v, a string) (string, bool) {
	t.Helper()
	ncMu.Lock()
	defer ncMu.Unlock()
	ds, err := netcdf.OpenFile(path, netcdf.NOWRITE)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	vv, err := ds.Var(v)
	if err != nil {
		return "novar", false
	}
	typ, _ := vv.Type()
	dims, _ := vv.LenDims()
	s, ok := attrString(vv, a)
	return typ.String() + strconv.Itoa(len(dims)) + ":" + s, ok
}

func TestQoutWriterMissingPiece(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(7))
	x := randomQout(rng, 30, 17)
	out := filepath.Join(dir, "q.nc")
	w, err := NewQoutWriter(out, x.IDs, x.Times, x.Step, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Count the pieces with a dry run on another writer, then skip one.
	dry, err := NewQoutWriter(filepath.Join(dir, "dry.nc"), x.IDs, x.Times, x.Step, nil)
	if err != nil {
		t.Fatal(err)
	}
	rngA := rand.New(rand.NewSource(99))
	n := writePieces(t, dry, x, rngA, -1)
	dry.Abort()
	rngB := rand.New(rand.NewSource(99))
	writePieces(t, w, x, rngB, n/2)
	err = w.Close()
	if err == nil || !strings.Contains(err.Error(), "has no discharge for steps") || !strings.Contains(err.Error(), "reach ") {
		t.Fatalf("Close with a missing piece: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("leftover files: %v", entries)
	}
	if err := w.Close(); err == nil {
		t.Fatal("second Close accepted")
	}
	if err := w.Write(x.SliceTime(0, 1), 0); err == nil {
		t.Fatal("Write after Close accepted")
	}

	// The error names the first reach in file order and its missing steps.
	w, err = NewQoutWriter(out, []int64{5, 6, 7}, []string{"0", "1", "2", "3"}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	y := diffroute.NewDataTensor(1, []int64{7, 5, 6}, 4)
	if err := w.Write(y.SliceTime(0, 4), 0); err != nil {
		t.Fatal(err)
	}
	z := diffroute.NewDataTensor(1, []int64{6}, 2)
	w2, _ := NewQoutWriter(filepath.Join(dir, "b.nc"), []int64{5, 6, 7}, []string{"0", "1", "2", "3"}, 0, nil)
	w2.Write(diffroute.NewDataTensor(1, []int64{5, 7}, 4), 0)
	w2.Write(z, 0)
	w2.Write(z.SliceTime(1, 2), 3)
	if err := w2.Close(); err == nil || !strings.Contains(err.Error(), "reach 6 (position 1) has no discharge for steps [2, 3)") {
		t.Fatalf("Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRunoffNC(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IDs, []int64{5, 6, 7}) || !slices.Equal(got.Times, []string{"0", "1", "2", "3"}) || slices.ContainsFunc(got.Data, func(v float32) bool { return v != 0 }) {
		t.Fatalf("index-time file: %v %v", got, got.Data)
	}
	entries, _ = os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("leftover files: %v", entries)
	}
}

func TestQoutWriterErrors(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "q.nc")
	times := []string{"2020-01-01T00:00:00Z", "2020-01-01T01:00:00Z", "2020-01-01T02:00:00Z"}
	if _, err := NewQoutWriter(out, []int64{1, 2, 1}, times, time.Hour, nil); err == nil || !strings.Contains(err.Error(), "1 appears twice") {
		t.Fatalf("duplicate ids: %v", err)
	}
	if _, err := NewQoutWriter(out, []int64{1 << 40}, times, time.Hour, nil); err == nil {
		t.Fatal("id beyond int32 accepted")
	}
	if _, err := NewQoutWriter(filepath.Join(dir, "no", "q.nc"), []int64{1}, times, time.Hour, nil); err == nil {
		t.Fatal("missing folder accepted")
	}
	w, err := NewQoutWriter(out, []int64{10, 20, 30}, times, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	x := diffroute.NewDataTensor(1, []int64{20, 99, 10}, 2)
	if err := w.Write(x, 0); err == nil || !strings.Contains(err.Error(), "reach 99 is not in the Qout file") {
		t.Fatalf("unknown id: %v", err)
	}
	x = diffroute.NewDataTensor(1, []int64{20, 10}, 2)
	if err := w.Write(x, 2); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Fatalf("steps out of range: %v", err)
	}
	if err := w.Write(x, -1); err == nil {
		t.Fatal("negative t0 accepted")
	}
	x.Units = "mm"
	if err := w.Write(x, 0); err == nil {
		t.Fatal("units mm accepted")
	}
	x.Units = ""
	x.Step = 3 * time.Hour
	if err := w.Write(x, 0); err == nil || !strings.Contains(err.Error(), "step") {
		t.Fatalf("step mismatch: %v", err)
	}
	x.Step = 0
	x.Times = times[0:2]
	if err := w.Write(x, 1); err == nil || !strings.Contains(err.Error(), "the file's step 1") {
		t.Fatalf("time mismatch: %v", err)
	}
	if err := w.Write(diffroute.NewDataTensor(1, []int64{10, 10}, 1), 0); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate rows: %v", err)
	}
	// Batch member 0 only.
	b := diffroute.NewDataTensor(2, []int64{10, 20, 30}, 3)
	for i := range b.Data {
		b.Data[i] = float32(i)
	}
	if err := w.Write(b, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRunoffNC(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Data, b.Data[:9]) || got.Step != time.Hour {
		t.Fatalf("batch 0: %v, step %v", got.Data, got.Step)
	}
	// Abort leaves nothing.
	w, err = NewQoutWriter(filepath.Join(dir, "a.nc"), []int64{1}, times, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	w.Abort()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "q.nc" {
		t.Fatalf("leftover files: %v", entries)
	}
}

func TestAddSpan(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for it := 0; it < 2000; it++ {
		const T = 40
		var s []span
		var cov [T]bool
		for k := 0; k < 1+rng.Intn(8); k++ {
			a := rng.Intn(T)
			b := a + rng.Intn(T-a+1)
			s = addSpan(s, span{a, b})
			for t := a; t < b; t++ {
				cov[t] = true
			}
		}
		// Rebuild spans from cov and compare.
		var want []span
		for t := 0; t < T; t++ {
			if cov[t] && (t == 0 || !cov[t-1]) {
				want = append(want, span{t, t})
			}
			if cov[t] {
				want[len(want)-1].b = t + 1
			}
		}
		if !slices.Equal(s, want) {
			t.Fatalf("spans %v, want %v", s, want)
		}
	}
}
