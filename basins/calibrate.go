package basins

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// Files of a calibration job.
const (
	// ObservedFile is a basin's cut of an observed file for all basins,
	// in its task folder.
	ObservedFile = "observed.csv"
	// ReportFile is the per-gauge scores `diffroute calibrate` writes.
	ReportFile = "report.csv"
	// SummaryFile is the gathered report.csv of every basin, with a basin
	// column first, in the job folder.
	SummaryFile = "summary.csv"
	// calibrateTemp is where a calibration writes before its files are
	// moved into the task folder.
	calibrateTemp = ".calibrate.tmp"
)

// IsCalibration reports whether the job's tasks are calibrations.
func (j *Job) IsCalibration() bool { return j.Kind == KindCalibrate }

// command is the diffroute subcommand each task runs.
func (j *Job) command() string {
	if j.IsCalibration() {
		return KindCalibrate
	}
	return KindRoute
}

// sharedObserved reports whether name is one observed file for all basins
// rather than a file name found in each basin's folder: it names no
// {basin}, is not in the first basin's folder, and exists as a file.
func sharedObserved(name string, list []Basin) bool {
	if strings.Contains(name, "{basin}") || len(list) == 0 {
		return false
	}
	if !filepath.IsAbs(name) {
		for _, dir := range []string{list[0].Dir, list[0].RAPID} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
				return false
			}
		}
	}
	fi, err := os.Stat(name)
	return err == nil && fi.Mode().IsRegular()
}

// observedCut is one observed file for all basins, cut per basin by the
// reach ids of its network.
type observedCut struct {
	path string
	x    *diffroute.DataTensor
	used []string // basin of each gauge ("" while none)
}

func readObservedCut(path string) (*observedCut, error) {
	x, err := data.ReadSeries(path, nil)
	if err != nil {
		return nil, fmt.Errorf("observed discharge: %w", err)
	}
	if x.N == 0 {
		return nil, fmt.Errorf("%s: no gauges", path)
	}
	return &observedCut{path: path, x: x, used: make([]string, x.N)}, nil
}

// write writes the gauges of net to path (CSV time,<rivid>,…) and returns
// path; a basin without gauges, or a gauge in two basins, is an error.
func (c *observedCut) write(net *diffroute.Network, basin, path string) (string, error) {
	var ids []int64
	for k, id := range c.x.IDs {
		if _, ok := net.Index(id); !ok {
			continue
		}
		if c.used[k] != "" {
			return "", fmt.Errorf("%s: gauge reach %d lies in basins %s and %s: reach ids must be unique across the basins", c.path, id, c.used[k], basin)
		}
		c.used[k] = basin
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("basin %s: none of the %d gauges of %s lies in its network; leave it out with --only", basin, c.x.N, c.path)
	}
	sub, err := c.x.SelectIDs(ids)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, data.WriteCSVTableFile(path, sub)
}

// allUsed fails when a gauge lies in none of the basins.
func (c *observedCut) allUsed() error {
	var left []string
	for k, b := range c.used {
		if b == "" {
			left = append(left, strconv.FormatInt(c.x.IDs[k], 10))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("%s: gauge reach %s lies in none of the basins", c.path, shortList(left, 10))
	}
	return nil
}

// finishCalibration moves a finished calibration's files from its temporary
// folder into the task folder (each by rename) and returns the parameter
// file the record names: k.csv for Muskingum, else params.csv.
func finishCalibration(tmp, dir string) (string, error) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return "", err
		}
	}
	os.RemoveAll(tmp)
	for _, name := range []string{data.RAPIDKFile, "params.csv"} {
		if fileExists(filepath.Join(dir, name)) {
			if !fileExists(filepath.Join(dir, ReportFile)) {
				return "", errors.New("calibrate wrote no " + ReportFile)
			}
			return filepath.Join(dir, name), nil
		}
	}
	return "", errors.New("calibrate wrote no parameter file (k.csv or params.csv)")
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// calibrationRecord describes a finished calibration: its parameter file
// (size, sha256) and the number of gauges of its report.
func (j *Job) calibrationRecord(i int, params string, secs float64, rss int64) (*Record, error) {
	t := &j.Tasks[i]
	sum, n, err := fileSHA256(params)
	if err != nil {
		return nil, err
	}
	rows, err := readReport(filepath.Join(j.taskDir(i), ReportFile))
	if err != nil {
		return nil, err
	}
	rel, _ := filepath.Rel(j.Out, params)
	r := &Record{Basin: t.Basin, Member: t.Member, Reaches: t.Reaches, Steps: t.Steps, File: filepath.ToSlash(rel),
		Bytes: n, SHA256: sum, PeakRSS: rss, Seconds: secs, Gauges: len(rows) - 1}
	r.Host, _ = os.Hostname()
	return r, nil
}

// readReport reads a report.csv: header and rows.
func readReport(path string) ([][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) == 0 || len(rows[0]) < 3 || rows[0][0] != "rivid" {
		return nil, fmt.Errorf("%s: not a calibration report (header rivid,…)", path)
	}
	return rows, nil
}

// writeSummary gathers every basin's report.csv into summary.csv: the
// basin, then the report's columns (per gauge: NSE and KGE before and
// after calibration, in training and validation).
func (j *Job) writeSummary() error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	var header []string
	for i := range j.Tasks {
		path := filepath.Join(j.taskDir(i), ReportFile)
		rows, err := readReport(path)
		if err != nil {
			return err
		}
		if header == nil {
			header = rows[0]
			w.Write(append([]string{"basin"}, header...))
		} else if !slices.Equal(header, rows[0]) {
			return fmt.Errorf("%s: its columns differ from the other basins' reports", path)
		}
		for _, r := range rows[1:] {
			w.Write(append([]string{j.Tasks[i].Name()}, r...))
		}
	}
	w.Flush()
	return writeFileAtomic(filepath.Join(j.Out, SummaryFile), b.Bytes())
}

// CalibrationScores are the median NSE over a calibration job's gauges
// before and after, from summary.csv (validation when the reports have
// it, else training), and the number of gauges.
func (j *Job) CalibrationScores() (before, after float64, gauges int, err error) {
	rows, err := readReportFile(filepath.Join(j.Out, SummaryFile))
	if err != nil {
		return 0, 0, 0, err
	}
	col := func(name string) int { return slices.Index(rows[0], name) }
	bi, ai := col("nse_valid_before"), col("nse_valid_after")
	if bi < 0 || ai < 0 || len(rows) < 2 || rows[1][bi] == "" {
		bi, ai = col("nse_train_before"), col("nse_train_after")
	}
	if bi < 0 || ai < 0 {
		return 0, 0, 0, fmt.Errorf("%s: no NSE columns", SummaryFile)
	}
	var bs, as []float64
	for _, r := range rows[1:] {
		if x, err := strconv.ParseFloat(r[bi], 64); err == nil {
			bs = append(bs, x)
		}
		if x, err := strconv.ParseFloat(r[ai], 64); err == nil {
			as = append(as, x)
		}
	}
	return median(bs), median(as), len(rows) - 1, nil
}

func readReportFile(path string) ([][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return csv.NewReader(bytes.NewReader(b)).ReadAll()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
