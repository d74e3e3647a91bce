package viz

import (
	"fmt"
	"math"

	"github.com/diffroute-go/route/diffroute"
)

// SensitivityMap draws a network coloured by the magnitude of a per-reach
// gradient (by network index, e.g. Gradients.Params["k"]) on a log scale:
// the reaches whose parameter moves the loss most stand out.
func SensitivityMap(net *diffroute.Network, name string, grad []float64, o ...Option) *Chart {
	if net != nil && len(grad) != net.Len() {
		return errChart("sensitivity map", fmt.Errorf("%d gradient values for %d reaches", len(grad), net.Len()))
	}
	abs := make([]float64, len(grad))
	for i, v := range grad {
		abs[i] = math.Abs(v)
	}
	opts := append([]Option{Title("Sensitivity |" + name + "|"), Subtitle("log scale; brighter reaches move the loss more")}, o...)
	return NetworkGraph(net, append(opts, ColorByLog("|"+name+"|", abs))...)
}

// RunoffSensitivity sums the magnitude of a runoff gradient
// (Gradients.Runoff) over time for each reach of net (network order): which
// reaches' runoff drives the loss. Rows are found by reach id.
func RunoffSensitivity(net *diffroute.Network, g *diffroute.DataTensor) ([]float64, error) {
	if net == nil || g == nil {
		return nil, fmt.Errorf("viz: no network or gradient")
	}
	out := make([]float64, net.Len())
	for r, id := range g.IDs {
		i, ok := net.Index(id)
		if !ok {
			continue
		}
		for b := 0; b < g.B; b++ {
			for _, v := range g.Series(b, r) {
				out[i] += math.Abs(float64(v))
			}
		}
	}
	return out, nil
}

// RunoffSensitivityInTime sums a runoff gradient over reaches for each step:
// which days' runoff drives the loss. It returns a one-row tensor (id 0)
// with the gradient's times, for Hydrograph.
func RunoffSensitivityInTime(g *diffroute.DataTensor) *diffroute.DataTensor {
	out := diffroute.NewDataTensor(1, []int64{0}, g.T)
	out.Times, out.Step, out.Units = g.Times, g.Step, g.Units
	s := out.Series(0, 0)
	for b := 0; b < g.B; b++ {
		for r := 0; r < g.N; r++ {
			for t, v := range g.Series(b, r) {
				s[t] += v
			}
		}
	}
	return out
}
