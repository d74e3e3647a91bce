package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// File names of a RAPID configuration folder.
const (
	RAPIDConnectFile = "rapid_connect.csv"
	RAPIDBasinFile   = "riv_bas_id.csv"
	RAPIDKFile       = "k.csv"
	RAPIDXFile       = "x.csv"
)

// RAPID is a RAPID configuration folder read into network order.
type RAPID struct {
	// Network holds exactly the basin's reaches, indexed in riv_bas_id.csv
	// order (rapid_connect.csv order when riv_bas_id.csv is absent).
	Network *diffroute.Network
	// K is Muskingum k in seconds and X Muskingum x, per reach in network
	// order (re-indexed from the rapid_connect order of k.csv and x.csv).
	K, X []float64
	// ConnectIDs lists every reach of rapid_connect.csv in file order, basin
	// or not: the order of k.csv, x.csv, qinit files and of m3_riv files that
	// have no rivid variable.
	ConnectIDs []int64
	// ConnectPos gives the position in rapid_connect.csv (in ConnectIDs)
	// of each network reach; nil when the network follows rapid_connect.csv
	// order. It places a reach in files of that order without a map.
	ConnectPos []int32
	// Warnings collects non-fatal inconsistencies, each naming file and line:
	// upstream columns of rapid_connect.csv that disagree with the
	// downstream column (the network follows the downstream column).
	Warnings []string
}

// Connect is the parsed content of a rapid_connect.csv file.
type Connect struct {
	IDs   []int64 // reach ids in file order
	Down  []int64 // downstream id per reach as written (0 or -1 = outlet)
	Up    [][]int64
	Lines []int // 1-based line of each reach

	pos map[int64]int32 // position of each id in IDs
}

// position returns the position of reach id in the file.
func (c *Connect) position(id int64) (int, bool) {
	if c.pos == nil {
		c.pos = make(map[int64]int32, len(c.IDs))
		for i, id := range c.IDs {
			c.pos[id] = int32(i)
		}
	}
	i, ok := c.pos[id]
	return int(i), ok
}

// ReadRAPID reads a RAPID configuration folder: rapid_connect.csv,
// riv_bas_id.csv (optional), k.csv and x.csv.
//
// The network holds exactly the reaches listed in riv_bas_id.csv, in that
// order; every one of them must appear in rapid_connect.csv. Reaches of
// rapid_connect.csv outside the basin are dropped, and a basin reach draining
// into a dropped reach (or into 0, -1 or an id absent from the file) is an
// outlet. Without riv_bas_id.csv the network holds all of rapid_connect.csv in
// file order.
//
// k.csv (seconds) and x.csv hold one value per line in rapid_connect.csv
// order and must have exactly one value per rapid_connect.csv line; k must be
// finite and non-negative, x within [0, 0.5].
//
// n_up must equal the number of non-zero upstream ids on its line (RAPID
// pads the upstream columns with zeros): a mismatch is an error. An upstream
// id whose own downstream column names another reach is a warning recorded in
// RAPID.Warnings, because the network is built from the downstream column; so
// is a downstream id other than 0 and -1 that is not in the file (a typo
// there would otherwise split the basin silently).
func ReadRAPID(dir string) (*RAPID, error) {
	cpath := filepath.Join(dir, RAPIDConnectFile)
	c, err := readConnectFile(cpath)
	if err != nil {
		return nil, err
	}
	r := &RAPID{ConnectIDs: c.IDs}
	r.Warnings = c.check(cpath)

	// Basin order.
	bpath := filepath.Join(dir, RAPIDBasinFile)
	var basin []int64
	var basinLines []int
	// where[j]: position in rapid_connect.csv of basin reach j.
	var where []int32
	b, err := os.ReadFile(bpath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		basin = c.IDs
		basinLines = c.Lines
		// Output columns then follow rapid_connect.csv: say so, as a missing
		// basin file is more often a mistake than a choice.
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s: not found: routing every reach of %s, in its order", bpath, RAPIDConnectFile))
	case err != nil:
		return nil, err
	default:
		// Duplicates are found through rapid_connect.csv positions rather
		// than another map of every id.
		basin, basinLines, err = parseBasinIDs(b, bpath, false)
		if err != nil {
			return nil, err
		}
		where = make([]int32, len(basin))
		firstLine := make([]int32, len(c.IDs)) // basin line of each connect reach, 0 = none yet
		for j, id := range basin {
			i := j
			if j >= len(c.IDs) || c.IDs[j] != id { // same order as the connect file: no lookup
				var ok bool
				if i, ok = c.position(id); !ok {
					return nil, perr(bpath, basinLines[j], 0, "reach %d is not in %s", id, RAPIDConnectFile)
				}
			}
			if l := firstLine[i]; l > 0 {
				return nil, perr(bpath, basinLines[j], 1, "duplicate reach id %d (first on line %d)", id, l)
			}
			firstLine[i] = int32(basinLines[j])
			where[j] = int32(i)
		}
	}

	ks, err := readValuesFile(filepath.Join(dir, RAPIDKFile), c, func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return "Muskingum k must be a finite number of seconds >= 0"
		}
		return ""
	})
	if err != nil {
		return nil, err
	}
	xs, err := readValuesFile(filepath.Join(dir, RAPIDXFile), c, func(v float64) string {
		if !(v >= 0 && v <= 0.5) {
			return "Muskingum x must lie in [0, 0.5]"
		}
		return ""
	})
	if err != nil {
		return nil, err
	}

	// Downstream positions in the basin, through rapid_connect.csv
	// positions: a reach draining out of the basin, into 0, -1 or an id
	// absent from the file is an outlet.
	inBasin := make([]int32, len(c.IDs)) // basin index + 1 of each connect reach, 0 = not in the basin
	for j := range basin {
		i := j
		if where != nil {
			i = int(where[j])
		}
		inBasin[i] = int32(j + 1)
	}
	down := make([]int, len(basin))
	r.K = make([]float64, len(basin))
	r.X = make([]float64, len(basin))
	for j := range basin {
		i := j
		if where != nil {
			i = int(where[j])
		}
		down[j] = -1
		if d := c.Down[i]; d > 0 {
			if k, ok := c.position(d); ok {
				down[j] = int(inBasin[k]) - 1
			}
		}
		r.K[j] = ks[i]
		r.X[j] = xs[i]
	}
	net, err := diffroute.NewNetworkIndex(basin, down)
	if err != nil {
		var ne *diffroute.NetworkError
		if errors.As(err, &ne) && ne.Index >= 0 && ne.Index < len(basin) {
			id := basin[ne.Index]
			i, _ := c.position(id)
			return nil, perr(cpath, c.Lines[i], 0, "reach %d: %s", id, ne.Msg)
		}
		return nil, fmt.Errorf("%s: %w", cpath, err)
	}
	r.Network = net
	if where != nil {
		identity := len(where) == len(c.IDs)
		for j, i := range where {
			if int(i) != j {
				identity = false
				break
			}
		}
		if !identity {
			r.ConnectPos = where
		}
	}
	return r, nil
}

// Muskingum returns the Muskingum parameters of the network's reaches for a
// runoff step: "k" = k / step (in units of the step) and "x".
func (r *RAPID) Muskingum(step time.Duration) (diffroute.Params, error) {
	if step <= 0 {
		return nil, fmt.Errorf("data: runoff step must be positive, got %v", step)
	}
	s := step.Seconds()
	k := make([]float64, len(r.K))
	for i, v := range r.K {
		k[i] = v / s
	}
	return diffroute.Params{"k": k, "x": append([]float64(nil), r.X...)}, nil
}

func readConnectFile(path string) (*Connect, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConnect(b, path)
}

// ParseConnect parses rapid_connect.csv content: per line
// id, downstream_id, n_up, up_1, …, up_m, no header, upstream columns padded
// with zeros, all lines with the same number of columns (a single trailing
// comma on a line is ignored). name labels errors.
// Beyond syntax it checks duplicate ids, non-positive ids, self-loops and
// that n_up matches the non-zero upstream ids; it does not check cycles
// (ReadRAPID does, on the basin's network).
func ParseConnect(r io.Reader, name string) (*Connect, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, perr(name, 0, 0, "%v", err)
	}
	return parseConnect(b, name)
}

func parseConnect(b []byte, name string) (*Connect, error) {
	est := bytes.Count(b, []byte{'\n'}) + 1
	c := &Connect{
		IDs:   make([]int64, 0, est),
		Down:  make([]int64, 0, est),
		Lines: make([]int, 0, est),
		pos:   make(map[int64]int32, est),
	}
	var ups []int64   // every line's upstream ids, one after the other
	var upEnd []int32 // end of each line's ids in ups
	var vals []int64  // one line's fields
	ncol := -1
	err := eachLine(b, name, func(n int, ln []byte) error {
		rec, nf := record(ln)
		if nf < 3 {
			return perr(name, n, 0, "%d columns, want at least 3 (id, downstream_id, n_up, upstream ids...)", nf)
		}
		if ncol < 0 {
			ncol = nf
		} else if nf != ncol {
			return perr(name, n, 0, "%d columns, earlier lines have %d", nf, ncol)
		}
		vals = vals[:0]
		for j := 0; j < nf; j++ {
			var fld []byte
			fld, rec = nextField(rec)
			v, err := parseIDBytes(fld)
			if err != nil {
				return perr(name, n, j+1, "%v", err)
			}
			vals = append(vals, v)
		}
		id, down, nup := vals[0], vals[1], vals[2]
		if id <= 0 {
			return perr(name, n, 1, "reach id %d must be positive", id)
		}
		if first, dup := c.pos[id]; dup {
			return perr(name, n, 1, "duplicate reach id %d (first on line %d)", id, c.Lines[first])
		}
		c.pos[id] = int32(len(c.IDs))
		if down == id {
			return perr(name, n, 2, "reach %d drains into itself", id)
		}
		up := vals[3:]
		if nup < 0 || nup > int64(len(up)) {
			return perr(name, n, 3, "n_up = %d but the line has %d upstream columns", nup, len(up))
		}
		nonzero := 0
		for j, u := range up {
			if u == 0 {
				continue
			}
			nonzero++
			if int64(j) >= nup {
				return perr(name, n, 4+j, "upstream id %d beyond n_up = %d (padding must be 0)", u, nup)
			}
			if u < 0 {
				return perr(name, n, 4+j, "upstream id %d must be positive", u)
			}
		}
		if int64(nonzero) != nup {
			return perr(name, n, 3, "n_up = %d but %d upstream ids are listed", nup, nonzero)
		}
		c.IDs = append(c.IDs, id)
		c.Down = append(c.Down, down)
		c.Lines = append(c.Lines, n)
		ups = append(ups, up[:nup]...)
		upEnd = append(upEnd, int32(len(ups)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(c.IDs) == 0 {
		return nil, perr(name, 0, 0, "no reaches")
	}
	c.Up = make([][]int64, len(c.IDs))
	start := int32(0)
	for i, e := range upEnd {
		c.Up[i] = ups[start:e:e]
		start = e
	}
	return c, nil
}

// check compares the upstream columns with the downstream column and returns
// warnings.
func (c *Connect) check(name string) []string {
	var w []string
	// A downstream id that is neither an outlet mark nor in the file makes
	// its reach an outlet: right for an extract whose outlets drain into
	// another region, a typo otherwise. The first few are named.
	var away []int
	for i, d := range c.Down {
		if _, ok := c.position(d); !ok && d != 0 && d != -1 {
			away = append(away, i)
		}
	}
	for k, i := range away {
		if k == 3 {
			w = append(w, fmt.Sprintf("%s: %d more reaches drain into ids not in the file (also routed as outlets)", name, len(away)-3))
			break
		}
		w = append(w, fmt.Sprintf("%s:%d: reach %d drains into %d, which is not in the file: it is routed as an outlet", name, c.Lines[i], c.IDs[i], c.Down[i]))
	}
	for i, ups := range c.Up {
		for _, u := range ups {
			j, ok := c.position(u)
			switch {
			case !ok:
				w = append(w, fmt.Sprintf("%s:%d: upstream reach %d of reach %d is not in the file", name, c.Lines[i], u, c.IDs[i]))
			case c.Down[j] != c.IDs[i]:
				w = append(w, fmt.Sprintf("%s:%d: reach %d lists %d upstream, but line %d says %d drains into %d", name, c.Lines[i], c.IDs[i], u, c.Lines[j], u, c.Down[j]))
			}
		}
	}
	return w
}

// ParseBasinIDs parses riv_bas_id.csv content: one reach id per line (a
// trailing comma after it is ignored). It returns the ids and their 1-based
// lines; duplicates and non-positive ids are errors.
func ParseBasinIDs(r io.Reader, name string) (ids []int64, lines []int, err error) {
	b, err := readAll(r)
	if err != nil {
		return nil, nil, perr(name, 0, 0, "%v", err)
	}
	return parseBasinIDs(b, name, true)
}

// parseBasinIDs is ParseBasinIDs on bytes; dups says whether to look for
// duplicates (callers that map the ids anyway find them cheaper).
func parseBasinIDs(b []byte, name string, dups bool) (ids []int64, lines []int, err error) {
	est := bytes.Count(b, []byte{'\n'}) + 1
	ids, lines = make([]int64, 0, est), make([]int, 0, est)
	var seen map[int64]int
	if dups {
		seen = make(map[int64]int, est)
	}
	err = eachLine(b, name, func(n int, ln []byte) error {
		rec, nf := record(ln)
		if nf != 1 {
			return perr(name, n, 0, "%d columns, want 1 reach id per line", nf)
		}
		id, err := parseIDBytes(bytes.TrimSpace(rec))
		if err != nil {
			return perr(name, n, 1, "%v", err)
		}
		if id <= 0 {
			return perr(name, n, 1, "reach id %d must be positive", id)
		}
		if dups {
			if first, dup := seen[id]; dup {
				return perr(name, n, 1, "duplicate reach id %d (first on line %d)", id, first)
			}
			seen[id] = n
		}
		ids = append(ids, id)
		lines = append(lines, n)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return nil, nil, perr(name, 0, 0, "no reaches")
	}
	return ids, lines, nil
}

// ParseValues parses a one-value-per-line file (k.csv, x.csv, qinit). A
// trailing comma after the value is ignored.
func ParseValues(r io.Reader, name string) (vals []float64, lines []int, err error) {
	b, err := readAll(r)
	if err != nil {
		return nil, nil, perr(name, 0, 0, "%v", err)
	}
	return parseValues(b, name)
}

func parseValues(b []byte, name string) (vals []float64, lines []int, err error) {
	est := bytes.Count(b, []byte{'\n'}) + 1
	vals, lines = make([]float64, 0, est), make([]int, 0, est)
	err = eachLine(b, name, func(n int, ln []byte) error {
		rec, nf := record(ln)
		if nf != 1 {
			return perr(name, n, 0, "%d columns, want 1 value per line", nf)
		}
		v, err := parseFloatBytes(bytes.TrimSpace(rec))
		if err != nil {
			return perr(name, n, 1, "%v", err)
		}
		vals = append(vals, v)
		lines = append(lines, n)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return vals, lines, nil
}

// readValuesFile reads k.csv or x.csv, checks its length against
// rapid_connect.csv and each value with bad (returning a message or "").
func readValuesFile(path string, c *Connect, bad func(float64) string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	vals, lines, err := parseValues(b, path)
	if err != nil {
		return nil, err
	}
	n := len(c.IDs)
	if len(vals) > n {
		return nil, perr(path, lines[n], 0, "%d values but %s has %d reaches", len(vals), RAPIDConnectFile, n)
	}
	if len(vals) < n {
		next := 1
		if len(lines) > 0 {
			next = lines[len(lines)-1] + 1
		}
		return nil, perr(path, next, 0, "%d values but %s has %d reaches (missing the value of reach %d, line %d there)",
			len(vals), RAPIDConnectFile, n, c.IDs[len(vals)], c.Lines[len(vals)])
	}
	for i, v := range vals {
		if msg := bad(v); msg != "" {
			return nil, perr(path, lines[i], 1, "%s, got %v (reach %d)", msg, v, c.IDs[i])
		}
	}
	return vals, nil
}
