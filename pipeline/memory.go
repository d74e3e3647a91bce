package pipeline

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/diffroute-go/route/diffroute"
)

// MemAvailable is the memory this process may use: MemAvailable from
// /proc/meminfo, lowered by a cgroup v2 limit (containers), or
// DIFFROUTE_MEM_AVAILABLE (bytes, e.g. "2GiB") when set; 0 when unknown.
// Run plans for half of it when runoff and discharge would not fit.
func MemAvailable() int64 {
	if v := os.Getenv("DIFFROUTE_MEM_AVAILABLE"); v != "" {
		if b, err := humanize.ParseBytes(v); err == nil {
			return int64(b)
		}
	}
	avail := int64(0)
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					avail = kb << 10
				}
			}
		}
	}
	limit, err1 := os.ReadFile("/sys/fs/cgroup/memory.max")
	used, err2 := os.ReadFile("/sys/fs/cgroup/memory.current")
	if err1 == nil && err2 == nil {
		l, e1 := strconv.ParseInt(strings.TrimSpace(string(limit)), 10, 64) // "max" means none
		u, e2 := strconv.ParseInt(strings.TrimSpace(string(used)), 10, 64)
		if e1 == nil && e2 == nil && (avail == 0 || l-u < avail) {
			avail = max(0, l-u)
		}
	}
	return avail
}

// ProcessMemory measures what this process holds now, after a garbage
// collection: the heap's live and kept bytes and, on Linux, the resident
// set and its peak so far (/proc/self/status; 0 elsewhere). A planner adds
// it to a run's own prediction (diffroute.PlanGradientIn) so that the
// prediction covers the whole process, input reading included.
func ProcessMemory() diffroute.ProcessMemory {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	pm := diffroute.ProcessMemory{HeapLive: int64(ms.HeapAlloc), HeapHeld: int64(ms.HeapSys - ms.HeapReleased)}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch f[0] {
			case "VmHWM:":
				pm.Peak = kb << 10
			case "VmRSS:":
				pm.Resident = kb << 10
			}
		}
	}
	if pm.Resident == 0 { // not Linux: the heap and a runtime baseline
		pm.Resident = pm.HeapHeld + int64(ms.Sys-ms.HeapSys)
	}
	return pm
}
