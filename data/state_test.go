package data

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/diffroute-go/route/diffroute"
	"github.com/fhs/go-netcdf/netcdf"
)

// A state routed, written, read back and restored continues the run as if
// it had never stopped.
func TestStateFileRoundTrip(t *testing.T) {
	ctx := context.Background()
	net := diffroute.SyntheticNetwork(50, 7)
	o := diffroute.Options{IRF: "hayami", Params: diffroute.Constant(net.Len(), map[string]float64{"L": 1, "D": 0.2, "c": 2}), SubSteps: 2, MaxDelay: 8, Workers: 1}
	x := diffroute.SyntheticRunoff(net, 2, 30, 3)
	rr, err := diffroute.NewRecursiveRouter(context.Background(), net, o)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := rr.Route(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	rr.Reset()
	if _, err := rr.Route(ctx, x.SliceTime(0, 12)); err != nil {
		t.Fatal(err)
	}
	s, err := rr.State()
	if err != nil {
		t.Fatal(err)
	}
	s.Time, s.Step = "2000-01-12T00:00:00Z", 24*time.Hour
	path := filepath.Join(t.TempDir(), "state.nc")
	if err := WriteStateNC(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadStateNC(path)
	if err != nil {
		t.Fatal(err)
	}
	delete(s.Conventions, "compat") // empty: not written, read back as absent
	if !reflect.DeepEqual(got, s) {
		g, w := *got, *s
		g.Vars, w.Vars = nil, nil
		t.Fatalf("state read back differs:\n got %+v\nwant %+v\nvars equal: %v", g, w, reflect.DeepEqual(got.Vars, s.Vars))
	}
	r2, _ := diffroute.NewRecursiveRouter(context.Background(), net, o)
	if err := r2.SetState(got); err != nil {
		t.Fatal(err)
	}
	y, err := r2.Route(ctx, x.SliceTime(12, 30))
	if err != nil {
		t.Fatal(err)
	}
	want := whole.SliceTime(12, 30)
	for k := range y.Data {
		if y.Data[k] != want.Data[k] {
			t.Fatalf("value %d: restarted %v, whole %v", k, y.Data[k], want.Data[k])
		}
	}
	if err := StateContinues(got, "2000-01-13T00:00:00Z", 24*time.Hour); err != nil {
		t.Errorf("contiguous runoff refused: %v", err)
	}
	for _, c := range []struct {
		first string
		step  time.Duration
		want  string
	}{
		{"2000-01-14T00:00:00Z", 24 * time.Hour, "not contiguous"},
		{"2000-01-12T03:00:00Z", 3 * time.Hour, "runoff step"},
	} {
		if err := StateContinues(got, c.first, c.step); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("runoff from %s: got %v, want an error with %q", c.first, err, c.want)
		}
	}
}

func TestStateFileRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadStateNC(m3File); err == nil || !strings.Contains(err.Error(), "not a diffroute state file") {
		t.Errorf("runoff file read as a state: %v", err)
	}
	// A newer format version is refused with a hint.
	net := diffroute.SyntheticNetwork(5, 1)
	s := &diffroute.State{Method: "recursive", IRF: "muskingum", SubSteps: 1, B: 1, IDs: net.IDs(),
		Vars: []diffroute.StateVar{{Name: "outflow", Width: 1, Data: make([]float64, 5)}}}
	path := filepath.Join(dir, "s.nc")
	if err := WriteStateNC(path, s); err != nil {
		t.Fatal(err)
	}
	func() {
		ncMu.Lock()
		defer ncMu.Unlock()
		ds, err := netcdf.OpenFile(path, netcdf.WRITE)
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		if err := ds.Attr("format_version").WriteInt64s([]int64{StateVersion + 1}); err != nil {
			t.Fatal(err)
		}
	}()
	if _, err := ReadStateNC(path); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("newer version: got %v", err)
	}
	if _, err := ReadStateNC(filepath.Join(dir, "none.nc")); err == nil {
		t.Error("missing file read")
	}
}

// A tiny netCDF-4 file declaring 2^31−1 steps is refused before anything is
// sized by its dimensions, instead of exhausting memory.
func TestNetCDF4HugeDimensionRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "huge.nc")
	func() {
		ncMu.Lock()
		defer ncMu.Unlock()
		ds, err := netcdf.CreateFile(path, netcdf.CLOBBER|netcdf.NETCDF4)
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		td, _ := ds.AddDim("time", 1<<31-1)
		rd, _ := ds.AddDim("rivid", 3)
		v, err := ds.AddVar("runoff", netcdf.FLOAT, []netcdf.Dim{td, rd})
		if err != nil {
			t.Fatal(err)
		}
		v.Attr("units").WriteBytes([]byte("m3/s"))
		iv, _ := ds.AddVar("rivid", netcdf.INT, []netcdf.Dim{rd})
		ds.EndDef()
		iv.WriteInt32s([]int32{1, 2, 3})
	}()
	st, _ := os.Stat(path)
	if st.Size() > 1<<20 {
		t.Fatalf("test file is %d bytes, not tiny", st.Size())
	}
	_, err := ReadRunoffNC(path, nil)
	if err == nil || !strings.Contains(err.Error(), "corrupt or truncated") || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a clear error naming the file", err)
	}
}
