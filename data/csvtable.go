package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/diffroute-go/route/diffroute"
)

// CSVTableReader streams a CSV table: a header "time,<id>,<id>,…" and one row
// per time step, "<time label>,<value>,…". Spaces around fields, CRLF line
// ends and trailing blank lines are tolerated; an empty field or "NaN" is NaN.
type CSVTableReader struct {
	name string
	sc   *bufio.Scanner
	ids  []int64
	line int
	row  []float32
	done bool
	// times maps each row's time (the instant when its label parses as a
	// date, else the label) to its line: a step given twice is an error,
	// or a reader keyed by time would silently keep one of them.
	times map[string]int
}

// NewCSVTableReader reads the header of a CSV table. name labels errors
// (a file name, or "" for none).
func NewCSVTableReader(r io.Reader, name string) (*CSVTableReader, error) {
	c := &CSVTableReader{name: name, sc: bufio.NewScanner(r)}
	c.sc.Buffer(make([]byte, 64*1024), 1<<30)
	text, ok, err := c.next()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, perr(name, c.line, 0, "empty table: no header")
	}
	f := splitFields(text)
	if len(f) < 2 {
		return nil, perr(name, c.line, 0, "header has %d columns, want time and at least one reach id", len(f))
	}
	seen := make(map[int64]int, len(f)-1)
	c.ids = make([]int64, len(f)-1)
	for j, s := range f[1:] {
		id, err := parseID(s)
		if err != nil {
			return nil, perr(name, c.line, j+2, "header: %v", err)
		}
		if first, dup := seen[id]; dup {
			return nil, perr(name, c.line, j+2, "header: duplicate reach id %d (first in column %d)", id, first)
		}
		seen[id] = j + 2
		c.ids[j] = id
	}
	c.row = make([]float32, len(c.ids))
	c.times = map[string]int{}
	return c, nil
}

// next returns the next non-blank line. A blank line followed by data is an
// error.
func (c *CSVTableReader) next() (string, bool, error) {
	blank := 0
	for c.sc.Scan() {
		c.line++
		b := c.sc.Bytes()
		if c.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			if blank == 0 {
				blank = c.line
			}
			continue
		}
		if blank > 0 {
			return "", false, perr(c.name, blank, 0, "blank line inside the table")
		}
		return s, true, nil
	}
	if err := c.sc.Err(); err != nil {
		return "", false, perr(c.name, c.line+1, 0, "%v", err)
	}
	return "", false, nil
}

// IDs returns the reach ids of the header. The slice must not be modified.
func (c *CSVTableReader) IDs() []int64 { return c.ids }

// Next returns the next row's time label and values. The values slice is
// reused by the following call. At the end it returns io.EOF.
func (c *CSVTableReader) Next() (label string, values []float32, err error) {
	if c.done {
		return "", nil, io.EOF
	}
	text, ok, err := c.next()
	if err != nil {
		c.done = true
		return "", nil, err
	}
	if !ok {
		c.done = true
		return "", nil, io.EOF
	}
	f := splitFields(text)
	if len(f) != len(c.ids)+1 {
		c.done = true
		return "", nil, perr(c.name, c.line, 0, "%d columns, the header has %d", len(f), len(c.ids)+1)
	}
	key := f[0]
	if t, err := ParseTime(key); err == nil {
		key = t.UTC().Format("2006-01-02T15:04:05.999999999")
	}
	if first, dup := c.times[key]; dup {
		c.done = true
		return "", nil, perr(c.name, c.line, 1, "time %q given twice (first on line %d)", f[0], first)
	}
	c.times[key] = c.line
	for j, s := range f[1:] {
		if s == "" {
			c.row[j] = float32(math.NaN())
			continue
		}
		v, err := strconv.ParseFloat(s, 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			c.done = true
			return "", nil, perr(c.name, c.line, j+2, "reach %d: %s is not a number", c.ids[j], quoteField(s))
		}
		c.row[j] = float32(v)
	}
	return f[0], c.row, nil
}

// ReadCSVTable reads a whole CSV table into a tensor with one batch member.
// Time labels are kept as written; Step is their uniform spacing when they
// parse as dates (ParseTime), else 0. name labels errors.
func ReadCSVTable(r io.Reader, name string) (*diffroute.DataTensor, error) {
	c, err := NewCSVTableReader(r, name)
	if err != nil {
		return nil, err
	}
	var labels []string
	var rows [][]float32
	for {
		label, vals, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		labels = append(labels, label)
		rows = append(rows, append([]float32(nil), vals...))
	}
	x, err := diffroute.FromTimeMajor(c.ids, rows)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	x.Times = labels
	x.Step = StepOf(labels)
	return x, nil
}

// ReadCSVTableFile reads a CSV table file.
func ReadCSVTableFile(path string) (*diffroute.DataTensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadCSVTable(f, path)
}

// WriteCSVTable writes a tensor with one batch member as a CSV table. The
// time column holds x.Times, or the step index when the tensor has no time
// labels. Values are written with the fewest digits that read back to the
// same float32; NaN as "NaN".
func WriteCSVTable(w io.Writer, x *diffroute.DataTensor) error {
	if err := x.Validate(); err != nil {
		return err
	}
	if x.B != 1 {
		return fmt.Errorf("data: a CSV table holds one batch member, the tensor has %d", x.B)
	}
	for _, s := range x.Times {
		if strings.ContainsAny(s, ",\r\n") {
			return fmt.Errorf("data: time label %q cannot be written to a CSV table", s)
		}
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	buf := make([]byte, 0, 32)
	bw.WriteString("time")
	for _, id := range x.IDs {
		buf = append(buf[:0], ',')
		buf = strconv.AppendInt(buf, id, 10)
		bw.Write(buf)
	}
	bw.WriteByte('\n')
	for t := 0; t < x.T; t++ {
		if len(x.Times) == x.T {
			bw.WriteString(x.Times[t])
		} else {
			bw.WriteString(strconv.Itoa(t))
		}
		for i := 0; i < x.N; i++ {
			v := x.Data[i*x.T+t]
			buf = append(buf[:0], ',')
			buf = strconv.AppendFloat(buf, float64(v), 'g', -1, 32)
			bw.Write(buf)
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteCSVTableFile writes a CSV table file atomically.
func WriteCSVTableFile(path string, x *diffroute.DataTensor) error {
	return writeAtomic(path, func(tmp string) error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		if err := WriteCSVTable(f, x); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}
