package data

import (
	"path/filepath"
	"testing"
)

func TestReadRunoffNCTimeRange(t *testing.T) {
	path := filepath.Join("..", "testdata", "rapid_xx9", "m3_riv_bas_erai_t511_3hr_20030121to20030122.nc")
	whole, err := ReadRunoffNC(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int{{0, 16}, {3, 5}, {15, 1}, {7, 0}} {
		part, err := ReadRunoffNC(path, &NCOptions{TimeStart: r[0], TimeCount: r[1]})
		if err != nil {
			t.Fatal(err)
		}
		want := whole.SliceTime(r[0], whole.T)
		if r[1] > 0 {
			want = whole.SliceTime(r[0], r[0]+r[1])
		}
		if part.T != want.T || len(part.Times) != want.T || part.Times[0] != want.Times[0] {
			t.Fatalf("range %v: T=%d labels %d", r, part.T, len(part.Times))
		}
		for k := range want.Data {
			if part.Data[k] != want.Data[k] {
				t.Fatalf("range %v: value %d differs", r, k)
			}
		}
	}
	head, err := ReadRunoffNC(path, &NCOptions{TimeCount: -1})
	if err != nil || head.T != 0 || len(head.Times) != 16 || head.N != 9 {
		t.Fatalf("header only: %v, %v", head, err)
	}
	if _, err := ReadRunoffNC(path, &NCOptions{TimeStart: 10, TimeCount: 7}); err == nil {
		t.Error("range beyond the file accepted")
	}
}
