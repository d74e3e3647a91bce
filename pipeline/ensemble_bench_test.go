package pipeline

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/diffroute-go/route/data"
)

// cpuTime is the process's user+system CPU time: on a shared machine, CPU
// seconds vary far less than wall seconds.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeMembers writes n scaled copies of the bundled basin's runoff as
// dir/member_NN.nc.
func writeMembers(tb testing.TB, dir string, n int) {
	x, err := data.ReadRunoffNC(filepath.Join(demoBasin, "runoff.nc"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	for m := 0; m < n; m++ {
		xm := x.Clone()
		for k := range xm.Data {
			xm.Data[k] *= float32(0.5 + 0.15*float64(m))
		}
		if err := data.WriteQoutNC(filepath.Join(dir, fmt.Sprintf("member_%02d.nc", m)), xm, &data.QoutOptions{Var: "runoff"}); err != nil {
			tb.Fatal(err)
		}
	}
}

// benchEnsemble routes 8 members of the bundled basin (2,000 reaches × 365
// days, hourly sub-steps), read and written, in one pass (singles false) or
// as 8 runs one after the other.
func benchEnsemble(b *testing.B, singles bool, chunk int) {
	dir := b.TempDir()
	const members = 8
	writeMembers(b, dir, members)
	cfg := Config{RAPID: demoBasin, SubStep: time.Hour, TimeChunk: chunk}
	ctx := context.Background()
	var cpu time.Duration
	for b.Loop() {
		c0 := cpuTime()
		if singles {
			for m := 0; m < members; m++ {
				c := cfg
				c.Runoff, c.Out = filepath.Join(dir, fmt.Sprintf("member_%02d.nc", m)), filepath.Join(dir, fmt.Sprintf("q_%02d.nc", m))
				if _, err := Run(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		} else {
			c := cfg
			c.Runoff, c.Out = filepath.Join(dir, "member_*.nc"), filepath.Join(dir, "ens.nc")
			if _, err := Run(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		cpu += cpuTime() - c0
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

func BenchmarkEnsemble8(b *testing.B)        { benchEnsemble(b, false, 0) }
func BenchmarkEnsemble8Singles(b *testing.B) { benchEnsemble(b, true, 0) }
func BenchmarkEnsemble8Chunked(b *testing.B) { benchEnsemble(b, false, 73) }
