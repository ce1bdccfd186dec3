package cli

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// trimResident drops from this process's resident set the pages of its executable's code, which
// the kernel can read back from the file. A monitor idles
// for its container's whole life; what it ran to start it need not stay resident, and if it runs
// again the kernel faults it back in from the page cache, a page at a time.
func trimResident() {
	exe, err := os.Stat("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		start, end, ok := readOnlyMappingOf(sc.Text(), exe)
		if ok {
			// RANDOM first: later faults then map single pages, not the 64 KiB around them.
			unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_RANDOM)
			unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_DONTNEED)
		}
	}
}

// readOnlyMappingOf parses a /proc/self/maps line: "start-end perms offset dev inode path".
func readOnlyMappingOf(line string, exe os.FileInfo) (uintptr, uintptr, bool) {
	fields := strings.Fields(line)
	// Code only: a PIE's read-only data includes RELRO, relocated at start; dropping it would
	// read back unrelocated pages from the file.
	if len(fields) < 6 || fields[1] != "r-xp" {
		return 0, 0, false
	}
	st, ok := exe.Sys().(*syscall.Stat_t)
	if !ok || fields[4] != strconv.FormatUint(st.Ino, 10) {
		return 0, 0, false
	}
	lo, hi, _ := strings.Cut(fields[0], "-")
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uintptr(start), uintptr(end), true
}
