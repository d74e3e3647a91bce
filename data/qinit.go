package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ReadQinit reads an initial-discharge file (m3/s) and returns one value per
// reach of r.Network, in network order.
//
// Two layouts are accepted:
//   - RAPID's: one value per line, no header, one line per reach of
//     rapid_connect.csv in that order (as RAPID and RAPIDpy write it);
//   - a CSV with a header naming an id column and a value column
//     (e.g. "rivid,qinit"), rows in any order; every network reach must
//     appear, extra reaches are ignored.
//
// A netCDF file (.nc) is read as RAPID's Qfinal: the last time step of its
// discharge variable (Qout), aligned by rivid.
//
// A single trailing comma on a line is ignored. Values must be finite
// numbers; errors name the file and line.
func ReadQinit(path string, r *RAPID) ([]float64, error) {
	if strings.EqualFold(filepath.Ext(path), ".nc") {
		return readQfinalNC(path, r)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseQinit(bytes.NewReader(b), path, r)
}

// ParseQinit is ReadQinit on a reader; name labels errors.
func ParseQinit(rd io.Reader, name string, r *RAPID) ([]float64, error) {
	lines, err := readLines(rd, name)
	if err != nil {
		return nil, err
	}
	if r == nil || r.Network == nil {
		return nil, fmt.Errorf("data: ParseQinit needs a RAPID configuration")
	}
	ids := r.Network.IDs()
	out := make([]float64, len(ids))
	if len(lines) > 0 && hasHeader(lines[0].text) {
		hdr := splitRecord(lines[0].text)
		if len(hdr) != 2 {
			return nil, perr(name, lines[0].n, 0, "header has %d columns, want 2 (id, value)", len(hdr))
		}
		got := make(map[int64]float64, len(lines))
		seen := make(map[int64]int, len(lines))
		for _, ln := range lines[1:] {
			f := splitRecord(ln.text)
			if len(f) != 2 {
				return nil, perr(name, ln.n, 0, "%d columns, want 2", len(f))
			}
			id, err := parseID(f[0])
			if err != nil {
				return nil, perr(name, ln.n, 1, "%v", err)
			}
			v, err := parseDischarge(f[1])
			if err != nil {
				return nil, perr(name, ln.n, 2, "%v", err)
			}
			if first, dup := seen[id]; dup {
				return nil, perr(name, ln.n, 1, "duplicate reach id %d (first on line %d)", id, first)
			}
			seen[id] = ln.n
			got[id] = v
		}
		for i, id := range ids {
			v, ok := got[id]
			if !ok {
				return nil, perr(name, 0, 0, "no initial discharge for reach %d", id)
			}
			out[i] = v
		}
		return out, nil
	}
	vals := make([]float64, 0, len(lines))
	for _, ln := range lines {
		f := splitRecord(ln.text)
		if len(f) != 1 {
			return nil, perr(name, ln.n, 0, "%d columns, want 1 value per line (or a header id,value)", len(f))
		}
		v, err := parseDischarge(f[0])
		if err != nil {
			return nil, perr(name, ln.n, 1, "%v", err)
		}
		vals = append(vals, v)
	}
	if len(vals) != len(r.ConnectIDs) {
		line := 0
		if len(lines) > len(r.ConnectIDs) {
			line = lines[len(r.ConnectIDs)].n
		}
		return nil, perr(name, line, 0, "%d values but %s has %d reaches", len(vals), RAPIDConnectFile, len(r.ConnectIDs))
	}
	pos := make(map[int64]int, len(r.ConnectIDs))
	for i, id := range r.ConnectIDs {
		pos[id] = i
	}
	for i, id := range ids {
		j, ok := pos[id]
		if !ok {
			return nil, fmt.Errorf("%s: reach %d is not in the rapid_connect order", name, id)
		}
		out[i] = vals[j]
	}
	return out, nil
}

// parseDischarge parses an initial discharge: a finite number (NaN or Inf
// would poison every reach downstream).
func parseDischarge(s string) (float64, error) {
	v, err := parseFloat(s)
	if err == nil && (math.IsNaN(v) || math.IsInf(v, 0)) {
		err = fmt.Errorf("initial discharge %q is not finite", s)
	}
	return v, err
}

// hasHeader reports whether a first line is a header: its first field is not
// a number.
func hasHeader(s string) bool {
	f := splitRecord(s)
	if _, err := strconv.ParseFloat(f[0], 64); err == nil || errors.Is(err, strconv.ErrRange) {
		return false // a number, if out of range
	}
	return strings.TrimSpace(f[0]) != ""
}

// readQfinalNC reads the last step of a Qout-like file as initial discharge.
func readQfinalNC(path string, r *RAPID) ([]float64, error) {
	if r == nil || r.Network == nil {
		return nil, fmt.Errorf("data: ReadQinit needs a RAPID configuration")
	}
	head, err := ReadRunoffNC(path, &NCOptions{IDs: r.ConnectIDs, TimeCount: -1})
	if err != nil {
		return nil, err
	}
	if len(head.Times) == 0 {
		return nil, fmt.Errorf("%s: no time steps", path)
	}
	x, err := ReadRunoffNC(path, &NCOptions{IDs: r.ConnectIDs, TimeStart: len(head.Times) - 1, TimeCount: 1})
	if err != nil {
		return nil, err
	}
	row := make(map[int64]int, x.N)
	for j, id := range x.IDs {
		row[id] = j
	}
	out := make([]float64, r.Network.Len())
	for i, id := range r.Network.IDs() {
		j, ok := row[id]
		if !ok {
			return nil, fmt.Errorf("%s: no final discharge for reach %d", path, id)
		}
		v := float64(x.At(0, j, 0))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%s: final discharge of reach %d is %v", path, id, v)
		}
		out[i] = v
	}
	return out, nil
}
