package basins

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/diffroute-go/route/data"
	"github.com/diffroute-go/route/diffroute"
)

// Manifest file names in the job folder.
const (
	ManifestCSV  = "manifest.csv"
	ManifestJSON = "manifest.json"
)

// Gather checks every task's output against its record (size and sha256)
// and writes the manifest (manifest.csv and manifest.json: basin, member,
// reaches, steps, time range, file, bytes, sha256, peak RSS). With merge it
// also writes the discharge of all basins as one file per member (Qout.nc,
// or Qout_<member>.nc), basins in name order, each basin's reaches in its
// own order. For a calibration job it writes summary.csv instead: every
// basin's per-gauge scores before and after. It fails, naming them, when
// tasks are not done.
func (j *Job) Gather(merge bool) ([]Record, error) {
	var recs []Record
	var missing []string
	for i := range j.Tasks {
		r, ok := j.Done(i, true)
		if !ok {
			missing = append(missing, j.Tasks[i].Name())
			continue
		}
		recs = append(recs, *r)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("basins: %d of %d tasks are not done: %s (see 'diffroute jobs status %s')",
			len(missing), len(j.Tasks), shortList(missing, 10), j.Out)
	}
	if j.IsCalibration() && merge {
		return nil, errors.New("basins: a calibration job has no discharge to merge")
	}
	if err := j.writeManifest(recs); err != nil {
		return nil, err
	}
	if j.IsCalibration() {
		return recs, j.writeSummary()
	}
	if merge {
		for _, m := range j.members() {
			if err := j.merge(m); err != nil {
				return nil, err
			}
		}
	}
	return recs, nil
}

func (j *Job) members() []string {
	if len(j.Members) == 0 {
		return []string{""}
	}
	return j.Members
}

// MergedFile is the merged output of a member ("" when the job has none).
func (j *Job) MergedFile(member string) string {
	if member == "" {
		return filepath.Join(j.Out, OutputFile)
	}
	return filepath.Join(j.Out, "Qout_"+member+".nc")
}

func (j *Job) writeManifest(recs []Record) error {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{"basin", "member", "reaches", "steps", "first", "last", "file", "bytes", "sha256", "peak_rss_bytes", "seconds"}
	if j.IsCalibration() {
		head = append(head, "gauges")
	}
	w.Write(head)
	for _, r := range recs {
		row := []string{r.Basin, r.Member, strconv.Itoa(r.Reaches), strconv.Itoa(r.Steps), r.First, r.Last, r.File,
			strconv.FormatInt(r.Bytes, 10), r.SHA256, strconv.FormatInt(r.PeakRSS, 10), strconv.FormatFloat(r.Seconds, 'f', 3, 64)}
		if j.IsCalibration() {
			row = append(row, strconv.Itoa(r.Gauges))
		}
		w.Write(row)
	}
	w.Flush()
	if err := writeFileAtomic(filepath.Join(j.Out, ManifestCSV), b.Bytes()); err != nil {
		return err
	}
	js, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(j.Out, ManifestJSON), append(js, '\n'))
}

// merge concatenates one member's basin outputs along the reaches.
func (j *Job) merge(member string) error {
	var parts []*diffroute.DataTensor
	var names []string
	n := 0
	for i := range j.Tasks {
		t := &j.Tasks[i]
		if t.Member != member {
			continue
		}
		q, err := data.ReadRunoffNC(filepath.Join(j.taskDir(i), OutputFile), &data.NCOptions{Var: "Qout"})
		if err != nil {
			return err
		}
		if len(parts) > 0 && (q.T != parts[0].T || !slices.Equal(q.Times, parts[0].Times)) {
			return fmt.Errorf("basins: cannot merge %s and %s: their time axes differ (%d and %d steps)", names[0], t.Name(), parts[0].T, q.T)
		}
		parts = append(parts, q)
		names = append(names, t.Name())
		n += q.N
	}
	ids := make([]int64, 0, n)
	seen := make(map[int64]string, n)
	for k, q := range parts {
		for _, id := range q.IDs {
			if other, dup := seen[id]; dup {
				return fmt.Errorf("basins: cannot merge: reach %d is in both %s and %s", id, other, names[k])
			}
			seen[id] = names[k]
		}
		ids = append(ids, q.IDs...)
	}
	first := parts[0]
	out := diffroute.NewDataTensor(1, ids, first.T)
	out.Times, out.Step, out.Units = first.Times, first.Step, first.Units
	off := 0
	for _, q := range parts {
		copy(out.Data[off*first.T:], q.Data)
		off += q.N
	}
	if out.Units == "" {
		out.Units = "m3 s-1"
	}
	return data.WriteQoutNC(j.MergedFile(member), out, &data.QoutOptions{
		Comment: fmt.Sprintf("%d basins merged: %s", len(parts), shortList(names, 20))})
}

func shortList(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(" and %d more", len(s)-n)
}
