package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diffroute-go/route/diffroute"
)

func paramsNet(t testing.TB) *diffroute.Network {
	net, err := diffroute.NewNetwork([]int64{10, 20, 30}, []int64{20, 30, 0})
	if err != nil {
		t.Fatal(err)
	}
	return net
}

func TestReadParamsCSV(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.csv")
	os.WriteFile(path, []byte("rivid,tau,n\n30,0.3,2\n10,0.1,3\n20,0.2,4\n99,1,1\n"), 0o644)
	p := diffroute.Params{}
	if err := ReadParamsCSV(path, paramsNet(t), p); err != nil {
		t.Fatal(err)
	}
	if got := p["tau"]; got[0] != 0.1 || got[1] != 0.2 || got[2] != 0.3 {
		t.Errorf("tau by network order = %v", got)
	}
	for content, want := range map[string]string{
		"rivid,tau\n10,0.1\n20,0.2\n":              "no row for reach 30",
		"rivid,tau\n10,x\n20,1\n30,1\n":            "p.csv:2",
		"id,tau\n10,1\n":                           "header",
		"rivid,tau\n10,1,2\n":                      "fields",
		"rivid,tau\n10,NaN\n20,1\n30,1\n":          "finite",
		"rivid,tau\nten,1\n20,1\n30,1\n":           "not an integer",
		"":                                         "empty",
		"rivid,tau\n10,1\n20,1\n30,1e999\n":        "finite",
		"rivid,tau\r\n10,1\r\n20,1\r\n30,1\r\n":    "",
		"\ufeffrivid,tau\n10.0,1\n20,1\n30,1\n":    "",
		"rivid,tau,tau\n10,1,1\n20,1,1\n30,1,1\n":  "repeated",
		"rivid,,tau\n10,1,1\n20,1,1\n30,1,1\n":     "empty",
		"rivid,tau\n10,1\n20,1\n10,2\n30,1\n":      "already given on line 2",
		"rivid" + strings.Repeat(",p", 100) + "\n": "parameter columns",
		"rivid,tau\n10.5,1\n20,1\n30,1\n":          "not an integer",
	} {
		os.WriteFile(path, []byte(content), 0o644)
		err := ReadParamsCSV(path, paramsNet(t), diffroute.Params{})
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", content, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: error %v, want mention of %q", content, err, want)
		}
	}
}

func FuzzReadParamsCSV(f *testing.F) {
	f.Add([]byte("rivid,tau,n\n30,0.3,2\n10,0.1,3\n20,0.2,4\n"))
	f.Add([]byte("rivid,tau\n10,1\n"))
	f.Add([]byte("rivid\n"))
	dir := f.TempDir()
	net := paramsNet(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "p.csv")
		os.WriteFile(path, b, 0o644)
		p := diffroute.Params{}
		if err := ReadParamsCSV(path, net, p); err == nil {
			for name, v := range p {
				if len(v) != net.Len() {
					t.Fatalf("parameter %s has %d values", name, len(v))
				}
			}
		}
	})
}
