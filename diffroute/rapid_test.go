package diffroute

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The real 9-reach basin from RAPIDpy's tests with RAPID's own output; the
// data package has the real readers, this file parses the small CSV copies
// inline so the core's tests stand alone.
const xx9 = "../testdata/rapid_xx9"

func readLines(t *testing.T, name string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(xx9, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			rows = append(rows, strings.Split(s, ","))
		}
	}
	return rows
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// xx9Table reads a `time,<id>,…` CSV as a tensor.
func xx9Table(t *testing.T, name string, scale float64) *DataTensor {
	rows := readLines(t, name)
	var ids []int64
	for _, h := range rows[0][1:] {
		ids = append(ids, int64(atof(t, h)))
	}
	x := NewDataTensor(1, ids, len(rows)-1)
	for q, row := range rows[1:] {
		for i, s := range row[1:] {
			x.Set(0, i, q, float32(atof(t, s)*scale))
		}
	}
	return x
}

// xx9 returns the basin network (riv_bas_id order) and its Muskingum
// parameters in units of the 3-hour runoff step.
func xx9Network(t *testing.T) (*Network, Params, []float64) {
	const step = 10800.0
	conn := readLines(t, "rapid_connect.csv")
	k, x := readLines(t, "k.csv"), readLines(t, "x.csv")
	qinit := readLines(t, "qinit_erai_t511_3hr_20030121to20030122.csv")
	down := map[int64]int64{}
	kOf, xOf, qOf := map[int64]float64{}, map[int64]float64{}, map[int64]float64{}
	for j, row := range conn {
		id := int64(atof(t, row[0]))
		down[id] = int64(atof(t, row[1]))
		kOf[id], xOf[id], qOf[id] = atof(t, k[j][0])/step, atof(t, x[j][0]), atof(t, qinit[j][0])
	}
	var ids, downs []int64
	p := Params{}
	var q0 []float64
	for _, row := range readLines(t, "riv_bas_id.csv") {
		id := int64(atof(t, row[0]))
		ids, downs = append(ids, id), append(downs, down[id])
		p["k"], p["x"] = append(p["k"], kOf[id]), append(p["x"], xOf[id])
		q0 = append(q0, qOf[id])
	}
	net, err := NewNetwork(ids, downs)
	if err != nil {
		t.Fatal(err)
	}
	return net, p, q0
}

// relErrVsRAPID returns the max error relative to each reach's peak.
func relErrVsRAPID(t *testing.T, got, want *DataTensor) float64 {
	t.Helper()
	w, err := want.SelectIDs(got.IDs)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := 0; i < got.N; i++ {
		peak := 1e-30
		for _, v := range w.Series(0, i) {
			peak = max(peak, math.Abs(float64(v)))
		}
		for q, v := range w.Series(0, i) {
			worst = max(worst, math.Abs(float64(got.At(0, i, q))-float64(v))/peak)
		}
	}
	return worst
}

func TestRecursiveMatchesRAPID(t *testing.T) {
	net, p, q0 := xx9Network(t)
	runoff := xx9Table(t, "m3_riv.csv", 1/10800.0)
	for _, c := range []struct {
		name  string
		qinit []float64
	}{{"qout_rapid.csv", nil}, {"qout_rapid_init.csv", q0}} {
		rr, err := NewRecursiveRouter(context.Background(), net, Options{Params: p, SubSteps: 12, Average: AverageStart, InitialQ: c.qinit})
		if err != nil {
			t.Fatal(err)
		}
		got, err := rr.Route(context.Background(), runoff)
		if err != nil {
			t.Fatal(err)
		}
		e := relErrVsRAPID(t, got, xx9Table(t, c.name, 1))
		t.Logf("%s: max relative error %.3g", c.name, e)
		if e > 1e-5 {
			t.Errorf("%s: max relative error %.3g > 1e-5", c.name, e)
		}
	}
}
