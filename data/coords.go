package data

import (
	"bytes"
	"os"
	"path/filepath"
)

// RAPIDCoordsFile is RAPID's table of reach positions: id, latitude,
// longitude and elevation (RAPIDpy's comid_lat_lon_z.csv), with or without a
// header.
const RAPIDCoordsFile = "comid_lat_lon_z.csv"

// ReadCoords reads a comid_lat_lon_z.csv table. Errors name the file and
// line.
func ReadCoords(path string) (map[int64]LatLon, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines, err := readLines(bytes.NewReader(b), path)
	if err != nil {
		return nil, err
	}
	if len(lines) > 0 && hasHeader(lines[0].text) {
		lines = lines[1:]
	}
	out := make(map[int64]LatLon, len(lines))
	for _, ln := range lines {
		f := splitRecord(ln.text)
		if len(f) < 3 {
			return nil, perr(path, ln.n, 0, "%d columns, want id, lat, lon[, z]", len(f))
		}
		id, err := parseID(f[0])
		if err != nil {
			return nil, perr(path, ln.n, 1, "%v", err)
		}
		lat, err1 := parseFloat(f[1])
		lon, err2 := parseFloat(f[2])
		if err1 != nil || err2 != nil || !(lat >= -90 && lat <= 90) || !(lon >= -360 && lon <= 360) {
			return nil, perr(path, ln.n, 2, "latitude %q, longitude %q: want degrees", f[1], f[2])
		}
		if _, dup := out[id]; dup {
			return nil, perr(path, ln.n, 1, "reach %d given twice", id)
		}
		out[id] = LatLon{Lat: lat, Lon: lon}
	}
	return out, nil
}

// ReadRAPIDCoords reads the coordinates table of a RAPID folder, or returns
// nil when the folder has none.
func ReadRAPIDCoords(dir string) (map[int64]LatLon, error) {
	p := filepath.Join(dir, RAPIDCoordsFile)
	if _, err := os.Stat(p); err != nil {
		return nil, nil
	}
	return ReadCoords(p)
}
