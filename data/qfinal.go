package data

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// WriteQfinal writes RAPID's final discharge (Q at the end of the last
// sub-step, one value per reach, m3/s, aligned by id with ids) so that RAPID
// itself, or diffroute's --qinit, can continue the run:
//
//   - ".nc": RAPID's Qfinal layout, Qout(time = 1, rivid) in network order,
//     labelled with the time of the last step routed (last, may be "");
//   - otherwise: RAPID's Qinit CSV, one value per line for every reach of
//     rapid_connect.csv in that order (reaches outside the basin get 0).
func WriteQfinal(path string, r *RAPID, ids []int64, q []float64, last string, step time.Duration) error {
	if len(ids) != len(q) {
		return fmt.Errorf("data: Qfinal of %d values for %d reaches", len(q), len(ids))
	}
	if strings.EqualFold(filepath.Ext(path), ".nc") {
		x := diffroute.NewDataTensor(1, ids, 1)
		for i, v := range q {
			x.Data[i] = float32(v)
		}
		x.Units, x.Step = "m3/s", step
		if last != "" {
			x.Times = []string{last}
		}
		return WriteQoutNC(path, x, &QoutOptions{Title: "diffroute-go final discharge (RAPID Qfinal)",
			Comment: "instantaneous discharge at the end of the last routing sub-step"})
	}
	pos := make(map[int64]int, len(ids))
	for i, id := range ids {
		pos[id] = i
	}
	var b bytes.Buffer
	for _, id := range r.ConnectIDs {
		v := 0.0
		if i, ok := pos[id]; ok {
			v = q[i]
		}
		b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		b.WriteByte('\n')
	}
	return writeAtomic(path, func(tmp string) error { return os.WriteFile(tmp, b.Bytes(), 0o644) })
}
