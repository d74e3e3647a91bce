package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
