package data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// checkClassicNC validates the header of a netCDF classic file (CDF-1,
// CDF-2 or CDF-5) before libnetcdf opens it: every count must fit in the
// file, names and attribute values must lie within the header, dimension ids
// must exist, the record dimension may only lead a variable's shape, and
// every variable's data must lie within the file. libnetcdf trusts declared
// sizes (it reads past the end of a short file as fill values and allocates
// attribute arrays at their declared length), so without this check a few
// corrupted bytes can make a reader allocate gigabytes or libnetcdf misbehave.
//
// Files that do not start with a classic magic number (netCDF-4/HDF5 files)
// are passed through unchecked: their layout is HDF5's, which this package
// does not parse.
func checkClassicNC(path string) error {
	_, err := readClassicHeader(path)
	return err
}

// readClassicHeader parses and validates the header of a classic file; it
// returns nil (and no error) for a file that is not classic.
func readClassicHeader(path string) (*ncHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:3]) != "CDF" {
		return nil, nil // not classic: libnetcdf decides
	}
	// The header is read from the start of the file, 64 KiB first and more
	// while it runs on; a classic header larger than 64 MiB is not plausible.
	for hlen := min(size, 64<<10); ; hlen = min(size, 4*hlen, 64<<20) {
		buf := make([]byte, hlen)
		if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
			return nil, err
		}
		h := &ncHeader{b: buf, size: size}
		err := h.parse()
		if err == nil {
			h.b = nil
			return h, nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) && hlen < min(size, 64<<20) {
			continue // the header goes on
		}
		return nil, fmt.Errorf("%s: corrupt netCDF classic header (byte %d): %v", path, h.pos, err)
	}
}

// ncHeader is a cursor over a classic header.
type ncHeader struct {
	b       []byte
	pos     int
	size    int64 // file size
	version byte
	last    string // the name read last

	// What parse found: where each variable's values lie.
	vars    []classicVar
	recsize int64 // bytes of one record (every record variable's slice)
	numrecs int64 // records written (-1: streaming, unknown)
}

// classicVar is a variable's place in a classic file: its values start at
// begin (big-endian, of type typ); a record variable's slice of record r
// is at begin + r·recsize. shape holds the dimension lengths, the record
// dimension as -1.
type classicVar struct {
	name  string
	typ   uint32
	shape []int64
	begin int64
	isRec bool
}

const (
	ncTagDim  = 0x0A
	ncTagVar  = 0x0B
	ncTagAttr = 0x0C
)

// ncTypeSize is the external size of each classic type (0 = invalid).
func ncTypeSize(t uint32, version byte) int64 {
	switch t {
	case 1, 2: // byte, char
		return 1
	case 3: // short
		return 2
	case 4, 5: // int, float
		return 4
	case 6: // double
		return 8
	}
	if version == 5 {
		switch t {
		case 7: // ubyte
			return 1
		case 8: // ushort
			return 2
		case 9: // uint
			return 4
		case 10, 11: // int64, uint64
			return 8
		}
	}
	return 0
}

// partial reports whether the buffer holds only the start of the file.
func (h *ncHeader) partial() bool { return int64(len(h.b)) < h.size }

func (h *ncHeader) u32() (uint32, error) {
	if len(h.b)-h.pos < 4 {
		return 0, io.ErrUnexpectedEOF
	}
	v := binary.BigEndian.Uint32(h.b[h.pos:])
	h.pos += 4
	return v, nil
}

func (h *ncHeader) u64() (uint64, error) {
	if len(h.b)-h.pos < 8 {
		return 0, io.ErrUnexpectedEOF
	}
	v := binary.BigEndian.Uint64(h.b[h.pos:])
	h.pos += 8
	return v, nil
}

// nonNeg reads a NON_NEG: 4 bytes (CDF-1, CDF-2) or 8 bytes (CDF-5), at most
// MaxInt64.
func (h *ncHeader) nonNeg() (int64, error) {
	if h.version == 5 {
		v, err := h.u64()
		if err != nil {
			return 0, err
		}
		if v > math.MaxInt64 {
			return 0, fmt.Errorf("count %d out of range", v)
		}
		return int64(v), nil
	}
	v, err := h.u32()
	if err != nil {
		return 0, err
	}
	if v > math.MaxInt32 {
		return 0, fmt.Errorf("count %d out of range", v)
	}
	return int64(v), nil
}

// count reads the element count of a list whose elements take at least min
// bytes each, and checks that they can fit in the rest of the header.
func (h *ncHeader) count(min int64) (int64, error) {
	n, err := h.nonNeg()
	if err != nil {
		return 0, err
	}
	if n > int64(len(h.b)-h.pos)/min {
		if h.partial() {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("%d elements cannot fit in the header", n)
	}
	return n, nil
}

// skip advances over n bytes padded to a multiple of 4.
func (h *ncHeader) skip(n int64) error {
	if n > math.MaxInt64-3 {
		return io.ErrUnexpectedEOF
	}
	n = (n + 3) &^ 3
	if n > int64(len(h.b)-h.pos) {
		return io.ErrUnexpectedEOF
	}
	h.pos += int(n)
	return nil
}

func (h *ncHeader) name() error {
	n, err := h.nonNeg()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("empty name")
	}
	start := h.pos
	if err := h.skip(n); err != nil {
		return err
	}
	h.last = string(h.b[start : start+int(n)])
	return nil
}

// list reads the tag and count of a dimension, attribute or variable list.
func (h *ncHeader) list(tag uint32, min int64) (int64, error) {
	t, err := h.u32()
	if err != nil {
		return 0, err
	}
	n, err := h.count(min)
	if err != nil {
		return 0, err
	}
	if t == 0 && n == 0 {
		return 0, nil // ABSENT
	}
	if t != tag {
		return 0, fmt.Errorf("tag %#x, want %#x", t, tag)
	}
	return n, nil
}

func (h *ncHeader) attrs() error {
	n, err := h.list(ncTagAttr, 12)
	if err != nil {
		return err
	}
	for i := int64(0); i < n; i++ {
		if err := h.name(); err != nil {
			return fmt.Errorf("attribute %d: %w", i, err)
		}
		t, err := h.u32()
		if err != nil {
			return err
		}
		ts := ncTypeSize(t, h.version)
		if ts == 0 {
			return fmt.Errorf("attribute %d: type %d", i, t)
		}
		nv, err := h.nonNeg()
		if err != nil {
			return err
		}
		if nv > int64(len(h.b)-h.pos)/ts {
			if h.partial() {
				return io.ErrUnexpectedEOF
			}
			return fmt.Errorf("attribute %d: %d values cannot fit in the header", i, nv)
		}
		if err := h.skip(nv * ts); err != nil {
			return err
		}
	}
	return nil
}

func (h *ncHeader) parse() error {
	if len(h.b) < 4 {
		return io.ErrUnexpectedEOF
	}
	h.version = h.b[3]
	switch h.version {
	case 1, 2, 5:
	default:
		return fmt.Errorf("version %d", h.version)
	}
	h.pos = 4
	var numrecs int64
	streaming := false
	if h.version == 5 {
		v, err := h.u64()
		if err != nil {
			return err
		}
		streaming = v == math.MaxUint64
		numrecs = int64(v & math.MaxInt64)
	} else {
		v, err := h.u32()
		if err != nil {
			return err
		}
		streaming = v == math.MaxUint32
		numrecs = int64(v)
	}
	if streaming {
		numrecs = -1
	}

	// Dimensions.
	nd, err := h.list(ncTagDim, 8)
	if err != nil {
		return fmt.Errorf("dimensions: %w", err)
	}
	dims := make([]int64, nd)
	recDim := -1
	for i := range dims {
		if err := h.name(); err != nil {
			return fmt.Errorf("dimension %d: %w", i, err)
		}
		if dims[i], err = h.nonNeg(); err != nil {
			return fmt.Errorf("dimension %d: %w", i, err)
		}
		if dims[i] == 0 {
			if recDim >= 0 {
				return fmt.Errorf("dimensions %d and %d are both unlimited", recDim, i)
			}
			recDim = i
		}
	}
	if err := h.attrs(); err != nil {
		return fmt.Errorf("global attributes: %w", err)
	}

	// Variables.
	nv, err := h.list(ncTagVar, 24)
	if err != nil {
		return fmt.Errorf("variables: %w", err)
	}
	type extent struct{ begin, vsize int64 }
	var fixed []extent
	var recs []extent
	for i := int64(0); i < nv; i++ {
		if err := h.name(); err != nil {
			return fmt.Errorf("variable %d: %w", i, err)
		}
		cv := classicVar{name: h.last}
		rank, err := h.count(4)
		if err != nil {
			return fmt.Errorf("variable %d: %w", i, err)
		}
		isRec := false
		elems := int64(1)
		for j := int64(0); j < rank; j++ {
			id, err := h.nonNeg()
			if err != nil {
				return err
			}
			if id >= nd {
				return fmt.Errorf("variable %d: dimension id %d of %d dimensions", i, id, nd)
			}
			if int(id) == recDim {
				if j != 0 {
					return fmt.Errorf("variable %d: the unlimited dimension is not its first", i)
				}
				isRec = true
				cv.shape = append(cv.shape, -1)
				continue
			}
			d := dims[id]
			cv.shape = append(cv.shape, d)
			if d > 0 && elems > h.size/d {
				return fmt.Errorf("variable %d: shape larger than the file", i)
			}
			elems *= d
		}
		if err := h.attrs(); err != nil {
			return fmt.Errorf("variable %d attributes: %w", i, err)
		}
		t, err := h.u32()
		if err != nil {
			return err
		}
		ts := ncTypeSize(t, h.version)
		if ts == 0 {
			return fmt.Errorf("variable %d: type %d", i, t)
		}
		if _, err := h.nonNeg(); err != nil { // vsize as written; recomputed below
			return err
		}
		var begin int64
		if h.version == 1 {
			v, err := h.u32()
			if err != nil {
				return err
			}
			begin = int64(v)
		} else {
			v, err := h.u64()
			if err != nil {
				return err
			}
			if v > math.MaxInt64 {
				return fmt.Errorf("variable %d: offset %d", i, v)
			}
			begin = int64(v)
		}
		if elems > h.size/ts {
			return fmt.Errorf("variable %d: data larger than the file", i)
		}
		vsize := elems * ts
		if begin > h.size {
			return fmt.Errorf("variable %d: data at byte %d beyond the file's %d", i, begin, h.size)
		}
		cv.typ, cv.begin, cv.isRec = t, begin, isRec
		h.vars = append(h.vars, cv)
		if isRec {
			recs = append(recs, extent{begin, vsize})
		} else {
			if vsize > h.size-begin {
				return fmt.Errorf("variable %d: %d bytes at byte %d beyond the file's %d", i, vsize, begin, h.size)
			}
			fixed = append(fixed, extent{begin, vsize})
		}
	}
	if int64(h.pos) > h.size {
		return io.ErrUnexpectedEOF
	}
	for i, e := range fixed {
		if e.begin < int64(h.pos) {
			return fmt.Errorf("fixed variable %d: data at byte %d inside the header", i, e.begin)
		}
	}
	if len(recs) == 0 {
		return nil
	}
	// Records: each record holds every record variable, padded to 4 bytes
	// (unpadded when a single record variable).
	var recsize int64
	for _, e := range recs {
		s := e.vsize
		if len(recs) > 1 {
			s = (s + 3) &^ 3
		}
		if s > h.size-recsize {
			return fmt.Errorf("record larger than the file")
		}
		recsize += s
	}
	h.recsize, h.numrecs = recsize, numrecs
	for _, e := range recs {
		if e.begin < int64(h.pos) {
			return fmt.Errorf("record data at byte %d inside the header", e.begin)
		}
	}
	if numrecs <= 0 {
		return nil // none, or streaming: libnetcdf derives the count from the size
	}
	// The last record of every record variable must lie in the file.
	for i, e := range recs {
		if numrecs-1 > (h.size-e.begin)/recsize || (numrecs-1)*recsize > h.size-e.begin-e.vsize {
			return fmt.Errorf("%d records of %d bytes: record variable %d ends beyond the file's %d bytes", numrecs, recsize, i, h.size)
		}
	}
	return nil
}
