package viz

import (
	"math"
	"strings"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

func TestSensitivity(t *testing.T) {
	net, err := diffroute.NewNetwork([]int64{1, 2, 3}, []int64{3, 3, 0})
	if err != nil {
		t.Fatal(err)
	}
	g := diffroute.NewDataTensor(1, []int64{3, 1, 2}, 2) // rows in another order
	copy(g.Data, []float32{1, -1, 2, 3, -4, 0})
	per, err := RunoffSensitivity(net, g)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{5, 4, 2} // reaches 1, 2, 3
	for i := range want {
		if math.Abs(per[i]-want[i]) > 1e-6 {
			t.Fatalf("reach %d: %v, want %v", net.ID(i), per[i], want[i])
		}
	}
	in := RunoffSensitivityInTime(g)
	if in.At(0, 0, 0) != -1 || in.At(0, 0, 1) != 2 {
		t.Fatalf("in time: %v", in.Data)
	}
	html := HTML(SensitivityMap(net, "dL/dk", []float64{-3, 0, 2}))
	if !strings.Contains(html, "|dL/dk|") {
		t.Errorf("map lacks its colour scale name")
	}
	if bad := HTML(SensitivityMap(net, "dL/dk", []float64{1})); !strings.Contains(bad, "1 gradient values for 3 reaches") {
		t.Errorf("a short gradient is not reported: %.200s", bad)
	}
}
