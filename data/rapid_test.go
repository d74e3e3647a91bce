package data

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadRAPIDReal(t *testing.T) {
	r, err := ReadRAPID(xx9)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}
	wantBas := []int64{17880834, 17880836, 17880282, 17880284, 17880298, 17880258, 17880832, 17880268, 17880830}
	if !slices.Equal(r.Network.IDs(), wantBas) {
		t.Fatalf("network order %v, want riv_bas_id order %v", r.Network.IDs(), wantBas)
	}
	wantConnect := []int64{17880258, 17880268, 17880282, 17880284, 17880298, 17880830, 17880832, 17880834, 17880836}
	if !slices.Equal(r.ConnectIDs, wantConnect) {
		t.Fatalf("connect order %v", r.ConnectIDs)
	}
	// k.csv is in rapid_connect order: 17880258 has k = 943.4425 (line 1),
	// 17880836 has 2540.5835 (line 9).
	kOf := func(id int64) float64 { i, _ := r.Network.Index(id); return r.K[i] }
	if kOf(17880258) != 943.4425 || kOf(17880836) != 2540.5835 || kOf(17880834) != 4714.1849999999995 {
		t.Fatalf("k not re-indexed from rapid_connect order: %v", r.K)
	}
	for _, x := range r.X {
		if x != 0.3 {
			t.Fatalf("x = %v", r.X)
		}
	}
	// Topology: 17880298 is the outlet; 17880282 <- 17880834, 17880836.
	o := r.Network.Outlets()
	if len(o) != 1 || r.Network.ID(o[0]) != 17880298 {
		t.Fatalf("outlets %v", o)
	}
	i282, _ := r.Network.Index(17880282)
	var ups []int64
	for _, u := range r.Network.Upstream(i282) {
		ups = append(ups, r.Network.ID(int(u)))
	}
	slices.Sort(ups)
	if !slices.Equal(ups, []int64{17880834, 17880836}) {
		t.Fatalf("upstream of 17880282: %v", ups)
	}
	p, err := r.Muskingum(3 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := p["k"][0]; !relClose(got, 4714.1849999999995/10800, 1e-15) {
		t.Fatalf("k/Δ = %v", got)
	}
	if len(p["x"]) != 9 {
		t.Fatal("x missing")
	}
	if _, err := r.Muskingum(0); err == nil {
		t.Fatal("zero step accepted")
	}
}

func TestReadQinitReal(t *testing.T) {
	r, err := ReadRAPID(xx9)
	if err != nil {
		t.Fatal(err)
	}
	q, err := ReadQinit(qinitFile, r)
	if err != nil {
		t.Fatal(err)
	}
	// qinit is in rapid_connect order: its first value (0.0) belongs to
	// 17880258, which gets no runoff; its last to 17880836.
	i258, _ := r.Network.Index(17880258)
	i836, _ := r.Network.Index(17880836)
	if q[i258] != 0 || q[i836] != 4.44216450415e-26 {
		t.Fatalf("qinit %v", q)
	}
	// Header form, any order.
	var b strings.Builder
	b.WriteString("rivid,qinit\r\n")
	for i := len(r.ConnectIDs) - 1; i >= 0; i-- {
		id := r.ConnectIDs[i]
		j, _ := r.Network.Index(id)
		b.WriteString(strings.Join([]string{itoa(id), " " + ftoa(q[j])}, ","))
		b.WriteString("\n")
	}
	q2, err := ParseQinit(strings.NewReader(b.String()), "q.csv", r)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(q, q2) {
		t.Fatalf("header form %v != %v", q2, q)
	}
}

func TestQinitErrors(t *testing.T) {
	r, err := ReadRAPID(xx9)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   string
		line int
		frag string
	}{
		{"1\n2\n", 0, "2 values but rapid_connect.csv has 9"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", 10, "10 values"},
		{"1\n2\nabc\n", 3, "not a number"},
		{"1,2\n", 1, "2 columns"},
		{"rivid,qinit\n17880258,1\n17880258,2\n", 3, "duplicate"},
		{"rivid,qinit\n17880258,x\n", 2, "not a number"},
		{"rivid,qinit\n17880258,1\n", 0, "no initial discharge"},
		{"rivid,qinit,z\n", 1, "header has 3"},
		{"1\n2\nNaN\n", 3, "not finite"},
		{"rivid,qinit\n17880258,-inf\n", 2, "not finite"},
		{"1\n1e999\n", 2, "beyond the range"},
		{"1e999\n", 1, "beyond the range"},
	}
	for _, c := range cases {
		_, err := ParseQinit(strings.NewReader(c.in), "qinit.csv", r)
		wantParseError(t, err, "qinit.csv", c.line, c.frag)
	}
}

var xx9Files = map[string]string{
	"rapid_connect.csv": "10,30,0,0,0\n20,30,0,0,0\n30,-1,2,10,20\n",
	"riv_bas_id.csv":    "30\n10\n20\n",
	"k.csv":             "100\n200\n300\n",
	"x.csv":             "0.1\n0.2\n0.3\n",
}

func with(over map[string]string, drop ...string) map[string]string {
	m := map[string]string{}
	for k, v := range xx9Files {
		m[k] = v
	}
	for k, v := range over {
		m[k] = v
	}
	for _, d := range drop {
		delete(m, d)
	}
	return m
}

func TestReadRAPIDSmall(t *testing.T) {
	r, err := ReadRAPID(writeFiles(t, xx9Files))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Network.IDs(), []int64{30, 10, 20}) || !slices.Equal(r.K, []float64{300, 100, 200}) || !slices.Equal(r.X, []float64{0.3, 0.1, 0.2}) {
		t.Fatalf("ids %v k %v x %v", r.Network.IDs(), r.K, r.X)
	}
}

func TestReadRAPIDTolerant(t *testing.T) {
	dir := writeFiles(t, with(map[string]string{
		"rapid_connect.csv": "\ufeff 10 , 30 ,0,0,0\r\n20,30,0,0,0\r\n30,0,2,10,20\r\n\r\n\r\n",
		"riv_bas_id.csv":    "30\r\n 10\r\n20 \r\n\n",
		"k.csv":             "100\r\n2e2\r\n300.0\r\n",
		"x.csv":             " 0.1\n0.2 \n0.3\n\n",
	}))
	r, err := ReadRAPID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Network.IDs(), []int64{30, 10, 20}) || !slices.Equal(r.K, []float64{300, 100, 200}) {
		t.Fatalf("ids %v k %v", r.Network.IDs(), r.K)
	}
}

func TestReadRAPIDNoBasin(t *testing.T) {
	r, err := ReadRAPID(writeFiles(t, with(nil, "riv_bas_id.csv")))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Network.IDs(), []int64{10, 20, 30}) || !slices.Equal(r.K, []float64{100, 200, 300}) {
		t.Fatalf("ids %v k %v", r.Network.IDs(), r.K)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "riv_bas_id.csv: not found") {
		t.Errorf("no warning about the missing basin file: %v", r.Warnings)
	}
}

func TestReadRAPIDSubBasin(t *testing.T) {
	// The basin is {40, 10}: 20 and 30 are dropped, so 10, which drains into
	// the dropped 30, becomes an outlet; 40 still drains into 10.
	dir := writeFiles(t, map[string]string{
		"rapid_connect.csv": "10,30,1,40,0\n20,30,0,0,0\n30,99,2,10,20\n40,10,0,0,0\n",
		"riv_bas_id.csv":    "40\n10\n",
		"k.csv":             "1\n2\n3\n4\n",
		"x.csv":             "0\n0\n0\n0.5\n",
	})
	r, err := ReadRAPID(dir)
	if err != nil {
		t.Fatal(err)
	}
	net := r.Network
	if !slices.Equal(net.IDs(), []int64{40, 10}) || net.Down(0) != 1 || net.Down(1) != -1 {
		t.Fatalf("ids %v down %d %d", net.IDs(), net.Down(0), net.Down(1))
	}
	if !slices.Equal(r.K, []float64{4, 1}) || !slices.Equal(r.X, []float64{0.5, 0}) {
		t.Fatalf("k %v x %v", r.K, r.X)
	}
	if len(r.ConnectIDs) != 4 {
		t.Fatal(r.ConnectIDs)
	}
}

func TestReadRAPIDWarnings(t *testing.T) {
	// 30 lists 10 upstream, but 10 drains into 20.
	r, err := ReadRAPID(writeFiles(t, with(map[string]string{
		"rapid_connect.csv": "10,20,0,0,0\n20,30,0,0,0\n30,-1,1,10,0\n",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "rapid_connect.csv:3:") {
		t.Fatalf("warnings %v", r.Warnings)
	}
}

// A downstream id that is not in the file (a typo, or an extract whose
// outlet drains elsewhere) routes as an outlet, with a warning naming the
// line; past three such reaches the rest are counted.
func TestReadRAPIDWarnsOfUnknownDownstream(t *testing.T) {
	r, err := ReadRAPID(writeFiles(t, with(map[string]string{
		"rapid_connect.csv": "10,20,0,0,0\n20,30,1,10,0\n30,17889999,1,20,0\n",
	})))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "rapid_connect.csv:3: reach 30 drains into 17889999, which is not in the file") {
		t.Fatalf("warnings %q", r.Warnings)
	}
	if i, _ := r.Network.Index(30); r.Network.Down(i) != -1 {
		t.Error("reach 30 is not an outlet")
	}
	var lines []string
	for i := range 6 {
		lines = append(lines, fmt.Sprintf("%d,%d,0,0,0", i+1, 100+i))
	}
	r, err = ReadRAPID(writeFiles(t, map[string]string{
		"rapid_connect.csv": strings.Join(lines, "\n") + "\n",
		"k.csv":             strings.Repeat("1\n", 6),
		"x.csv":             strings.Repeat("0\n", 6),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 5 || !strings.Contains(r.Warnings[3], "3 more reaches drain into ids not in the file") {
		t.Fatalf("warnings %q", r.Warnings)
	}
}

func TestReadRAPIDErrors(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		file  string
		line  int
		frags []string
	}{
		{"non-numeric connect", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n20,abc,0,0,0\n30,-1,2,10,20\n"}), "rapid_connect.csv", 2, []string{`"abc"`}},
		{"short line", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n20,30\n30,-1,2,10,20\n"}), "rapid_connect.csv", 2, []string{"2 columns"}},
		{"ragged line", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n20,30,0,0\n30,-1,2,10,20\n"}), "rapid_connect.csv", 2, []string{"4 columns, earlier lines have 5"}},
		{"n_up too large", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n20,30,0,0,0\n30,-1,3,10,20\n"}), "rapid_connect.csv", 3, []string{"n_up = 3"}},
		{"n_up counts fewer", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n20,30,0,0,0\n30,-1,1,10,20\n"}), "rapid_connect.csv", 3, []string{"beyond n_up = 1"}},
		{"n_up counts more", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n20,30,0,0,0\n30,-1,2,10,0\n"}), "rapid_connect.csv", 3, []string{"n_up = 2 but 1 upstream"}},
		{"negative n_up", with(map[string]string{"rapid_connect.csv": "10,30,-1,0,0\n20,30,0,0,0\n30,-1,2,10,20\n"}), "rapid_connect.csv", 1, []string{"n_up = -1"}},
		{"duplicate", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n10,30,0,0,0\n30,-1,1,10,0\n"}), "rapid_connect.csv", 2, []string{"duplicate reach id 10 (first on line 1)"}},
		{"self loop", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n20,20,0,0,0\n30,-1,1,10,0\n"}), "rapid_connect.csv", 2, []string{"drains into itself"}},
		{"non-positive id", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n0,30,0,0,0\n30,-1,1,10,0\n"}), "rapid_connect.csv", 2, []string{"must be positive"}},
		{"cycle", with(map[string]string{"rapid_connect.csv": "10,20,0,0,0\n20,30,0,0,0\n30,10,0,0,0\n"}), "rapid_connect.csv", 3, []string{"reach 30", "cycle 30 -> 10 -> 20 -> 30"}},
		{"blank inside", with(map[string]string{"rapid_connect.csv": "10,30,0,0,0\n\n20,30,0,0,0\n30,-1,2,10,20\n"}), "rapid_connect.csv", 2, []string{"blank line"}},
		{"empty connect", with(map[string]string{"rapid_connect.csv": "\n\n"}), "rapid_connect.csv", 0, []string{"no reaches"}},
		{"unknown basin id", with(map[string]string{"riv_bas_id.csv": "30\n10\n77\n"}), "riv_bas_id.csv", 3, []string{"reach 77 is not in rapid_connect.csv"}},
		{"duplicate basin id", with(map[string]string{"riv_bas_id.csv": "30\n10\n30\n"}), "riv_bas_id.csv", 3, []string{"duplicate reach id 30"}},
		{"non-numeric basin id", with(map[string]string{"riv_bas_id.csv": "30\nx10\n"}), "riv_bas_id.csv", 2, []string{`"x10"`}},
		{"basin columns", with(map[string]string{"riv_bas_id.csv": "30,1\n"}), "riv_bas_id.csv", 1, []string{"2 columns"}},
		{"k short", with(map[string]string{"k.csv": "100\n200\n"}), "k.csv", 3, []string{"2 values", "reach 30"}},
		{"k long", with(map[string]string{"k.csv": "100\n200\n300\n400\n"}), "k.csv", 4, []string{"4 values"}},
		{"k negative", with(map[string]string{"k.csv": "100\n-200\n300\n"}), "k.csv", 2, []string{"k must be", "reach 20"}},
		{"k nan", with(map[string]string{"k.csv": "100\nNaN\n300\n"}), "k.csv", 2, []string{"k must be"}},
		{"k text", with(map[string]string{"k.csv": "100\nfast\n300\n"}), "k.csv", 2, []string{`"fast"`}},
		{"x high", with(map[string]string{"x.csv": "0.1\n0.2\n0.51\n"}), "x.csv", 3, []string{"[0, 0.5]"}},
		{"x negative", with(map[string]string{"x.csv": "-0.1\n0.2\n0.3\n"}), "x.csv", 1, []string{"[0, 0.5]"}},
		{"x short", with(map[string]string{"x.csv": "0.1\n"}), "x.csv", 2, []string{"1 values"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadRAPID(writeFiles(t, c.files))
			wantParseError(t, err, c.file, c.line, c.frags...)
		})
	}
	// Missing files are plain errors naming the path.
	_, err := ReadRAPID(writeFiles(t, with(nil, "k.csv")))
	if err == nil || !strings.Contains(err.Error(), "k.csv") {
		t.Fatalf("missing k.csv: %v", err)
	}
}

func TestParseConnectIDsAsFloats(t *testing.T) {
	c, err := ParseConnect(strings.NewReader("10.0,30.0,0,0\n30,-1,1,10\n"), "c")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.IDs, []int64{10, 30}) {
		t.Fatal(c.IDs)
	}
	_, err = ParseConnect(strings.NewReader("10.5,30,0,0\n"), "c")
	if err == nil {
		t.Fatal("fractional id accepted")
	}
}

func TestReadRAPIDCRLFCopyOfReal(t *testing.T) {
	// The real files already use CRLF; a copy with LF must read the same.
	dir := t.TempDir()
	for _, f := range []string{"rapid_connect.csv", "riv_bas_id.csv", "k.csv", "x.csv"} {
		b, err := os.ReadFile(filepath.Join(xx9, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), []byte(strings.ReplaceAll(string(b), "\r\n", "\n")), 0o644)
	}
	a, err := ReadRAPID(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ReadRAPID(xx9)
	if !slices.Equal(a.K, b.K) || !slices.Equal(a.Network.IDs(), b.Network.IDs()) {
		t.Fatal("LF and CRLF differ")
	}
}

// TestReadRAPIDTrailingCommas: a single empty trailing field (a comma at
// the end of a line, possibly followed by spaces or CR) is tolerated in
// every RAPID file; lines with and without it may mix.
func TestReadRAPIDTrailingCommas(t *testing.T) {
	dir := writeFiles(t, with(map[string]string{
		"rapid_connect.csv": "10,30,0,0,0,\r\n20,30,0,0,0, \r\n30,-1,2,10,20\r\n",
		"riv_bas_id.csv":    "30,\n10 , \n20\n",
		"k.csv":             "100,\n200\t,\n300,\n",
		"x.csv":             "0.1,\r\n0.2,\r\n0.3\r\n",
	}))
	r, err := ReadRAPID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Network.IDs(), []int64{30, 10, 20}) || !slices.Equal(r.K, []float64{300, 100, 200}) ||
		!slices.Equal(r.X, []float64{0.3, 0.1, 0.2}) || len(r.Warnings) != 0 {
		t.Fatalf("ids %v k %v x %v warnings %v", r.Network.IDs(), r.K, r.X, r.Warnings)
	}

	// The real folder with a comma appended to every line reads the same.
	dir = t.TempDir()
	for _, f := range []string{"rapid_connect.csv", "riv_bas_id.csv", "k.csv", "x.csv", filepath.Base(qinitFile)} {
		b, err := os.ReadFile(filepath.Join(xx9, f))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(strings.TrimRight(string(b), "\r\n"), "\r\n", ",\r\n") + ",\r\n"
		os.WriteFile(filepath.Join(dir, f), []byte(s), 0o644)
	}
	a, err := ReadRAPID(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ReadRAPID(xx9)
	if !slices.Equal(a.K, want.K) || !slices.Equal(a.X, want.X) || !slices.Equal(a.Network.IDs(), want.Network.IDs()) ||
		!slices.Equal(a.ConnectIDs, want.ConnectIDs) || len(a.Warnings) != 0 {
		t.Fatal("trailing commas change the real folder")
	}
	qa, err := ReadQinit(filepath.Join(dir, filepath.Base(qinitFile)), a)
	if err != nil {
		t.Fatal(err)
	}
	qw, _ := ReadQinit(qinitFile, want)
	if !slices.Equal(qa, qw) {
		t.Fatalf("qinit %v, want %v", qa, qw)
	}
	// Header form.
	var b strings.Builder
	b.WriteString("rivid,qinit,\n")
	for i, id := range want.Network.IDs() {
		b.WriteString(itoa(id) + "," + ftoa(qw[i]) + ", \n")
	}
	qh, err := ParseQinit(strings.NewReader(b.String()), "q.csv", want)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(qh, qw) {
		t.Fatalf("header form %v, want %v", qh, qw)
	}
}

// TestEmptyFieldErrors: empty fields other than one trailing field are
// errors at their line and column.
func TestEmptyFieldErrors(t *testing.T) {
	r, err := ReadRAPID(xx9)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file, in  string
		line, col int
		frag      string
	}{
		{"rapid_connect.csv", "10,,0,0,0\n", 1, 2, "empty field"},
		{"rapid_connect.csv", "10,30,0,0,0\n20,30,0,,0,\n", 2, 4, "empty field"},
		{"rapid_connect.csv", ",30,0,0,0\n", 1, 1, "empty field"},
		{"rapid_connect.csv", "10,30,0,0,0,,\n", 1, 6, "empty field"},
		{"rapid_connect.csv", "10,30,0,0,0\n20,30,0,0,0,,\n", 2, 0, "6 columns, earlier lines have 5"},
		{"rapid_connect.csv", "10,30,0,0,0\n20,30,0,0,0 , ,\n", 2, 0, "6 columns, earlier lines have 5"},
		{"riv_bas_id.csv", "30\n,\n", 2, 1, "empty field"},
		{"riv_bas_id.csv", "30\n,10\n", 2, 0, "2 columns"},
		{"riv_bas_id.csv", "30,,\n", 1, 0, "2 columns"},
		{"k.csv", "1\n,\n", 2, 1, "empty field"},
		{"k.csv", "1\n2,,\n", 2, 0, "2 columns"},
		{"qinit.csv", "rivid,qinit\n17880258,,\n", 2, 2, "empty field"},
		{"qinit.csv", "rivid,qinit\n17880258,1\n,1,\n", 3, 1, "empty field"},
		{"qinit.csv", "1\n,\n", 2, 1, "empty field"},
	}
	for _, c := range cases {
		var err error
		switch c.file {
		case "rapid_connect.csv":
			_, err = ParseConnect(strings.NewReader(c.in), c.file)
		case "riv_bas_id.csv":
			_, _, err = ParseBasinIDs(strings.NewReader(c.in), c.file)
		case "k.csv":
			_, _, err = ParseValues(strings.NewReader(c.in), c.file)
		default:
			_, err = ParseQinit(strings.NewReader(c.in), c.file, r)
		}
		wantParseError(t, err, c.file, c.line, c.frag)
		if pe := err.(*ParseError); pe.Column != c.col {
			t.Errorf("%s %q: column %d, want %d: %v", c.file, c.in, pe.Column, c.col, err)
		}
	}
}
