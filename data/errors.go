package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseError reports a problem at a place in an input file. Line and Column
// are 1-based; zero means unknown or not applicable.
type ParseError struct {
	File   string
	Line   int
	Column int
	Msg    string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("input")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

func perr(file string, line, col int, format string, args ...any) *ParseError {
	return &ParseError{File: file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
}

// textLine is one non-blank line of a text file with its 1-based number.
type textLine struct {
	n    int
	text string
}

// readLines returns the non-blank lines of r, trimmed of spaces and CR, with
// their line numbers. A UTF-8 byte-order mark is dropped. Blank lines at the
// end are ignored; a blank line followed by more data is an error, since in
// positional files it usually means a value went missing.
func readLines(r io.Reader, file string) ([]textLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<30)
	var out []textLine
	n := 0
	blank := 0
	for sc.Scan() {
		n++
		b := sc.Bytes()
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			if blank == 0 {
				blank = n
			}
			continue
		}
		if blank > 0 {
			return nil, perr(file, blank, 0, "blank line inside the data")
		}
		out = append(out, textLine{n, s})
	}
	if err := sc.Err(); err != nil {
		return nil, perr(file, n+1, 0, "%v", err)
	}
	return out, nil
}

// splitFields splits a comma-separated line and trims spaces around fields.
func splitFields(s string) []string {
	f := strings.Split(s, ",")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f
}

// splitRecord splits a line of a RAPID text file (rapid_connect.csv,
// riv_bas_id.csv, k.csv, x.csv, qinit) like splitFields but drops one empty
// trailing field: some tools end every line with a comma
// ("17880258,17880834,0,"). Any other empty field is kept, for the caller
// to reject at its column.
func splitRecord(s string) []string {
	f := splitFields(s)
	if n := len(f); n > 1 && f[n-1] == "" {
		f = f[:n-1]
	}
	return f
}

// parseID parses a reach id: an integer, or a float with an integral value
// (some tools write ids as 17880258.0).
func parseID(s string) (int64, error) {
	if s == "" {
		return 0, errEmptyField
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v != float64(int64(v)) || v > 1<<62 || v < -(1<<62) {
		return 0, fmt.Errorf("%s is not an integer id", quoteField(s))
	}
	return int64(v), nil
}

// quoteField quotes a field for an error message, cut after 40 bytes: a
// file whose lines end in CR alone is one line, which a message would
// otherwise quote whole.
func quoteField(s string) string {
	const keep = 40
	if len(s) <= keep {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(s[:keep]), len(s))
}

// errEmptyField reports an empty field (",," or a line starting with ",").
var errEmptyField = errors.New("empty field")

// parseFloat parses a float64; NaN and Inf pass, callers check ranges.
func parseFloat(s string) (float64, error) {
	if s == "" {
		return 0, errEmptyField
	}
	v, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s is beyond the range of float64", quoteField(s))
	}
	if err != nil {
		return 0, fmt.Errorf("%s is not a number", quoteField(s))
	}
	return v, nil
}
