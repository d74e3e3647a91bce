package data

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadRunoffNCCorruptHeader: a classic file whose header declares far
// more data than the file holds is rejected before libnetcdf reads it (else
// the reader allocates what the header declares: here 2 GiB of float64 for
// a 3 kB file).
func TestReadRunoffNCCorruptHeader(t *testing.T) {
	b, err := os.ReadFile(m3File)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, patch := range map[string]func([]byte){
		"timelen": func(b []byte) { binary.BigEndian.PutUint32(b[24:], 1<<28) }, // time = 2^28
		"ndims":   func(b []byte) { binary.BigEndian.PutUint32(b[12:], 1<<30) },
		"version": func(b []byte) { b[3] = 7 },
		"short":   nil,
	} {
		c := bytes.Clone(b)
		if patch != nil {
			patch(c)
		} else {
			c = c[:len(c)-100]
		}
		path := filepath.Join(dir, name+".nc")
		if err := os.WriteFile(path, c, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadRunoffNC(path, nil)
		if err == nil || !strings.HasPrefix(err.Error(), path+": corrupt netCDF classic header") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
