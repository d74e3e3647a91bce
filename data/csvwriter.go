package data

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/diffroute-go/route/atomicfile"
	"github.com/diffroute-go/route/diffroute"
)

// CSVTableWriter writes a CSV table (the layout of WriteCSVTable) in time
// pieces, for discharge streamed chunk by chunk: each Write must hold every
// reach and continue where the previous one ended. The table is written
// under a temporary name and renamed into place by Close.
type CSVTableWriter struct {
	path, tmp string
	f         *os.File
	w         *bufio.Writer
	ids       []int64
	times     []string
	next      int
	buf       []byte
}

// NewCSVTableWriter starts a table of reaches ids (columns, in this order)
// and len(times) steps.
func NewCSVTableWriter(path string, ids []int64, times []string) (*CSVTableWriter, error) {
	for _, s := range times {
		if strings.ContainsAny(s, ",\r\n") {
			return nil, fmt.Errorf("data: time label %q cannot be written to a CSV table", s)
		}
	}
	f, err := createTemp(path)
	if err != nil {
		return nil, err
	}
	c := &CSVTableWriter{path: path, tmp: f.Name(), f: f, w: bufio.NewWriterSize(f, 1<<16), ids: ids, times: times}
	c.w.WriteString("time")
	for _, id := range ids {
		c.buf = append(c.buf[:0], ',')
		c.buf = strconv.AppendInt(c.buf, id, 10)
		c.w.Write(c.buf)
	}
	c.w.WriteByte('\n')
	return c, nil
}

// Write appends steps [t0, t0+q.T) of every reach (rows matched by id).
func (c *CSVTableWriter) Write(q *diffroute.DataTensor, t0 int) error {
	if err := q.Validate(); err != nil {
		return err
	}
	if q.B != 1 {
		return fmt.Errorf("data: a CSV table holds one batch member, the tensor has %d", q.B)
	}
	if t0 != c.next || t0+q.T > len(c.times) {
		return fmt.Errorf("data: %s: steps [%d, %d) given, the table continues at step %d of %d", c.path, t0, t0+q.T, c.next, len(c.times))
	}
	row := make(map[int64]int, q.N)
	for j, id := range q.IDs {
		row[id] = j
	}
	rows := make([]int, len(c.ids))
	for i, id := range c.ids {
		j, ok := row[id]
		if !ok {
			return fmt.Errorf("data: %s: the piece at step %d lacks reach %d", c.path, t0, id)
		}
		rows[i] = j
	}
	for t := 0; t < q.T; t++ {
		c.w.WriteString(c.times[t0+t])
		for _, j := range rows {
			c.buf = append(c.buf[:0], ',')
			c.buf = strconv.AppendFloat(c.buf, float64(q.Data[j*q.T+t]), 'g', -1, 32)
			c.w.Write(c.buf)
		}
		if err := c.w.WriteByte('\n'); err != nil {
			return outputError(err, c.tmp, c.path)
		}
	}
	c.next += q.T
	return nil
}

// Close completes the table and renames it into place.
func (c *CSVTableWriter) Close() error {
	if c.next != len(c.times) {
		c.Abort()
		return fmt.Errorf("data: %s: %d of %d steps written", c.path, c.next, len(c.times))
	}
	err := c.w.Flush()
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		return outputError(atomicfile.Commit(c.tmp, c.path), c.tmp, c.path)
	}
	os.Remove(c.tmp)
	return outputError(err, c.tmp, c.path)
}

// Abort drops the table.
func (c *CSVTableWriter) Abort() {
	c.f.Close()
	os.Remove(c.tmp)
}
