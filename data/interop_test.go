package data

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// debianPython is the interpreter Debian's python3-xarray and
// python3-netcdf4 install into (make test-deps installs them).
const debianPython = "/usr/bin/python3"

// xarray and netCDF4-python read our netCDF-4 output: values, CF time,
// rivid as the timeseries id, lat/lon as coordinates.
func TestNetCDF4ReadByXarray(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import xarray, netCDF4").Run(); err != nil {
		t.Skip("python3-xarray and python3-netcdf4 are not installed (make test-deps installs them)")
	}
	dir := t.TempDir()
	q := sampleDischarge(30, 50)
	coords := map[int64]LatLon{}
	for i, id := range q.IDs {
		coords[id] = LatLon{Lat: 40 + float64(i)/10, Lon: -100 + float64(i)/10}
	}
	p := filepath.Join(dir, "q.nc4")
	if err := WriteSeriesWith(p, q, &SeriesOptions{Coords: coords, Compress: 5}); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys, xarray, netCDF4
ds = xarray.open_dataset(sys.argv[1])
nc = netCDF4.Dataset(sys.argv[1])
v = nc.variables["Qout"]
print(json.dumps({
  "shape": list(ds["Qout"].shape),
  "dims": list(ds["Qout"].dims),
  "sum": float(ds["Qout"].astype("float64").sum()),
  "q_3_7": float(ds["Qout"].isel(time=3, rivid=7)),
  "rivid_7": int(ds["rivid"][7]),
  "time_0": str(ds["time"].values[0])[:19],
  "calendar": nc.variables["time"].calendar,
  "cf_role": nc.variables["rivid"].cf_role,
  "conventions": nc.Conventions,
  "lat_7": float(ds["lat"][7]), "lon_7": float(ds["lon"][7]),
  "coords": sorted(ds["Qout"].coords),
  "deflate": v.filters().get("zlib", False), "level": v.filters().get("complevel", 0),
  "chunks": list(v.chunking()) if v.chunking() != "contiguous" else [],
}))
`
	out, err := exec.Command(debianPython, "-c", script, p).CombinedOutput()
	if err != nil {
		t.Fatalf("xarray could not read the file: %v\n%s", err, out)
	}
	var got struct {
		Shape       []int    `json:"shape"`
		Dims        []string `json:"dims"`
		Coords      []string `json:"coords"`
		Sum         float64  `json:"sum"`
		Q37         float64  `json:"q_3_7"`
		Rivid7      int64    `json:"rivid_7"`
		Time0       string   `json:"time_0"`
		Calendar    string   `json:"calendar"`
		CFRole      string   `json:"cf_role"`
		Conventions string   `json:"conventions"`
		Lat7        float64  `json:"lat_7"`
		Lon7        float64  `json:"lon_7"`
		Deflate     bool     `json:"deflate"`
		Level       int      `json:"level"`
		Chunks      []int    `json:"chunks"`
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := 0.0
	for _, v := range q.Data {
		want += float64(v)
	}
	switch {
	case len(got.Shape) != 2 || got.Shape[0] != q.T || got.Shape[1] != q.N || got.Dims[0] != "time":
		t.Errorf("Qout shape %v dims %v, want [%d %d] (time, rivid)", got.Shape, got.Dims, q.T, q.N)
	case math.Abs(got.Sum-want) > 1e-6*math.Abs(want):
		t.Errorf("sum of Qout %v, want %v", got.Sum, want)
	case float32(got.Q37) != q.At(0, 7, 3) || got.Rivid7 != q.IDs[7]:
		t.Errorf("Qout[3, 7] = %v of reach %d, want %v of reach %d", got.Q37, got.Rivid7, q.At(0, 7, 3), q.IDs[7])
	case got.Time0 != "2001-01-01T00:00:00":
		t.Errorf("first time %q, want 2001-01-01T00:00:00 (CF time decoded)", got.Time0)
	case got.Calendar != "gregorian" && got.Calendar != "standard" || got.CFRole != "timeseries_id" || got.Conventions != "CF-1.8":
		t.Errorf("calendar %q, rivid cf_role %q, Conventions %q", got.Calendar, got.CFRole, got.Conventions)
	case got.Lat7 != coords[q.IDs[7]].Lat || got.Lon7 != coords[q.IDs[7]].Lon || !strings.Contains(strings.Join(got.Coords, " "), "lat"):
		t.Errorf("lat/lon of reach 7: %v, %v (coords %v), want %v", got.Lat7, got.Lon7, got.Coords, coords[q.IDs[7]])
	case !got.Deflate || got.Level != 5 || len(got.Chunks) != 2:
		t.Errorf("deflate %v level %d chunks %v, want deflate 5 and chunks", got.Deflate, got.Level, got.Chunks)
	}
}

// duckdbDir installs (or finds) DuckDB's Node.js client, or skips.
func duckdbDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the DuckDB check needs it")
	}
	out, err := exec.Command("../scripts/duckdb-install.sh").Output()
	if err != nil {
		t.Skipf("DuckDB's node client could not be installed (npm registry unreachable?): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// A real DuckDB queries our Parquet files, long and wide.
func TestParquetQueriedByDuckDB(t *testing.T) {
	ddb := duckdbDir(t)
	dir := t.TempDir()
	q := sampleDischarge(25, 60)
	long, wide := filepath.Join(dir, "long.parquet"), filepath.Join(dir, "wide.parquet")
	if err := WriteSeriesWith(long, q, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteSeriesWith(wide, q, &SeriesOptions{Layout: "wide"}); err != nil {
		t.Fatal(err)
	}
	id := q.IDs[4]
	script := filepath.Join(dir, "q.mjs")
	os.WriteFile(script, []byte(`
import { DuckDBInstance } from '@duckdb/node-api';
const [long, wide, id] = process.argv.slice(2);
const con = await (await DuckDBInstance.create(':memory:')).connect();
const one = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJson()[0];
console.log(JSON.stringify({
  long: await one("select count(*) as n, count(distinct rivid) as reaches, sum(Q)::double as total, strftime(min(time), '%Y-%m-%d') as first from '" + long + "'"),
  reach: await one("select sum(Q)::double as total from '" + long + "' where rivid = " + id),
  wide: await one("select count(*) as n, sum(\"" + id + "\")::double as total from '" + wide + "'"),
}));
`), 0o644)
	cmd := exec.Command("node", script, long, wide, itoa64(id))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(ddb, "node_modules"))
	// ES modules resolve packages from the script's folder: link them there.
	os.Symlink(filepath.Join(ddb, "node_modules"), filepath.Join(dir, "node_modules"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("DuckDB could not query the files: %v\n%s", err, out)
	}
	var got struct {
		Long struct {
			N, Reaches string
			Total      float64
			First      string
		}
		Reach struct{ Total float64 }
		Wide  struct {
			N     string
			Total float64
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	total, reach := 0.0, 0.0
	for i := 0; i < q.N; i++ {
		for _, v := range q.Series(0, i) {
			total += float64(v)
			if q.IDs[i] == id {
				reach += float64(v)
			}
		}
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Abs(b) }
	if got.Long.N != itoa64(int64(q.N*q.T)) || got.Long.Reaches != itoa64(int64(q.N)) || !near(got.Long.Total, total) || got.Long.First != "2001-01-01" {
		t.Errorf("long table: %+v, want %d rows, %d reaches, total %v, first 2001-01-01", got.Long, q.N*q.T, q.N, total)
	}
	if !near(got.Reach.Total, reach) || got.Wide.N != itoa64(int64(q.T)) || !near(got.Wide.Total, reach) {
		t.Errorf("reach %d: long %v, wide %v over %s rows; want %v over %d", id, got.Reach.Total, got.Wide.Total, got.Wide.N, reach, q.T)
	}
}

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }

// Ensembles with xarray: runoff(member, time, rivid) written by xarray
// (classic and netCDF-4) reads as the batch, member by member; our
// Qout(member, time, rivid) reads back in xarray value for value.
func TestEnsembleNCWithXarray(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import xarray, netCDF4").Run(); err != nil {
		t.Skip("python3-xarray and python3-netcdf4 are not installed (make test-deps installs them)")
	}
	dir := t.TempDir()
	const B, T, N = 3, 7, 5
	script := `
import sys, numpy as np, pandas as pd, xarray as xr
m, t, r = np.meshgrid(np.arange(3), np.arange(7), np.arange(5), indexing="ij")
v = (100 * m + 10 * t + r).astype("float32")
ds = xr.Dataset({"runoff": (("member", "time", "rivid"), v, {"units": "m3/s"})},
    coords={"member": [1, 2, 3], "time": pd.date_range("2020-01-01", periods=7, freq="D"), "rivid": [11, 12, 13, 14, 15]})
ds.to_netcdf(sys.argv[1] + "/x.nc", format="NETCDF3_CLASSIC")
ds.to_netcdf(sys.argv[1] + "/x.nc4", format="NETCDF4")
`
	if out, err := exec.Command(debianPython, "-c", script, dir).CombinedOutput(); err != nil {
		t.Fatalf("xarray could not write: %v\n%s", err, out)
	}
	for _, name := range []string{"x.nc", "x.nc4"} {
		p := filepath.Join(dir, name)
		x, err := ReadRunoffNC(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if x.B != B || x.T != T || x.N != N || x.Step != 24*time.Hour {
			t.Fatalf("%s: read %d×%d×%d, step %v", name, x.B, x.T, x.N, x.Step)
		}
		for b := 0; b < B; b++ {
			for i := 0; i < N; i++ {
				for s := 0; s < T; s++ {
					if got, want := x.At(b, i, s), float32(100*b+10*s+i); got != want {
						t.Fatalf("%s: member %d step %d reach %d: %v, want %v", name, b, s, i, got, want)
					}
				}
			}
		}
		one, err := ReadRunoffNC(p, &NCOptions{Member: 2, TimeStart: 3, TimeCount: 2})
		if err != nil {
			t.Fatal(err)
		}
		if one.B != 1 || one.T != 2 || one.At(0, 4, 1) != 100+40+4 {
			t.Errorf("%s: member 2, steps 3-4: %d×%d, reach 15 step 4 = %v", name, one.B, one.T, one.At(0, 4, 1))
		}
		// Written back as Qout(member, time, rivid) and read by xarray.
		out := filepath.Join(dir, "q_"+name)
		x.Units = "m3/s"
		if err := WriteEnsembleNC(out, x, false); err != nil {
			t.Fatal(err)
		}
		check := `
import sys, xarray as xr
q = xr.open_dataset(sys.argv[1])["Qout"]
assert q.dims == ("member", "time", "rivid"), q.dims
assert q.shape == (3, 7, 5), q.shape
print(float(q.isel(member=2, time=6, rivid=4)), int(q["rivid"][4]), str(q["time"].values[6])[:10])
`
		got, err := exec.Command(debianPython, "-c", check, out).CombinedOutput()
		if err != nil {
			t.Fatalf("xarray could not read %s: %v\n%s", out, err, got)
		}
		if f := strings.Fields(strings.TrimSpace(string(got))); len(f) != 3 || f[0] != "264.0" || f[1] != "15" || f[2] != "2020-01-07" {
			t.Errorf("xarray read %s as %q, want 264.0 15 2020-01-07", out, got)
		}
	}
}
