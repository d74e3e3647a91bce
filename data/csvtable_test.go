package data

import (
	"io"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

func TestCSVTableRead(t *testing.T) {
	in := "\ufefftime , 5, 3\r\n2000-01-01, 1.5 ,\r\n2000-01-02,NaN,-2e3\r\n\r\n"
	x, err := ReadCSVTable(strings.NewReader(in), "t.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(x.IDs, []int64{5, 3}) || x.T != 2 || x.Step != 24*time.Hour ||
		!slices.Equal(x.Times, []string{"2000-01-01", "2000-01-02"}) {
		t.Fatalf("%v %v %v", x.IDs, x.Times, x.Step)
	}
	if x.At(0, 0, 0) != 1.5 || !math.IsNaN(float64(x.At(0, 1, 0))) || !math.IsNaN(float64(x.At(0, 0, 1))) || x.At(0, 1, 1) != -2000 {
		t.Fatalf("%v", x.Data)
	}
}

func TestCSVTableStream(t *testing.T) {
	r, err := NewCSVTableReader(strings.NewReader("time,1,2\n0,1,2\n1,3,4\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float32
	for {
		label, v, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, append([]float32{float32(len(label))}, v...))
	}
	if len(rows) != 2 || rows[1][2] != 4 {
		t.Fatal(rows)
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatal("want EOF again")
	}
}

func TestCSVTableErrors(t *testing.T) {
	cases := []struct {
		in        string
		line, col int
		frag      string
	}{
		{"", 0, 0, "no header"},
		{"time\n", 1, 0, "header has 1"},
		{"time,1,x\n", 1, 3, `"x"`},
		{"time,1,1\n", 1, 3, "duplicate reach id 1"},
		{"time,1,2\n0,1,2\n1,3\n", 3, 0, "2 columns, the header has 3"},
		{"time,1,2\n0,1,2\n1,3,abc\n", 3, 3, "reach 2"},
		{"time,1,2\n0,1,2\n\n1,3,4\n", 3, 0, "blank line"},
		{"time,1,2\n0,1,2\n1,3,4\n0,5,6\n", 4, 1, `time "0" given twice (first on line 2)`},
		{"time,1\n2000-01-01T00:00:00Z,1\n2000-01-02,2\n2000-01-02T00:00:00Z,3\n", 4, 1, "given twice (first on line 3)"},
	}
	for _, c := range cases {
		_, err := ReadCSVTable(strings.NewReader(c.in), "t.csv")
		wantParseError(t, err, "t.csv", c.line, c.frag)
		if c.col > 0 && err.(*ParseError).Column != c.col {
			t.Fatalf("%q: column %d, want %d", c.in, err.(*ParseError).Column, c.col)
		}
		if c.col > 0 && !strings.Contains(err.Error(), "t.csv:"+itoa(int64(c.line))+":"+itoa(int64(c.col))+":") {
			t.Fatalf("message %q lacks line:column", err)
		}
	}
}

func TestCSVTableWriteRoundTrip(t *testing.T) {
	x := diffroute.NewDataTensor(1, []int64{9, 4}, 3)
	vals := []float32{1.0 / 3, float32(math.NaN()), 1e-30, -5, float32(math.Inf(1)), 0}
	copy(x.Data, vals)
	var b strings.Builder
	if err := WriteCSVTable(&b, x); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "time,9,4\n0,") {
		t.Fatalf("%q", b.String())
	}
	y, err := ReadCSVTable(strings.NewReader(b.String()), "")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x.Data {
		w := y.Data[i]
		if v != w && !(v != v && w != w) {
			t.Fatalf("value %d: %v != %v", i, w, v)
		}
	}
	if err := WriteCSVTable(&b, diffroute.NewDataTensor(2, []int64{1}, 1)); err == nil {
		t.Fatal("batch 2 accepted")
	}
	x.Times = []string{"a,b", "c", "d"}
	if err := WriteCSVTable(&b, x); err == nil {
		t.Fatal("comma in label accepted")
	}
}
