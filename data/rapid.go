package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/internal/ids"
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
	IDs  []int64 // reach ids in file order
	Down []int64 // downstream id per reach as written (0 or -1 = outlet)

	up    []int64 // every reach's upstream ids, one after the other
	upEnd []int32 // end of reach i's upstream ids in up
	index *ids.Index
}

// Up returns the upstream ids listed for reach i (n_up of them).
func (c *Connect) Up(i int) []int64 {
	start := int32(0)
	if i > 0 {
		start = c.upEnd[i-1]
	}
	return c.up[start:c.upEnd[i]:c.upEnd[i]]
}

// Line returns the 1-based line of reach i: data lines are never
// separated by blank lines, so it is i + 1.
func (c *Connect) Line(i int) int { return i + 1 }

// position returns the position of reach id in the file.
func (c *Connect) position(id int64) (int, bool) {
	i := c.find(id)
	return int(i), i >= 0
}

// find returns the position of reach id in the file, -1 if absent.
func (c *Connect) find(id int64) int32 {
	if c.index == nil {
		c.index = ids.NewIndex(c.IDs)
	}
	return c.index.Find(id)
}

// downPositions returns the position in the file of each reach's
// downstream reach, -1 for an outlet mark or an id not in the file.
func (c *Connect) downPositions() []int32 {
	c.find(0) // the index, before the parallel lookups
	dp := make([]int32, len(c.IDs))
	c.index.FindAll(dp, c.Down)
	return dp
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
	downPos := c.downPositions()
	r.Warnings = c.check(cpath, downPos)

	// Basin order.
	bpath := filepath.Join(dir, RAPIDBasinFile)
	var basin []int64
	// where[j]: position in rapid_connect.csv of basin reach j.
	var where []int32
	b, release, err := readText(bpath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		basin = c.IDs
		// Output columns then follow rapid_connect.csv: say so, as a missing
		// basin file is more often a mistake than a choice.
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s: not found: routing every reach of %s, in its order", bpath, RAPIDConnectFile))
	case err != nil:
		return nil, err
	default:
		basin, err = parseBasinIDs(b, bpath, false)
		release()
		if err != nil {
			return nil, err
		}
		if where, err = basinPositions(c, basin, bpath); err != nil {
			return nil, err
		}
	}

	// Downstream positions in the basin, through rapid_connect.csv
	// positions: a reach draining out of the basin, into 0, -1 or an id
	// absent from the file is an outlet.
	var inBasin []int32 // basin index of each connect reach, -1 = not in the basin
	if where != nil {
		inBasin = make([]int32, len(c.IDs))
		for i := range inBasin {
			inBasin[i] = -1
		}
		for j, i := range where {
			inBasin[i] = int32(j)
		}
	}
	down := make([]int, len(basin))
	ids.Parallel(len(basin), 1<<14, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			i := j
			if where != nil {
				i = int(where[j])
			}
			d := int(downPos[i])
			if d >= 0 && inBasin != nil {
				d = int(inBasin[d])
			}
			down[j] = d
		}
	})
	inBasin, downPos = nil, nil
	// The network is built (one traversal, one core) while k.csv and x.csv
	// are parsed; their errors still come first.
	type built struct {
		net *diffroute.Network
		err error
	}
	netc := make(chan built, 1)
	go func() {
		net, err := diffroute.NewNetworkIndex(basin, down)
		netc <- built{net, err}
	}()

	ks, err := readValuesFile(filepath.Join(dir, RAPIDKFile), c, func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return "Muskingum k must be a finite number of seconds >= 0"
		}
		return ""
	})
	if err != nil {
		<-netc
		return nil, err
	}
	xs, err := readValuesFile(filepath.Join(dir, RAPIDXFile), c, func(v float64) string {
		if !(v >= 0 && v <= 0.5) {
			return "Muskingum x must lie in [0, 0.5]"
		}
		return ""
	})
	if err != nil {
		<-netc
		return nil, err
	}
	r.K = make([]float64, len(basin))
	r.X = make([]float64, len(basin))
	ids.Parallel(len(basin), 1<<14, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			i := j
			if where != nil {
				i = int(where[j])
			}
			r.K[j] = ks[i]
			r.X[j] = xs[i]
		}
	})
	ks, xs = nil, nil
	nb := <-netc
	net, err := nb.net, nb.err
	if err != nil {
		var ne *diffroute.NetworkError
		if errors.As(err, &ne) && ne.Index >= 0 && ne.Index < len(basin) {
			id := basin[ne.Index]
			i, _ := c.position(id)
			return nil, perr(cpath, c.Line(i), 0, "reach %d: %s", id, ne.Msg)
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

// basinPositions returns the position in rapid_connect.csv of each basin
// reach, refusing (in basin order) a reach not there or listed twice.
func basinPositions(c *Connect, basin []int64, bpath string) ([]int32, error) {
	where := make([]int32, len(basin))
	c.find(0) // the index, before the parallel lookups
	ids.Parallel(len(basin), 1<<14, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			if id := basin[j]; j < len(c.IDs) && c.IDs[j] == id { // same order as the connect file: no lookup
				where[j] = int32(j)
			} else {
				where[j] = c.find(id)
			}
		}
	})
	seen := make([]uint64, (len(c.IDs)+63)/64)
	for j, i := range where {
		if i < 0 {
			return nil, perr(bpath, j+1, 0, "reach %d is not in %s", basin[j], RAPIDConnectFile)
		}
		if seen[i/64]&(1<<(i%64)) != 0 {
			first := slices.Index(where, i)
			return nil, perr(bpath, j+1, 1, "duplicate reach id %d (first on line %d)", basin[j], first+1)
		}
		seen[i/64] |= 1 << (i % 64)
	}
	return where, nil
}

// readText returns a text file's bytes, mapped into memory when it can be,
// and the function that releases them (the bytes must not be used after).
func readText(path string) ([]byte, func(), error) {
	if b, unmap, err := mapFile(path); err == nil {
		return b, func() { unmap() }, nil
	} else if errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	b, err := os.ReadFile(path)
	return b, func() {}, err
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
	b, release, err := readText(path)
	if err != nil {
		return nil, err
	}
	defer release()
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
	if c, ok := parseConnectFast(b); ok {
		return c, nil
	}
	return parseConnectSeq(b, name)
}

// parseConnectSeq parses line by line: the reference, and the source of
// the first error of a bad file.
func parseConnectSeq(b []byte, name string) (*Connect, error) {
	est := bytes.Count(b, []byte{'\n'}) + 1
	c := &Connect{
		IDs:  make([]int64, 0, est),
		Down: make([]int64, 0, est),
	}
	pos := make(map[int64]int32, est)
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
		if first, dup := pos[id]; dup {
			return perr(name, n, 1, "duplicate reach id %d (first on line %d)", id, c.Line(int(first)))
		}
		pos[id] = int32(len(c.IDs))
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
	c.up, c.upEnd = ups, upEnd
	return c, nil
}

// check compares the upstream columns with the downstream column (downPos:
// the position of each reach's downstream reach, -1 if none) and returns
// warnings.
func (c *Connect) check(name string, downPos []int32) []string {
	var w []string
	// A downstream id that is neither an outlet mark nor in the file makes
	// its reach an outlet: right for an extract whose outlets drain into
	// another region, a typo otherwise. The first few are named.
	var away []int
	for i, d := range c.Down {
		if downPos[i] < 0 && d != 0 && d != -1 {
			away = append(away, i)
		}
	}
	for k, i := range away {
		if k == 3 {
			w = append(w, fmt.Sprintf("%s: %d more reaches drain into ids not in the file (also routed as outlets)", name, len(away)-3))
			break
		}
		w = append(w, fmt.Sprintf("%s:%d: reach %d drains into %d, which is not in the file: it is routed as an outlet", name, c.Line(i), c.IDs[i], c.Down[i]))
	}
	// The reaches that drain into each reach (by the downstream column),
	// by position: an upstream id listed on a line is right when it is
	// among them, which needs no lookup of the id.
	n := len(c.IDs)
	start := make([]int32, n+1)
	for _, d := range downPos {
		if d >= 0 {
			start[d+1]++
		}
	}
	for i := 0; i < n; i++ {
		start[i+1] += start[i]
	}
	from := make([]int32, start[n])
	fill := slices.Clone(start[:n])
	for j, d := range downPos {
		if d >= 0 {
			from[fill[d]] = int32(j)
			fill[d]++
		}
	}
	fill = nil
	wk := make([][]string, (n+1<<16-1)>>16)
	ids.Parallel(len(wk), 1, func(a, b int) {
		for k := a; k < b; k++ {
			for i := k << 16; i < min(n, (k+1)<<16); i++ {
			next:
				for _, u := range c.Up(i) {
					for _, j := range from[start[i]:start[i+1]] {
						if c.IDs[j] == u {
							continue next
						}
					}
					switch j := c.find(u); {
					case j < 0:
						wk[k] = append(wk[k], fmt.Sprintf("%s:%d: upstream reach %d of reach %d is not in the file", name, c.Line(i), u, c.IDs[i]))
					default:
						wk[k] = append(wk[k], fmt.Sprintf("%s:%d: reach %d lists %d upstream, but line %d says %d drains into %d", name, c.Line(i), c.IDs[i], u, c.Line(int(j)), u, c.Down[j]))
					}
				}
			}
		}
	})
	for _, l := range wk {
		w = append(w, l...)
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
	return parseBasinIDsSeq(b, name, true)
}

// parseBasinIDs is ParseBasinIDs on bytes; dups says whether to look for
// duplicates (callers that map the ids anyway find them cheaper).
func parseBasinIDs(b []byte, name string, dups bool) ([]int64, error) {
	if !dups {
		if ids, ok := parseBasinFast(b); ok {
			return ids, nil
		}
	}
	ids, _, err := parseBasinIDsSeq(b, name, dups)
	return ids, err
}

func parseBasinIDsSeq(b []byte, name string, dups bool) (ids []int64, lines []int, err error) {
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
	if vals, ok := parseValuesFast(b); ok {
		lines = make([]int, len(vals))
		for i := range lines {
			lines[i] = i + 1
		}
		return vals, lines, nil
	}
	return parseValuesSeq(b, name)
}

func parseValuesSeq(b []byte, name string) (vals []float64, lines []int, err error) {
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
	b, release, err := readText(path)
	if err != nil {
		return nil, err
	}
	vals, ok := parseValuesFast(b)
	if !ok {
		vals, _, err = parseValuesSeq(b, path)
	}
	release()
	if err != nil {
		return nil, err
	}
	// Data lines follow each other from line 1: value i is on line i+1.
	n := len(c.IDs)
	if len(vals) > n {
		return nil, perr(path, n+1, 0, "%d values but %s has %d reaches", len(vals), RAPIDConnectFile, n)
	}
	if len(vals) < n {
		return nil, perr(path, len(vals)+1, 0, "%d values but %s has %d reaches (missing the value of reach %d, line %d there)",
			len(vals), RAPIDConnectFile, n, c.IDs[len(vals)], c.Line(len(vals)))
	}
	for i, v := range vals {
		if msg := bad(v); msg != "" {
			return nil, perr(path, i+1, 1, "%s, got %v (reach %d)", msg, v, c.IDs[i])
		}
	}
	return vals, nil
}
