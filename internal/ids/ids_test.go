package ids

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
)

// reference: a stable comparison sort and a map of first positions.
func check(t *testing.T, ids []int64) {
	t.Helper()
	want := make([]int32, len(ids))
	for i := range want {
		want[i] = int32(i)
	}
	slices.SortStableFunc(want, func(a, b int32) int {
		switch {
		case ids[a] < ids[b]:
			return -1
		case ids[a] > ids[b]:
			return 1
		}
		return 0
	})
	if got := SortPositions(ids); !slices.Equal(got, want) {
		t.Fatalf("SortPositions of %d ids wrong", len(ids))
	}
	first := map[int64]int32{}
	wr, wf := int32(-1), int32(-1)
	for i, id := range ids {
		if f, ok := first[id]; ok {
			if wr < 0 {
				wr, wf = int32(i), f
			}
			continue
		}
		first[id] = int32(i)
	}
	x := NewIndex(ids)
	f, r, ok := x.Repeat()
	if ok != (wr >= 0) || ok && (f != wf || r != wr) {
		t.Fatalf("Repeat of %d ids = %d, %d, %v; want %d, %d", len(ids), f, r, ok, wf, wr)
	}
	probe := append(slices.Clone(ids), 0, -1, math.MaxInt64, math.MinInt64, 1, 2, 3, 1<<40)
	for _, id := range ids {
		probe = append(probe, id-1, id+1)
	}
	dst := make([]int32, len(probe))
	x.FindAll(dst, probe)
	for i, id := range probe {
		w, ok := first[id]
		if !ok {
			w = -1
		}
		if dst[i] != w || x.Find(id) != w {
			t.Fatalf("Find(%d) in %d ids = %d, want %d", id, len(ids), dst[i], w)
		}
	}
}

func TestSortAndIndex(t *testing.T) {
	for _, ids := range [][]int64{
		nil, {5}, {3, 1, 2}, {7, 7, 7}, {1, 2, 1, 2}, {-5, 10, -5, 0},
		{math.MaxInt64, math.MinInt64, 0, math.MaxInt64},
		{1 << 40, 3, 1 << 40, 1 << 62},
	} {
		check(t, ids)
	}
	// A large shuffled list with clusters far apart (uneven buckets).
	n := 200000
	ids := make([]int64, n)
	s := uint64(1)
	for i := range ids {
		s = s*6364136223846793005 + 1442695040888963407
		ids[i] = int64(s>>40) % 1000000
		if i%3 == 0 {
			ids[i] += 7 << 35
		}
	}
	check(t, ids)
}

func FuzzIndex(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255, 255, 255, 255, 127, 0, 0, 0, 0, 0, 0, 0, 128, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ids []int64
		for len(b) >= 8 {
			ids = append(ids, int64(binary.LittleEndian.Uint64(b)))
			b = b[8:]
		}
		for _, c := range b { // short ids: many repeats
			ids = append(ids, int64(c%5))
		}
		check(t, ids)
	})
}
