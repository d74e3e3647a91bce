package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// lz4Magic and zstdMagic open the frames of compressed Arrow buffers, after
// the buffer's 8-byte little-endian decompressed length.
var (
	lz4Magic  = []byte{0x04, 0x22, 0x4d, 0x18}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// inflateLengths sets the declared decompressed length of every compressed
// buffer of an Arrow file to n, and returns how many it changed.
func inflateLengths(b []byte, n uint64) int {
	k := 0
	for i := 0; i+12 <= len(b); i++ {
		if m := b[i+8 : i+12]; !bytes.Equal(m, lz4Magic) && !bytes.Equal(m, zstdMagic) {
			continue
		}
		if binary.LittleEndian.Uint64(b[i:]) < 1<<20 {
			binary.LittleEndian.PutUint64(b[i:], n)
			k++
		}
	}
	return k
}

// TestFeatherDeclaredLengths: a compressed buffer declaring a huge
// decompressed length is an error naming the file, not an allocation of that
// length (2^40 bytes: fatal "out of memory" before the budget).
func TestFeatherDeclaredLengths(t *testing.T) {
	dir := t.TempDir()
	for _, comp := range []string{"lz4", "zstd"} {
		opt := &FeatherOptions{Compression: comp}
		pp := filepath.Join(dir, comp+".pixels")
		if err := WritePixelRunoff(pp, samplePixels(5, 3), opt); err != nil {
			t.Fatal(err)
		}
		wp := filepath.Join(dir, comp+".weights")
		w := &Weights{RiverID: []int64{10, 10, 20}, Pixel: []string{"3", "4", "4"}, Area: []float64{1, 2.5, 3}}
		if err := WriteWeights(wp, w, opt); err != nil {
			t.Fatal(err)
		}
		for _, n := range []uint64{1 << 40, 1 << 62, 1<<64 - 2, 300 << 20} {
			for _, path := range []string{pp, wp} {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if inflateLengths(b, n) == 0 {
					t.Fatalf("%s: no compressed buffer found", path)
				}
				bad := path + ".bad"
				if err := os.WriteFile(bad, b, 0o644); err != nil {
					t.Fatal(err)
				}
				var errs []error
				if p, err := OpenPixelRunoff(bad); err == nil {
					_, err = p.ReadColumns(p.Labels(), nil)
					p.Close()
					errs = append(errs, err)
				} else {
					errs = append(errs, err)
				}
				_, err = ReadWeights(bad)
				errs = append(errs, err)
				for _, err := range errs {
					if err == nil || !strings.HasPrefix(err.Error(), bad+": ") {
						t.Errorf("%s, length %d: %v", bad, n, err)
					}
				}
			}
		}
	}
}

// schemaFieldsLenAt returns the position in an Arrow file of the length of
// its footer schema's field vector.
func schemaFieldsLenAt(t *testing.T, data []byte) int {
	t.Helper()
	size := int(binary.LittleEndian.Uint32(data[len(data)-10:]))
	base := len(data) - 10 - size
	fb := flatBuf(data[base : len(data)-10])
	footer, err := fb.root()
	if err != nil {
		t.Fatal(err)
	}
	schema, ok, err := footer.table(1)
	if !ok || err != nil {
		t.Fatal(err)
	}
	p, ok, err := schema.field(1)
	if !ok || err != nil {
		t.Fatal(err)
	}
	v, err := fb.ref(p)
	if err != nil {
		t.Fatal(err)
	}
	return base + v
}

// TestFeatherCorruptFooter: footers that made arrow-go die (not panic) are
// errors naming the file: a schema declaring 2^30 fields (an 80 GB
// allocation from a 1 kB file) and data flagged big-endian (swapped in place
// in the read-only mapping: a fault). Both readers share openMappedArrow.
func TestFeatherCorruptFooter(t *testing.T) {
	dir := t.TempDir()
	pp := filepath.Join(dir, "p.feather")
	if err := WritePixelRunoff(pp, samplePixels(5, 3), nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pp)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkArrowFooter(b); err != nil {
		t.Fatalf("valid file: %v", err)
	}
	huge := bytes.Clone(b)
	binary.LittleEndian.PutUint32(huge[schemaFieldsLenAt(t, huge):], 1<<30)
	big, err := os.ReadFile("testdata/feather/big_endian_flag.feather")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][]byte{"fields": huge, "endian": big} {
		path := filepath.Join(dir, name+".feather")
		if err := os.WriteFile(path, c, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenPixelRunoff(path)
		_, err2 := ReadWeights(path)
		for _, err := range []error{err, err2} {
			if err == nil || !strings.HasPrefix(err.Error(), path+": ") {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// TestFeatherNestedColumn: a list column, even one the reader would ignore,
// is refused with an error naming it.
func TestFeatherNestedColumn(t *testing.T) {
	mem := memory.DefaultAllocator
	lb := array.NewListBuilder(mem, arrow.PrimitiveTypes.Int64)
	lb.Append(true)
	lb.ValueBuilder().(*array.Int64Builder).Append(1)
	rb := array.NewInt64Builder(mem)
	rb.Append(10)
	pb := array.NewInt64Builder(mem)
	pb.Append(3)
	ab := array.NewFloat64Builder(mem)
	ab.Append(1)
	path := filepath.Join(t.TempDir(), "l.feather")
	writeArrow(t, path, []arrow.Field{
		{Name: "river_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "pixel_idx", Type: arrow.PrimitiveTypes.Int64},
		{Name: "area_sqm_total", Type: arrow.PrimitiveTypes.Float64},
		{Name: "extra", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)},
	}, []arrow.Array{rb.NewArray(), pb.NewArray(), ab.NewArray(), lb.NewArray()})
	if _, err := ReadWeights(path); err == nil || !strings.HasPrefix(err.Error(), path+": ") ||
		!strings.Contains(err.Error(), `unsupported Arrow file: column "extra" has a nested`) {
		t.Fatalf("%v", err)
	}
}
