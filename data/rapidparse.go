package data

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"unsafe"
)

// The RAPID text files of a large basin hold millions of lines: these
// parsers work on the file's bytes in place, allocating nothing per line, and
// accept exactly what readLines, splitRecord, parseID and parseFloat accept
// (falling back to them for anything but plain numbers, and for messages).

var utf8BOM = []byte("\xef\xbb\xbf")

// eachLine calls fn with the 1-based number and content of each non-blank
// line of data, trimmed of spaces and CR, with readLines' rules: a leading
// byte-order mark is dropped, blank lines at the end are ignored and a blank
// line followed by more data is an error.
func eachLine(data []byte, file string, fn func(n int, line []byte) error) error {
	return eachLineFrom(data, file, 1, fn, nil)
}

// eachLineFrom is eachLine on a piece of a file whose first line is line
// first (a byte-order mark is dropped only on line 1); when trailing is not
// nil, it is set when the piece ends with blank lines.
func eachLineFrom(data []byte, file string, first int, fn func(n int, line []byte) error, trailing *bool) error {
	n, blank := first-1, 0
	for len(data) > 0 {
		var ln []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			ln, data = data[:i], data[i+1:]
		} else {
			ln, data = data, nil
		}
		n++
		if n == 1 {
			ln = bytes.TrimPrefix(ln, utf8BOM)
		}
		ln = bytes.TrimSpace(ln)
		if len(ln) == 0 {
			if blank == 0 {
				blank = n
			}
			continue
		}
		if blank > 0 {
			return perr(file, blank, 0, "blank line inside the data")
		}
		if err := fn(n, ln); err != nil {
			return err
		}
	}
	if trailing != nil {
		*trailing = blank > 0
	}
	return nil
}

// record returns a line cut like splitRecord would cut it: the line without
// a dropped empty trailing field, and its number of fields.
func record(ln []byte) ([]byte, int) {
	nf := bytes.Count(ln, []byte{','}) + 1
	if nf > 1 {
		k := bytes.LastIndexByte(ln, ',')
		if len(bytes.TrimSpace(ln[k+1:])) == 0 {
			return ln[:k], nf - 1
		}
	}
	return ln, nf
}

// nextField splits the first comma-separated field (trimmed) off rec.
func nextField(rec []byte) (field, rest []byte) {
	if i := bytes.IndexByte(rec, ','); i >= 0 {
		return bytes.TrimSpace(rec[:i]), rec[i+1:]
	}
	return bytes.TrimSpace(rec), nil
}

// parseIDBytes is parseID on bytes: plain decimal integers directly, the
// rest through parseID.
func parseIDBytes(b []byte) (int64, error) {
	d := b
	neg := false
	if len(d) > 0 && (d[0] == '-' || d[0] == '+') {
		neg = d[0] == '-'
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return parseID(string(b))
	}
	var v int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return parseID(string(b))
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}

// parseFloatBytes is parseFloat on bytes.
func parseFloatBytes(b []byte) (float64, error) {
	if len(b) == 0 {
		return 0, errEmptyField
	}
	// strconv keeps no reference to its argument (its errors hold a copy),
	// so a view of b serves; errors are rebuilt from a copy.
	if v, err := strconv.ParseFloat(unsafe.String(&b[0], len(b)), 64); err == nil {
		return v, nil
	}
	return parseFloat(string(b))
}

// readAll reads r whole, in one read for a file of known size.
func readAll(r io.Reader) ([]byte, error) {
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			b := make([]byte, 0, st.Size()+1)
			for {
				n, err := f.Read(b[len(b):cap(b)])
				b = b[:len(b)+n]
				if err == io.EOF {
					return b, nil
				}
				if err != nil {
					return nil, err
				}
				if len(b) == cap(b) {
					b = append(b, 0)[:len(b)]
				}
			}
		}
	}
	return io.ReadAll(r)
}
