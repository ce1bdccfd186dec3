package runspec

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Limits are the container's resource limits, already parsed from the flags (zero: no limit).
type Limits struct {
	Memory     int64 // --memory, bytes
	MemorySwap int64 // --memory-swap, bytes of memory plus swap; -1: unlimited swap
	CPUs       float64
	CPUShares  uint64
	PidsLimit  int64 // > 0: at most this many; -1: unlimited
	CpusetCpus string
}

// Bounds the kernel (or Docker, for memory) puts on the limits.
const (
	minMemory    = 6 << 20 // Docker's floor: less cannot even start a process
	cpuPeriod    = 100000  // µs, Docker's --cpus period
	minCPUQuota  = 1000    // µs: the kernel refuses a smaller cfs_quota_us
	minCPUShares = 2
	maxCPUShares = 262144
)

// resources is the spec's LinuxResources for the limits and device rules. Errors name the flag
// and value, the way Docker words them.
func resources(l Limits, devices []specs.LinuxDeviceCgroup) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{Devices: devices}
	mem, err := memory(l)
	if err != nil {
		return nil, err
	}
	r.Memory = mem
	cpu, err := cpu(l)
	if err != nil {
		return nil, err
	}
	r.CPU = cpu
	switch {
	case l.PidsLimit > 0:
		r.Pids = &specs.LinuxPids{Limit: &l.PidsLimit}
	case l.PidsLimit < -1:
		return nil, fmt.Errorf("--pids-limit %d: want a positive number, or 0 or -1 for no limit", l.PidsLimit)
	}
	return r, nil
}

// memory maps --memory and --memory-swap as Docker does: the swap value is memory plus swap,
// and with --memory alone the container may swap as much again as its memory limit.
func memory(l Limits) (*specs.LinuxMemory, error) {
	switch {
	case l.Memory < 0:
		return nil, fmt.Errorf("--memory %s: must not be negative", formatSize(l.Memory))
	case l.Memory > 0 && l.Memory < minMemory:
		return nil, fmt.Errorf("--memory %s: minimum memory limit allowed is 6MB", formatSize(l.Memory))
	case l.MemorySwap < -1:
		return nil, fmt.Errorf("--memory-swap %s: want a size, or -1 for unlimited swap", formatSize(l.MemorySwap))
	case l.MemorySwap != 0 && l.Memory == 0:
		return nil, fmt.Errorf("--memory-swap %s: you should always set the memory limit (--memory) when using --memory-swap", formatSize(l.MemorySwap))
	case l.MemorySwap > 0 && l.MemorySwap < l.Memory:
		return nil, fmt.Errorf("--memory-swap %s: minimum memoryswap limit should be larger than memory limit (--memory %s)",
			formatSize(l.MemorySwap), formatSize(l.Memory))
	case l.Memory == 0:
		return nil, nil
	}
	limit, swap := l.Memory, l.MemorySwap
	if swap == 0 {
		swap = 2 * limit
	}
	return &specs.LinuxMemory{Limit: &limit, Swap: &swap}, nil
}

// cpu maps --cpus to a CFS quota over Docker's 100 ms period, --cpu-shares to shares and
// --cpuset-cpus to cpus.
func cpu(l Limits) (*specs.LinuxCPU, error) {
	c := &specs.LinuxCPU{}
	if l.CPUs != 0 {
		n := runtime.NumCPU()
		quota := int64(math.Round(l.CPUs * cpuPeriod))
		if math.IsNaN(l.CPUs) || l.CPUs < 0 || quota < minCPUQuota || l.CPUs > float64(n) {
			return nil, fmt.Errorf("--cpus %s: range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available",
				strconv.FormatFloat(l.CPUs, 'f', -1, 64), n, n)
		}
		period := uint64(cpuPeriod)
		c.Quota, c.Period = &quota, &period
	}
	if l.CPUShares != 0 {
		if l.CPUShares < minCPUShares || l.CPUShares > maxCPUShares {
			return nil, fmt.Errorf("--cpu-shares %d: want %d to %d (the kernel's range), or 0 for the default",
				l.CPUShares, minCPUShares, maxCPUShares)
		}
		shares := l.CPUShares
		c.Shares = &shares
	}
	if l.CpusetCpus != "" {
		if err := checkCpuset(l.CpusetCpus); err != nil {
			return nil, err
		}
		c.Cpus = l.CpusetCpus
	}
	if c.Quota == nil && c.Shares == nil && c.Cpus == "" {
		return nil, nil
	}
	return c, nil
}

// checkCpuset checks a list like "0-2,5" and that this host has those CPUs online.
func checkCpuset(list string) error {
	want, err := parseCPUList(list)
	if err != nil {
		return fmt.Errorf("--cpuset-cpus %q: %w", list, err)
	}
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil // the kernel will judge
	}
	online := strings.TrimSpace(string(b))
	have, err := parseCPUList(online)
	if err != nil {
		return nil
	}
	for cpu := range want {
		if !have[cpu] {
			return fmt.Errorf("--cpuset-cpus %q: requested CPUs are not available, available: %s", list, online)
		}
	}
	return nil
}

// parseCPUList parses the kernel's CPU list format ("0-3,7"), as cpuset.cpus takes it.
func parseCPUList(list string) (map[int]bool, error) {
	set := map[int]bool{}
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= 1<<16 {
			return nil, fmt.Errorf("invalid CPU list item %q (want N or N-M, comma separated)", part)
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	return set, nil
}

// formatSize writes a byte count the way the flags take it: "16m" when exact, else the bytes.
func formatSize(n int64) string {
	if n <= 0 {
		return strconv.FormatInt(n, 10)
	}
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"g", 30}, {"m", 20}, {"k", 10}} {
		if n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
