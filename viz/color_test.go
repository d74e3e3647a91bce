package viz

import "testing"

// Every one of the first 60 series or categories gets its own colour.
func TestColorsDoNotRepeat(t *testing.T) {
	seen := map[string]int{}
	for k := range 60 {
		c := colorOf(k)
		if j, dup := seen[c]; dup {
			t.Fatalf("colour %s of category %d repeats category %d", c, k, j)
		}
		seen[c] = k
	}
	if colorOf(0) != palette[0] || hslHex(0, 1, 0.5) != "#ff0000" || hslHex(240, 1, 0.5) != "#0000ff" {
		t.Errorf("colours: %s, %s, %s", colorOf(0), hslHex(0, 1, 0.5), hslHex(240, 1, 0.5))
	}
}
