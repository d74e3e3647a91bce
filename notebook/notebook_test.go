package notebook

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

func TestPathAndMust(t *testing.T) {
	if _, err := os.Stat(Path("testdata/rapid_xx9/rapid_connect.csv")); err != nil {
		t.Errorf("Path does not find the repository: %v", err)
	}
	if got := Rel(Path("notebooks")); got != "notebooks" {
		t.Errorf("Rel = %q", got)
	}
	code := -1
	exit = func(c int) { code = c }
	defer func() { exit = os.Exit }()
	if v := Must(3, nil); v != 3 || code != -1 {
		t.Errorf("Must(3, nil) = %d, exit %d", v, code)
	}
	Must(0, errors.New("boom"))
	if code != 1 {
		t.Errorf("Must on an error exited with %d", code)
	}
	_ = filepath.Join
}

func TestPeakMemory(t *testing.T) {
	var keep []byte
	before, peak := PeakMemory(func() {
		keep = make([]byte, 64<<20)
		for i := range keep {
			keep[i] = 1
		}
	})
	if peak < before+60<<20 {
		t.Errorf("peak %s, before %s: a 64 MiB buffer was missed", Bytes(peak), Bytes(before))
	}
	_ = keep
}

func TestMainStem(t *testing.T) {
	// 1 → 2 → 4 (outlet), 3 → 4; 5 → 6 (another outlet). 1–2 is the main stem.
	net, err := diffroute.NewNetwork([]int64{1, 2, 3, 4, 5, 6}, []int64{2, 4, 4, 0, 6, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := MainStem(net, 5, 1); len(got) != 3 || got[0] != 4 || got[1] != 2 || got[2] != 1 {
		t.Errorf("MainStem = %v, want [4 2 1]", got)
	}
}
