//go:build !cuda

package gpu

import (
	"strings"
	"testing"

	"github.com/diffroute-go/route/diffroute"
	"github.com/diffroute-go/route/gpu/internal/gputest"
)

// TestPlanDeviceBoundsEmulatedRun checks MemoryModel, through diffroute.PlanDevice, against what
// the staged GPU backend allocates: a staged run on the emulated device,
// with the plan's schedule, host time chunk and device chunk, must peak
// below the predicted device memory (and not far below it).
func TestPlanDeviceBoundsEmulatedRun(t *testing.T) {
	net := diffroute.SyntheticNetwork(3000, 51)
	o := diffroute.Options{Params: gputest.RandomParams(gputest.NewRand(51), "muskingum", net.Len()), SubSteps: 3, MaxDelay: 24, Method: diffroute.Kernel}
	const T, B = 90, 2
	x := diffroute.SyntheticRunoff(net, B, T, 52)
	for _, tc := range []struct {
		host, dev int64
		pixels    int64
	}{{40 << 20, 8 << 20, 0}, {30 << 20, 6 << 20, 20000}, {1 << 30, 64 << 20, 0}} {
		p, err := diffroute.PlanDevice(net, T, B, tc.host, o, MemoryModel{Bytes: tc.dev, ResidentPixels: tc.pixels})
		if err != nil {
			t.Fatalf("host %d, device %d: %v\n%v", tc.host, tc.dev, err, p)
		}
		s := p.String()
		if !strings.Contains(s, "Device (GPU kernel method)") || !strings.Contains(s, "2 × runoff chunk") {
			t.Errorf("plan does not print the device part:\n%s", s)
		}
		d := p.Device
		if !d.Fits {
			t.Errorf("device plan does not fit %d bytes:\n%s", tc.dev, s)
		}
		cl := p.Clusters
		if cl == nil {
			if cl, err = diffroute.Schedule(net, net.Pairs(), net.Len()); err != nil {
				t.Fatal(err)
			}
		}
		dev := newEmuStaged()
		dev.pixBytes = tc.pixels * 4
		got := stagedRoute(t, o, x, cl, p.TimeChunk, false, emuCore(dev, nil, d.ChunkSteps).factory())
		want := stagedRoute(t, o, x, cl, p.TimeChunk, false, nil)
		if pr, _, _ := gputest.RelErr(got, want); pr > 1e-5 {
			t.Errorf("planned run differs from the CPU by %.3g", pr)
		}
		t.Logf("host budget %s, device %s: %d clusters, host chunk %d, device chunk %d; predicted device peak %s, emulated %s (%.0f%%)",
			mib(tc.host), mib(tc.dev), cl.Len(), p.TimeChunk, d.ChunkSteps, mib(d.Total), mib(dev.peak), 100*float64(dev.peak)/float64(d.Total))
		if dev.peak > d.Total {
			t.Errorf("emulated device peak %d bytes over the predicted %d", dev.peak, d.Total)
		}
		if dev.peak < d.Total/4 {
			t.Errorf("prediction %d bytes is more than 4× the emulated peak %d", d.Total, dev.peak)
		}
	}
	// A device too small for one step is an error naming the need.
	if _, err := diffroute.PlanDevice(net, T, B, 40<<20, o, MemoryModel{Bytes: 10 << 10}); err == nil {
		t.Error("no error for a 10 KiB device")
	} else {
		t.Log(err)
	}
}
