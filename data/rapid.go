package data

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/diffroute-go/diffroute/diffroute"
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

	pos := make(map[int64]int, len(c.IDs))
	for i, id := range c.IDs {
		pos[id] = i
	}

	// Basin order.
	bpath := filepath.Join(dir, RAPIDBasinFile)
	var basin []int64
	var basinLines []int
	f, err := os.Open(bpath)
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
		basin, basinLines, err = ParseBasinIDs(f, bpath)
		f.Close()
		if err != nil {
			return nil, err
		}
		for j, id := range basin {
			if _, ok := pos[id]; !ok {
				return nil, perr(bpath, basinLines[j], 0, "reach %d is not in %s", id, RAPIDConnectFile)
			}
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

	down := make([]int64, len(basin))
	r.K = make([]float64, len(basin))
	r.X = make([]float64, len(basin))
	for j, id := range basin {
		i := pos[id]
		down[j] = c.Down[i]
		r.K[j] = ks[i]
		r.X[j] = xs[i]
	}
	net, err := diffroute.NewNetwork(basin, down)
	if err != nil {
		var ne *diffroute.NetworkError
		if errors.As(err, &ne) && ne.Index >= 0 && ne.Index < len(basin) {
			id := basin[ne.Index]
			return nil, perr(cpath, c.Lines[pos[id]], 0, "reach %d: %s", id, ne.Msg)
		}
		return nil, fmt.Errorf("%s: %w", cpath, err)
	}
	r.Network = net
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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseConnect(f, path)
}

// ParseConnect parses rapid_connect.csv content: per line
// id, downstream_id, n_up, up_1, …, up_m, no header, upstream columns padded
// with zeros, all lines with the same number of columns (a single trailing
// comma on a line is ignored). name labels errors.
// Beyond syntax it checks duplicate ids, non-positive ids, self-loops and
// that n_up matches the non-zero upstream ids; it does not check cycles
// (ReadRAPID does, on the basin's network).
func ParseConnect(r io.Reader, name string) (*Connect, error) {
	lines, err := readLines(r, name)
	if err != nil {
		return nil, err
	}
	c := &Connect{
		IDs:   make([]int64, 0, len(lines)),
		Down:  make([]int64, 0, len(lines)),
		Up:    make([][]int64, 0, len(lines)),
		Lines: make([]int, 0, len(lines)),
	}
	seen := make(map[int64]int, len(lines))
	ncol := -1
	for _, ln := range lines {
		f := splitRecord(ln.text)
		if len(f) < 3 {
			return nil, perr(name, ln.n, 0, "%d columns, want at least 3 (id, downstream_id, n_up, upstream ids...)", len(f))
		}
		if ncol < 0 {
			ncol = len(f)
		} else if len(f) != ncol {
			return nil, perr(name, ln.n, 0, "%d columns, earlier lines have %d", len(f), ncol)
		}
		vals := make([]int64, len(f))
		for j, s := range f {
			v, err := parseID(s)
			if err != nil {
				return nil, perr(name, ln.n, j+1, "%v", err)
			}
			vals[j] = v
		}
		id, down, nup := vals[0], vals[1], vals[2]
		if id <= 0 {
			return nil, perr(name, ln.n, 1, "reach id %d must be positive", id)
		}
		if first, dup := seen[id]; dup {
			return nil, perr(name, ln.n, 1, "duplicate reach id %d (first on line %d)", id, first)
		}
		seen[id] = ln.n
		if down == id {
			return nil, perr(name, ln.n, 2, "reach %d drains into itself", id)
		}
		ups := vals[3:]
		if nup < 0 || nup > int64(len(ups)) {
			return nil, perr(name, ln.n, 3, "n_up = %d but the line has %d upstream columns", nup, len(ups))
		}
		nonzero := 0
		for j, u := range ups {
			if u == 0 {
				continue
			}
			nonzero++
			if int64(j) >= nup {
				return nil, perr(name, ln.n, 4+j, "upstream id %d beyond n_up = %d (padding must be 0)", u, nup)
			}
			if u < 0 {
				return nil, perr(name, ln.n, 4+j, "upstream id %d must be positive", u)
			}
		}
		if int64(nonzero) != nup {
			return nil, perr(name, ln.n, 3, "n_up = %d but %d upstream ids are listed", nup, nonzero)
		}
		c.IDs = append(c.IDs, id)
		c.Down = append(c.Down, down)
		c.Up = append(c.Up, ups[:nup:nup])
		c.Lines = append(c.Lines, ln.n)
	}
	if len(c.IDs) == 0 {
		return nil, perr(name, 0, 0, "no reaches")
	}
	return c, nil
}

// check compares the upstream columns with the downstream column and returns
// warnings.
func (c *Connect) check(name string) []string {
	pos := make(map[int64]int, len(c.IDs))
	for i, id := range c.IDs {
		pos[id] = i
	}
	var w []string
	// A downstream id that is neither an outlet mark nor in the file makes
	// its reach an outlet: right for an extract whose outlets drain into
	// another region, a typo otherwise. The first few are named.
	var away []int
	for i, d := range c.Down {
		if _, ok := pos[d]; !ok && d != 0 && d != -1 {
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
			j, ok := pos[u]
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
	ls, err := readLines(r, name)
	if err != nil {
		return nil, nil, err
	}
	seen := make(map[int64]int, len(ls))
	for _, ln := range ls {
		f := splitRecord(ln.text)
		if len(f) != 1 {
			return nil, nil, perr(name, ln.n, 0, "%d columns, want 1 reach id per line", len(f))
		}
		id, err := parseID(f[0])
		if err != nil {
			return nil, nil, perr(name, ln.n, 1, "%v", err)
		}
		if id <= 0 {
			return nil, nil, perr(name, ln.n, 1, "reach id %d must be positive", id)
		}
		if first, dup := seen[id]; dup {
			return nil, nil, perr(name, ln.n, 1, "duplicate reach id %d (first on line %d)", id, first)
		}
		seen[id] = ln.n
		ids = append(ids, id)
		lines = append(lines, ln.n)
	}
	if len(ids) == 0 {
		return nil, nil, perr(name, 0, 0, "no reaches")
	}
	return ids, lines, nil
}

// ParseValues parses a one-value-per-line file (k.csv, x.csv, qinit). A
// trailing comma after the value is ignored.
func ParseValues(r io.Reader, name string) (vals []float64, lines []int, err error) {
	ls, err := readLines(r, name)
	if err != nil {
		return nil, nil, err
	}
	for _, ln := range ls {
		f := splitRecord(ln.text)
		if len(f) != 1 {
			return nil, nil, perr(name, ln.n, 0, "%d columns, want 1 value per line", len(f))
		}
		v, err := parseFloat(f[0])
		if err != nil {
			return nil, nil, perr(name, ln.n, 1, "%v", err)
		}
		vals = append(vals, v)
		lines = append(lines, ln.n)
	}
	return vals, lines, nil
}

// readValuesFile reads k.csv or x.csv, checks its length against
// rapid_connect.csv and each value with bad (returning a message or "").
func readValuesFile(path string, c *Connect, bad func(float64) string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vals, lines, err := ParseValues(f, path)
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
