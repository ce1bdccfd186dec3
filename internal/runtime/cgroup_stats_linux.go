package runtime

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReadStats samples container id, whose process is pid on the host. It reads the cgroups the
// runtime made for it where they have the numbers (a v1 hierarchy is made only for a limit, to
// keep starts fast) and sums over the container's processes in /proc for the rest. A container
// on the host's network has no network numbers of its own: they are 0.
func ReadStats(id string, pid int) (Stats, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return Stats{}, fmt.Errorf("stats of container %s: %w", id, err)
	}
	cgs := containerCgroups(id)
	procs := containerProcs(cgs, pid)
	var st Stats
	st.CPU = cpuUsage(cgs, procs)
	st.Memory, st.MemoryLimit = memoryUsage(cgs, procs)
	st.Pids = pidsCount(cgs, procs)
	st.NetRx, st.NetTx = netIO(pid)
	st.BlockRead, st.BlockWrite = blockIO(cgs, procs)
	return st, nil
}

// containerCgroups maps each controller of container id's cgroups ("memory", "cpuacct", ...;
// "" for cgroup2) to its directory.
func containerCgroups(id string) map[string]string {
	cg := existingCgroup(id)
	cgs := map[string]string{}
	for _, c := range v1Controllers {
		if d := cg.v1[v1Hierarchy(c)]; d != "" {
			cgs[c] = d
		}
	}
	if cg.v2 != "" {
		cgs[""] = cg.v2
	}
	return cgs
}

// containerProcs lists the container's processes: those of its cgroup2 or of any of its v1
// cgroups, or its process alone when it has no cgroup.
func containerProcs(cgs map[string]string, pid int) []int {
	for _, dir := range cgs {
		if pids := readInts(filepath.Join(dir, "cgroup.procs")); len(pids) > 0 {
			return pids
		}
	}
	return []int{pid}
}

func readInts(path string) []int {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ns []int
	for f := range strings.FieldsSeq(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			ns = append(ns, n)
		}
	}
	return ns
}

func readUint(path string) (uint64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

func cpuUsage(cgs map[string]string, procs []int) uint64 {
	if d, ok := cgs["cpuacct"]; ok {
		if n, ok := readUint(filepath.Join(d, "cpuacct.usage")); ok {
			return n
		}
	}
	if d, ok := cgs[""]; ok && exists(d, "cpu.stat") { // cgroup2 counts CPU time with or without the cpu controller
		return keyedValue(d, "cpu.stat", "usage_usec") * 1000
	}
	var ticks uint64
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// The fields after the command (which may hold spaces and parentheses): utime is 14th.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 {
			u, _ := strconv.ParseUint(f[11], 10, 64)
			k, _ := strconv.ParseUint(f[12], 10, 64)
			ticks += u + k
		}
	}
	return ticks * 1e9 / 100 // USER_HZ is 100 on Linux
}

// unlimited is what v1 reports for no memory limit (PAGE_COUNTER_MAX pages, rounded).
const unlimited = 1 << 62

func memoryUsage(cgs map[string]string, procs []int) (usage, limit uint64) {
	limit = hostMemory()
	if d, ok := cgs["memory"]; ok && exists(d, "memory.usage_in_bytes") {
		usage, _ = readUint(filepath.Join(d, "memory.usage_in_bytes"))
		usage -= min(usage, keyedValue(d, "memory.stat", "total_inactive_file"))
		if l, ok := readUint(filepath.Join(d, "memory.limit_in_bytes")); ok && l < unlimited {
			limit = min(limit, l)
		}
		return usage, limit
	}
	if d, ok := cgs[""]; ok && exists(d, "memory.current") {
		usage, _ = readUint(filepath.Join(d, "memory.current"))
		usage -= min(usage, keyedValue(d, "memory.stat", "inactive_file"))
		if l, ok := readUint(filepath.Join(d, "memory.max")); ok { // "max" does not parse
			limit = min(limit, l)
		}
		return usage, limit
	}
	page := uint64(os.Getpagesize())
	for _, p := range procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", p))
		if f := strings.Fields(string(b)); err == nil && len(f) > 1 {
			rss, _ := strconv.ParseUint(f[1], 10, 64)
			usage += rss * page
		}
	}
	return usage, limit
}

func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}

func pidsCount(cgs map[string]string, procs []int) uint64 {
	for _, c := range []string{"pids", ""} {
		if d, ok := cgs[c]; ok {
			if n, ok := readUint(filepath.Join(d, "pids.current")); ok {
				return n
			}
		}
	}
	if d, ok := cgs[""]; ok {
		if ts := readInts(filepath.Join(d, "cgroup.threads")); len(ts) > 0 {
			return uint64(len(ts))
		}
	}
	var n uint64
	for _, p := range procs {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		if err == nil {
			n += uint64(len(ents))
		}
	}
	return n
}

// netIO sums /proc/PID/net/dev over the interfaces of pid's network namespace but loopback;
// 0 when pid shares this process's network namespace (the host's).
func netIO(pid int) (rx, tx uint64) {
	var theirs, ours unix.Stat_t
	if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &theirs) != nil ||
		unix.Stat("/proc/self/ns/net", &ours) != nil || theirs.Ino == ours.Ino && theirs.Dev == ours.Dev {
		return 0, 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, counters, ok := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(counters)
		if !ok || strings.TrimSpace(name) == "lo" || len(fs) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(fs[0], 10, 64)
		t, _ := strconv.ParseUint(fs[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}

func blockIO(cgs map[string]string, procs []int) (read, write uint64) {
	if d, ok := cgs["blkio"]; ok {
		return blkioV1(filepath.Join(d, "blkio.throttle.io_service_bytes_recursive"))
	}
	if d, ok := cgs[""]; ok && exists(d, "io.stat") {
		return ioStat(filepath.Join(d, "io.stat"))
	}
	for _, p := range procs {
		io := fmt.Sprintf("/proc/%d", p)
		read += keyedValue(io, "io", "read_bytes:")
		write += keyedValue(io, "io", "write_bytes:")
	}
	return read, write
}

// blkioV1 sums "MAJ:MIN Read|Write BYTES" lines.
func blkioV1(path string) (read, write uint64) {
	b, _ := os.ReadFile(path)
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		n, _ := strconv.ParseUint(f[2], 10, 64)
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}

// ioStat sums rbytes= and wbytes= over cgroup2 io.stat's devices.
func ioStat(path string) (read, write uint64) {
	b, _ := os.ReadFile(path)
	for f := range strings.FieldsSeq(string(b)) {
		k, v, _ := strings.Cut(f, "=")
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "rbytes":
			read += n
		case "wbytes":
			write += n
		}
	}
	return read, write
}
