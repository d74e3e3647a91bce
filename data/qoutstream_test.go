package data

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// A Qout file written chunk by chunk must be the file WriteSeriesWith
// writes for the whole tensor, byte for byte (the creation date apart):
// with and without an order, dated and undated times, coordinates, chunks
// of one step, of uneven lengths and a single chunk.
func TestQoutStreamMatchesWhole(t *testing.T) {
	dir := t.TempDir()
	date := regexp.MustCompile(`date_created: [0-9T:Z-]+`)
	for k, c := range []struct {
		N, T   int
		chunks []int
		dated  bool
		order  bool
		coords bool
	}{
		{7, 5, []int{1, 1, 1, 1, 1}, true, false, false},
		{37, 11, []int{4, 4, 3}, false, true, true},
		{3000, 50, []int{17, 17, 16}, true, true, false}, // tiles of 16 reaches, passes of 349 steps
		{50, 9, []int{9}, true, false, true},
	} {
		ids := make([]int64, c.N)
		for i := range ids {
			ids[i] = int64(500 + 3*i)
		}
		x := diffroute.NewDataTensor(1, ids, c.T)
		for i := range x.Data {
			x.Data[i] = float32(i%89)*0.61 - 7
		}
		x.Units = "m3/s"
		if c.dated {
			x.Step = 3 * time.Hour
			for s := 0; s < c.T; s++ {
				x.Times = append(x.Times, FormatTime(time.Date(1999, 12, 31, 3*s, 0, 0, 0, time.UTC)))
			}
		} else {
			for s := 0; s < c.T; s++ { // step indices, as undated runoff is labelled
				x.Times = append(x.Times, fmt.Sprint(s))
			}
		}
		so := &SeriesOptions{}
		if c.order {
			so.Order = make([]int32, c.N)
			for j := range so.Order {
				so.Order[j] = int32((j * 7) % c.N) // 7 divides no N below
			}
		}
		if c.coords {
			so.Coords = map[int64]LatLon{}
			for i, id := range ids {
				so.Coords[id] = LatLon{Lat: float64(i) / 100, Lon: -float64(i) / 50}
			}
		}
		whole := filepath.Join(dir, fmt.Sprintf("whole%d.nc", k))
		if err := WriteSeriesWith(whole, x, so); err != nil {
			t.Fatal(err)
		}
		streamed := filepath.Join(dir, fmt.Sprintf("stream%d.nc", k))
		s, err := NewQoutStream(streamed, ids, x.Times, x.Step, so)
		if err != nil {
			t.Fatal(err)
		}
		t0 := 0
		for _, n := range c.chunks {
			if err := s.Write(x.SliceTime(t0, t0+n), t0); err != nil {
				t.Fatalf("case %d: %v", k, err)
			}
			t0 += n
		}
		if err := s.Close(); err != nil {
			t.Fatalf("case %d: %v", k, err)
		}
		want, _ := os.ReadFile(whole)
		got, _ := os.ReadFile(streamed)
		got, want = date.ReplaceAll(got, nil), date.ReplaceAll(want, nil)
		if len(want) == 0 || !bytes.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Fatalf("case %d: streamed file differs from the whole write at byte %d (%d and %d bytes)", k, i, len(got), len(want))
		}
	}
}

// A stream that is aborted, misses steps or is fed out of order leaves
// nothing at the path, not even its temporary file.
func TestQoutStreamLeavesNothing(t *testing.T) {
	ids := []int64{1, 2, 3}
	times := []string{"0", "1", "2", "3"}
	x := diffroute.NewDataTensor(1, ids, 4)
	x.Units = "m3/s"
	for k, feed := range []func(s *QoutStream) error{
		func(s *QoutStream) error { s.Abort(); return fmt.Errorf("aborted") },
		func(s *QoutStream) error {
			if err := s.Write(x.SliceTime(0, 3), 0); err != nil {
				return err
			}
			return s.Close() // step 3 missing
		},
		func(s *QoutStream) error { return s.Write(x.SliceTime(1, 3), 1) }, // not from step 0
		func(s *QoutStream) error {
			y := x.SliceTime(0, 2)
			y.Units = "mm"
			return s.Write(y, 0)
		},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "q.nc")
		s, err := NewQoutStream(path, ids, times, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = feed(s)
		s.Abort()
		if err == nil {
			t.Fatalf("case %d: no error", k)
		}
		if k == 1 && !strings.Contains(err.Error(), "only steps [0, 3) of 4") {
			t.Errorf("case %d: %v", k, err)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("case %d (%v): left %s", k, err, left[0].Name())
		}
	}
	if _, err := NewQoutStream(filepath.Join(t.TempDir(), "q.csv"), ids, times, 0, nil); err == nil {
		t.Error("a CSV output was streamed")
	}
}
