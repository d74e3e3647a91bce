package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// The byte parsers must accept, reject and report exactly like the
// line-and-string parsers they replace, kept here as the reference.

// refConnect is what the reference parser returns.
type refConnect struct {
	IDs, Down []int64
	Up        [][]int64
	Lines     []int
}

func parseConnectLines(r io.Reader, name string) (*refConnect, error) {
	lines, err := readLines(r, name)
	if err != nil {
		return nil, err
	}
	c := &refConnect{
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
	f.Add([]byte("1,2,0\n3,4,0\n5,6,0\n7,8,0\n9,10,0\n11,1,0\n"))
	f.Add([]byte("1,2,0\n3,4,0\n5,6,0\n7,8,0\n9,10,0\n11,1,0,\n"))
	f.Add([]byte("1,2,0\n3,4,0\n5,6,0\n\n7,8,0\n9,10,0\n11,1,0\n\n\n"))
	f.Add([]byte("1,2,0\n3,4,0\n5,6,0\n7,8,0\n9,10,0\n11,1,0\n3,12,0\n"))
	f.Add([]byte("10,30,0,0\n20,30,0,0\n30,-1,2,10,20\n40,30,1,77\n50,99,0,0\n60,40,0,0\n"))
	// Chunk boundaries (every 8 bytes and more under withChunks) next to
	// CR LF pairs, a byte-order mark, a last line without its newline and
	// trailing blank lines.
	f.Add([]byte("\xef\xbb\xbf1,2,0\r\n2,3,0\r\n3,0,0\r\n4,3,0\r\n5,4,0"))
	f.Add([]byte("1,2,0\r\n2,3,0\r\n3,0,0\r\n4,3,0\r\n5,4,0\r\n\r\n \r\n"))
	f.Add([]byte("1,2,0\r\n2,3,0\r\n\r\n3,0,0\r\n4,3,0\r\n5,4,0\r\n"))
	f.Add([]byte("1,2,0\r2,3,0\r3,0,0\r4,3,0\r5,4,0\r"))
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := parseConnectLines(bytes.NewReader(b), "c.csv")
		withChunks(t, func() {
			got, gerr := ParseConnect(bytes.NewReader(b), "c.csv")
			if !sameError(gerr, werr) {
				t.Fatalf("error %v, reference %v", gerr, werr)
			}
			if werr != nil {
				return
			}
			if !sameConnect(got, want) {
				t.Fatalf("parsed %+v, reference %+v", got, want)
			}
			if w, g := checkConnectRef(want, "c.csv"), got.check("c.csv", got.downPositions()); !slices.Equal(w, g) {
				t.Fatalf("warnings %q, reference %q", g, w)
			}
		})
	})
}

func FuzzParseValuesMatchesLines(f *testing.F) {
	seedFile(f, "k.csv")
	for _, s := range []string{"1.5\n2\n", "1,\n 2 ,\r\n", "NaN\nInf\n-0\n", "1e400\n", "abc\n", "1,2\n", "\n\n1\n", "1\n\n2\n", "0x1p-2\n", "1_0\n"} {
		f.Add([]byte(s))
	}
	f.Add([]byte("1\n2\n3\n4.5\n5\n6\n7\n8\n"))
	f.Add([]byte("1\n2\n3\n4.5\n\n6\n7\n8\n\n"))
	f.Add([]byte("\xef\xbb\xbf1\r\n2\r\n3\r\nNaN\r\n-Inf\r\n6\r\n7\r\n8"))
	f.Add([]byte("1\r\n2\r\n3\r\n4.5\r\n5\r\n6\r\n7\r\n8\r\n\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		wv, wl, werr := parseValuesLines(bytes.NewReader(b), "k.csv")
		withChunks(t, func() {
			gv, gl, gerr := ParseValues(bytes.NewReader(b), "k.csv")
			if !sameError(gerr, werr) {
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
	})
}

func FuzzParseBasinMatchesLines(f *testing.F) {
	seedFile(f, "riv_bas_id.csv")
	for _, s := range []string{"1\n2\n3\n4\n5\n6\n7\n8\n", "1\n2\n3\n4\n\n6\n7\n8\n\n", "1,\n2 ,\r\n3\n4\n5\n6\n-7\n8\n", "\xef\xbb\xbf9\n10\n11\n12\n13\n14\n",
		"\xef\xbb\xbf9\r\n10\r\n11\r\n12\r\n13\r\n14", "9\r\n10\r\n11\r\n12\r\n\r\n13\r\n14\r\n", "3000000001\r\n3000000002\r\n2147483648\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, _, werr := parseBasinIDsSeq(b, "b.csv", false)
		withChunks(t, func() {
			got, gerr := parseBasinIDs(b, "b.csv", false)
			if !sameError(gerr, werr) {
				t.Fatalf("error %v, reference %v", gerr, werr)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("parsed %v, reference %v", got, want)
			}
		})
	})
}

var _ = io.EOF

// sameError says whether a byte parser's error is the reference's. The
// reference reads every line before it parses any, so it reports a blank
// line inside the data before a bad line above it; the byte parsers, which
// stop at the first bad line, report that line instead.
func sameError(got, want error) bool {
	if fmt.Sprint(got) == fmt.Sprint(want) {
		return true
	}
	var g, w *ParseError
	return errors.As(got, &g) && errors.As(want, &w) && w.Msg == "blank line inside the data" && g.Line > 0 && g.Line < w.Line
}

// withChunks runs fn as files are parsed normally, then with every file
// of more than a few bytes cut into chunks.
func withChunks(t *testing.T, fn func()) {
	fn()
	defer func(m int) { parChunkMin = m }(parChunkMin)
	parChunkMin = 8
	fn()
}

// checkConnectRef is Connect.check as written with a map of every id: the
// reference for the warnings.
func checkConnectRef(c *refConnect, name string) []string {
	pos := map[int64]int{}
	for i, id := range c.IDs {
		pos[id] = i
	}
	var w, away []string
	for i, d := range c.Down {
		if _, ok := pos[d]; !ok && d != 0 && d != -1 {
			away = append(away, fmt.Sprintf("%s:%d: reach %d drains into %d, which is not in the file: it is routed as an outlet", name, c.Lines[i], c.IDs[i], d))
		}
	}
	if len(away) > 3 {
		away = append(away[:3], fmt.Sprintf("%s: %d more reaches drain into ids not in the file (also routed as outlets)", name, len(away)-3))
	}
	w = append(w, away...)
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

// sameConnect compares a parsed file with the reference's.
func sameConnect(got *Connect, want *refConnect) bool {
	if !slices.Equal(got.IDs, want.IDs) || !slices.Equal(got.Down, want.Down) {
		return false
	}
	for i := range got.IDs {
		if got.Line(i) != want.Lines[i] || !slices.Equal(got.Up(i), want.Up[i]) {
			return false
		}
	}
	return true
}

// TestLongFieldErrorIsShort: a file whose lines end in CR alone reads as
// one line; the error must say where in a line of reasonable length, not
// quote the whole file.
func TestLongFieldErrorIsShort(t *testing.T) {
	var c, v strings.Builder
	for i := 1; i <= 2000; i++ {
		fmt.Fprintf(&c, "%d,%d,0\r", i, i+1)
		fmt.Fprintf(&v, "%d.5\r", i)
	}
	_, err := ParseConnect(strings.NewReader(c.String()), "rapid_connect.csv")
	_, _, verr := ParseValues(strings.NewReader(v.String()), "k.csv")
	for _, e := range []error{err, verr} {
		if e == nil || len(e.Error()) > 160 || strings.Contains(e.Error(), "\n") || !strings.Contains(e.Error(), ".csv:1:") {
			t.Errorf("error %.300q: want one short line naming line 1", e)
		}
	}
}
