package viz

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"strings"
	"sync"
)

// EchartsVersion is the version of the embedded Apache ECharts library
// (npm package echarts).
const EchartsVersion = "5.6.0"

//go:embed assets/echarts.min.js
var echartsJS string

// echartsTag is the script element that defines the global echarts object,
// guarded so that a page holding it twice evaluates it once. The library is
// evaluated with define, module and exports shadowed so that it always
// registers as a browser global, even on pages that carry an AMD loader
// (classic Jupyter Notebook ships RequireJS).
// Built on first use: every diffroute process links this package, and most
// (each basin's route in a many-basin run) never draw a chart.
var echartsTag = sync.OnceValue(buildEchartsTag)

// echartsHash identifies the embedded library in notebook session markers.
var echartsHash = sync.OnceValue(func() string {
	sum := sha256.Sum256([]byte(echartsJS))
	return hex.EncodeToString(sum[:8])
})

func buildEchartsTag() string {
	var b strings.Builder
	b.Grow(len(echartsJS) + 256)
	b.WriteString(`<script type="text/javascript" data-viz="echarts-` + EchartsVersion + `">` + "\n")
	b.WriteString(`if (typeof echarts === "undefined") {` + "\n")
	b.WriteString(`(function (define, module, exports) {` + "\n")
	b.WriteString(echartsJS)
	b.WriteString("\n}).call(window);\n}\n</script>\n")
	return b.String()
}

// EchartsScript returns a <script> element that defines the ECharts library
// unless the page already has it. Chart HTML needs it once per page; Page
// and Display take care of that, so call this only when assembling HTML by
// hand.
func EchartsScript() string { return echartsTag() }
