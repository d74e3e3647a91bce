package data

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
)

// The byte parsers must accept, reject and report exactly like the
// line-and-string parsers they replace, kept here as the reference.

func parseConnectLines(r io.Reader, name string) (*Connect, error) {
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
func parseValuesLines(r io.Reader, name string) (vals []float64, lines []int, err error) {
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

func FuzzParseConnectMatchesLines(f *testing.F) {
	seedFile(f, "rapid_connect.csv")
	for _, s := range []string{"10,30,0,0,0\n20,30,0,0,0\n30,-1,2,10,20\n", "\xef\xbb\xbf 1,2,1,0 \r\n\r\n", "10,30,0,0,\n20,30,0,0 ,\r\n30,-1,2,10,20\n",
		"10,30,0,,0\n", "10.0,30,0\n", "1,2,0\n\n3,4,0\n", "1,2,0\n1,3,0\n", "5,+6,0,\n", "99999999999999999999,1,0\n", "-0,1,0\n", "1e3,2,0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := parseConnectLines(bytes.NewReader(b), "c.csv")
		got, gerr := ParseConnect(bytes.NewReader(b), "c.csv")
		if fmt.Sprint(werr) != fmt.Sprint(gerr) {
			t.Fatalf("error %v, reference %v", gerr, werr)
		}
		if werr != nil {
			return
		}
		if !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.Down, want.Down) || !slices.Equal(got.Lines, want.Lines) ||
			!slices.EqualFunc(got.Up, want.Up, slices.Equal) {
			t.Fatalf("parsed %+v, reference %+v", got, want)
		}
	})
}

func FuzzParseValuesMatchesLines(f *testing.F) {
	seedFile(f, "k.csv")
	for _, s := range []string{"1.5\n2\n", "1,\n 2 ,\r\n", "NaN\nInf\n-0\n", "1e400\n", "abc\n", "1,2\n", "\n\n1\n", "1\n\n2\n", "0x1p-2\n", "1_0\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		wv, wl, werr := parseValuesLines(bytes.NewReader(b), "k.csv")
		gv, gl, gerr := ParseValues(bytes.NewReader(b), "k.csv")
		if fmt.Sprint(werr) != fmt.Sprint(gerr) {
			t.Fatalf("error %v, reference %v", gerr, werr)
		}
		if werr != nil {
			return
		}
		eq := func(a, b float64) bool { return a == b || a != a && b != b }
		if !slices.EqualFunc(gv, wv, eq) || !slices.Equal(gl, wl) {
			t.Fatalf("parsed %v %v, reference %v %v", gv, gl, wv, wl)
		}
	})
}

var _ = io.EOF
