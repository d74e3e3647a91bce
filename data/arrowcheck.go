package data

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// checkArrowFooter validates the footer flatbuffer of a mapped Arrow IPC
// file before arrow-go decodes it. arrow-go sizes slices from the lengths of
// flatbuffer vectors without checking them against the buffer (a 1 kB file
// declaring 2^32 schema fields made it allocate 80 GB and die with "out of
// memory") and follows child fields recursively without a depth limit (a
// field listing itself as its child overflows the stack). Both are fatal
// errors, not panics, so they cannot be recovered: the footer is walked
// here first, the way arrow-go walks it, with every vector, string and table
// checked against the footer's bounds, child fields nested at most
// arrowMaxDepth deep and as many field visits as the footer has bytes.
func checkArrowFooter(data []byte) error {
	const eof = 10 // int32 footer length + "ARROW1"
	if len(data) < eof+8 {
		return errors.New("file too small for an Arrow file")
	}
	size := int(binary.LittleEndian.Uint32(data[len(data)-eof:]))
	if size <= 0 || size > len(data)-eof-8 {
		return fmt.Errorf("footer length %d does not fit in the file", size)
	}
	fb := flatBuf(data[len(data)-eof-size : len(data)-eof])
	footer, err := fb.root()
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	// Footer: version, schema, dictionaries [Block], recordBatches [Block],
	// custom_metadata [KeyValue]. A Block struct is 24 bytes.
	for _, slot := range []int{2, 3} {
		if _, _, err := footer.vector(slot, 24); err != nil {
			return fmt.Errorf("footer blocks: %w", err)
		}
	}
	if err := footer.keyValues(4); err != nil {
		return fmt.Errorf("footer metadata: %w", err)
	}
	schema, ok, err := footer.table(1)
	if err != nil || !ok {
		return fmt.Errorf("footer schema: missing or %v", err)
	}
	// Schema: endianness, fields [Field], custom_metadata, features [long].
	if _, _, err := schema.vector(3, 8); err != nil {
		return fmt.Errorf("schema features: %w", err)
	}
	if err := schema.keyValues(2); err != nil {
		return fmt.Errorf("schema metadata: %w", err)
	}
	budget := len(fb) / 4
	if err := schema.fields(1, 0, &budget); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return nil
}

const arrowMaxDepth = 64

// errArrowUnsupported marks valid Arrow files the readers do not handle.
var errArrowUnsupported = errors.New("unsupported Arrow file")

// flatFBType marks the flat members of Arrow's flatbuffer Type union with
// data buffers: Int, FloatingPoint, Binary, Utf8, Bool, Decimal, Date, Time,
// Timestamp, Interval, FixedSizeBinary, Duration, LargeBinary and LargeUtf8
// (NONE is left to arrow-go, which refuses it; Null has no buffer to bound
// its declared length).
var flatFBType = [256]bool{0: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true,
	9: true, 10: true, 11: true, 15: true, 18: true, 19: true, 20: true}

// flatBuf is a flatbuffer; fbTable a table in it.
type flatBuf []byte

type fbTable struct {
	b      flatBuf
	pos    int // table start
	vtable int // vtable start
	vlen   int // vtable length in bytes
}

func (b flatBuf) u32(p int) (int, error) {
	if p < 0 || p > len(b)-4 {
		return 0, fmt.Errorf("offset %d outside the %d-byte buffer", p, len(b))
	}
	return int(binary.LittleEndian.Uint32(b[p:])), nil
}

// ref follows the unsigned offset stored at p.
func (b flatBuf) ref(p int) (int, error) {
	o, err := b.u32(p)
	if err != nil {
		return 0, err
	}
	if o > len(b)-p {
		return 0, fmt.Errorf("reference at %d points beyond the buffer", p)
	}
	return p + o, nil
}

func (b flatBuf) root() (fbTable, error) {
	p, err := b.ref(0)
	if err != nil {
		return fbTable{}, err
	}
	return b.tableAt(p)
}

func (b flatBuf) tableAt(p int) (fbTable, error) {
	so, err := b.u32(p)
	if err != nil {
		return fbTable{}, err
	}
	v := p - int(int32(uint32(so)))
	if v < 0 || v > len(b)-4 {
		return fbTable{}, fmt.Errorf("table at %d: vtable outside the buffer", p)
	}
	vlen := int(binary.LittleEndian.Uint16(b[v:]))
	if vlen < 4 || vlen%2 != 0 || vlen > len(b)-v {
		return fbTable{}, fmt.Errorf("table at %d: bad vtable length %d", p, vlen)
	}
	tlen := int(binary.LittleEndian.Uint16(b[v+2:]))
	if tlen < 4 || tlen > len(b)-p {
		return fbTable{}, fmt.Errorf("table at %d: bad table length %d", p, tlen)
	}
	return fbTable{b: b, pos: p, vtable: v, vlen: vlen}, nil
}

// field returns the position of a slot's value, if present.
func (t fbTable) field(slot int) (int, bool, error) {
	if 4+2*slot+2 > t.vlen {
		return 0, false, nil
	}
	o := int(binary.LittleEndian.Uint16(t.b[t.vtable+4+2*slot:]))
	if o == 0 {
		return 0, false, nil
	}
	p := t.pos + o
	if p > len(t.b)-4 {
		return 0, false, fmt.Errorf("field %d of the table at %d outside the buffer", slot, t.pos)
	}
	return p, true, nil
}

// vector returns the element start and length of a vector slot whose
// elements take elem bytes, checked against the buffer.
func (t fbTable) vector(slot, elem int) (start, n int, err error) {
	p, ok, err := t.field(slot)
	if err != nil || !ok {
		return 0, 0, err
	}
	v, err := t.b.ref(p)
	if err != nil {
		return 0, 0, err
	}
	if n, err = t.b.u32(v); err != nil {
		return 0, 0, err
	}
	if n > (len(t.b)-v-4)/elem {
		return 0, 0, fmt.Errorf("vector at %d declares %d elements, the buffer holds at most %d", v, n, (len(t.b)-v-4)/elem)
	}
	return v + 4, n, nil
}

func (t fbTable) table(slot int) (fbTable, bool, error) {
	p, ok, err := t.field(slot)
	if err != nil || !ok {
		return fbTable{}, false, err
	}
	q, err := t.b.ref(p)
	if err != nil {
		return fbTable{}, false, err
	}
	u, err := t.b.tableAt(q)
	return u, err == nil, err
}

// tables calls fn on each table of a vector-of-tables slot.
func (t fbTable) tables(slot int, fn func(fbTable) error) error {
	start, n, err := t.vector(slot, 4)
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		q, err := t.b.ref(start + 4*i)
		if err != nil {
			return err
		}
		u, err := t.b.tableAt(q)
		if err != nil {
			return err
		}
		if err := fn(u); err != nil {
			return err
		}
	}
	return nil
}

// keyValues checks a custom_metadata slot: [KeyValue{key, value string}].
func (t fbTable) keyValues(slot int) error {
	return t.tables(slot, func(kv fbTable) error {
		for _, s := range []int{0, 1} {
			if _, _, err := kv.vector(s, 1); err != nil {
				return err
			}
		}
		return nil
	})
}

// fields checks a [Field] slot recursively. Field: name, nullable,
// type_type, type, dictionary, children [Field], custom_metadata.
func (t fbTable) fields(slot, depth int, budget *int) error {
	if depth > arrowMaxDepth {
		return fmt.Errorf("fields nested more than %d deep", arrowMaxDepth)
	}
	return t.tables(slot, func(f fbTable) error {
		if *budget--; *budget < 0 {
			return errors.New("more field visits than the footer has room for (shared or cyclic children)")
		}
		ns, nn, err := f.vector(0, 1)
		if err != nil {
			return fmt.Errorf("field name: %w", err)
		}
		if err := f.keyValues(6); err != nil {
			return fmt.Errorf("field metadata: %w", err)
		}
		if _, _, err := f.table(3); err != nil {
			return fmt.Errorf("field type: %w", err)
		}
		if _, _, err := f.table(4); err != nil {
			return fmt.Errorf("field dictionary: %w", err)
		}
		// Type: only flat types are read (dictionaries included, whose
		// batches arrow-go loads while opening the file).
		if p, ok, err := f.field(2); err != nil {
			return err
		} else if ok && !flatFBType[f.b[p]] {
			return fmt.Errorf("%w: column %q has a nested or view type (Arrow type code %d)", errArrowUnsupported, f.b[ns:ns+nn], f.b[p])
		}
		return f.fields(5, depth+1, budget)
	})
}
