package pipeline

import (
	"os"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
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
