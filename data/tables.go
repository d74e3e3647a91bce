package data

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/diffroute-go/route/diffroute"
)

// ReadParamsCSV reads per-reach parameters (header rivid,<name>,…) into p,
// requiring a row for every reach of the network.
func ReadParamsCSV(path string, net *diffroute.Network, p diffroute.Params) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := strings.TrimPrefix(string(raw), "\ufeff") // a byte-order mark from spreadsheets
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return fmt.Errorf("%s: empty file", path)
	}
	header := strings.Split(lines[0], ",")
	if strings.TrimSpace(header[0]) != "rivid" || len(header) < 2 {
		return fmt.Errorf("%s:1: header must be rivid,<param>,…", path)
	}
	// Names are checked before anything is sized by them: IRFs take a
	// handful of parameters, never thousands.
	if len(header)-1 > 64 {
		return fmt.Errorf("%s:1: %d parameter columns; IRFs take a few", path, len(header)-1)
	}
	seen := map[string]bool{}
	for k, h := range header[1:] {
		name := strings.TrimSpace(h)
		if name == "" || seen[name] {
			return fmt.Errorf("%s:1: column %d: parameter name %q is empty or repeated", path, k+2, name)
		}
		seen[name] = true
	}
	cols := make([][]float64, len(header)-1)
	for k := range cols {
		cols[k] = make([]float64, net.Len())
		for i := range cols[k] {
			cols[k][i] = math.NaN()
		}
	}
	rowOf := map[int64]int{}
	for ln, line := range lines[1:] {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != len(header) {
			return fmt.Errorf("%s:%d: %d fields, header has %d", path, ln+2, len(f), len(header))
		}
		idf, err := strconv.ParseFloat(strings.TrimSpace(f[0]), 64)
		if err != nil || idf != math.Trunc(idf) || math.Abs(idf) > 1<<53 {
			return fmt.Errorf("%s:%d: rivid %q is not an integer", path, ln+2, f[0])
		}
		id := int64(idf) // ids written as 10.0 are accepted, as data's readers do
		if prev, dup := rowOf[id]; dup {
			return fmt.Errorf("%s:%d: reach %d already given on line %d", path, ln+2, id, prev)
		}
		rowOf[id] = ln + 2
		i, ok := net.Index(id)
		if !ok {
			continue // reaches outside the basin
		}
		for k, s := range f[1:] {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%s:%d: %s = %q is not a finite number", path, ln+2, strings.TrimSpace(header[k+1]), s)
			}
			cols[k][i] = v
		}
	}
	for k, name := range header[1:] {
		for i, v := range cols[k] {
			if math.IsNaN(v) {
				return fmt.Errorf("%s: no row for reach %d", path, net.ID(i))
			}
		}
		p[strings.TrimSpace(name)] = cols[k]
	}
	return nil
}

// ReadIDList reads one reach id per line; each must be a reach of net,
// listed once.
func ReadIDList(path string, net *diffroute.Network) ([]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []int64
	lines := map[int64]int{}
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not a reach id", path, ln, s)
		}
		if _, ok := net.Index(id); !ok {
			return nil, fmt.Errorf("%s:%d: reach %d is not in the network", path, ln, id)
		}
		if first, dup := lines[id]; dup {
			return nil, fmt.Errorf("%s:%d: reach %d is listed twice (first on line %d)", path, ln, id, first)
		}
		lines[id] = ln
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no reach ids", path)
	}
	return ids, nil
}

// ReadParamsFrom reads the parameters a calibrate run wrote into dir into
// p: k.csv (seconds) and x.csv in rapid_connect.csv order for Muskingum,
// params.csv (rivid,<name>,… in runoff steps) otherwise.
func ReadParamsFrom(dir, irf string, cfg *RAPID, step time.Duration, p diffroute.Params) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("--params-from %s: no such folder", dir)
	}
	if path := filepath.Join(dir, "params.csv"); fileExists(path) {
		return ReadParamsCSV(path, cfg.Network, p)
	}
	if irf != "muskingum" {
		return fmt.Errorf("--params-from %s: no params.csv there (k.csv and x.csv are for --irf muskingum)", dir)
	}
	for _, name := range []string{"k", "x"} {
		path := filepath.Join(dir, name+".csv")
		fh, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("--params-from %s: %v", dir, err)
		}
		vals, lines, err := ParseValues(fh, path)
		fh.Close()
		if err != nil {
			return err
		}
		if len(vals) != len(cfg.ConnectIDs) {
			return fmt.Errorf("%s: %d values for the %d reaches of rapid_connect.csv", path, len(vals), len(cfg.ConnectIDs))
		}
		v := make([]float64, cfg.Network.Len())
		for c, id := range cfg.ConnectIDs {
			i, ok := cfg.Network.Index(id)
			if !ok {
				continue
			}
			x := vals[c]
			if name == "k" {
				if !(x >= 0) {
					return fmt.Errorf("%s:%d: k = %v must be ≥ 0", path, lines[c], x)
				}
				x /= step.Seconds()
			} else if !(x >= 0 && x <= 0.5) {
				return fmt.Errorf("%s:%d: x = %v must be in [0, 0.5]", path, lines[c], x)
			}
			v[i] = x
		}
		p[name] = v
	}
	return nil
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
