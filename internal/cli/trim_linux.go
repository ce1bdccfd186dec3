package cli

import (
	"bufio"
	"debug/elf"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// trimResident drops from this process's resident set the pages of its executable that the
// kernel can read back from the file: its code, and its read-only data (type information, the
// tables the runtime walks to scan stacks) when the executable is not position-independent. A
// monitor idles for its container's whole life; what it ran to start it need not stay
// resident, and if it runs again the kernel faults it back in from the page cache, a page at a
// time.
func trimResident() {
	exe, err := os.Stat("/proc/self/exe")
	if err != nil {
		return
	}
	fixed := fixedAddress("/proc/self/exe")
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	var ranges [][2]uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if start, end, ok := readOnlyMappingOf(sc.Text(), exe, fixed); ok {
			ranges = append(ranges, [2]uintptr{start, end})
		}
	}
	// All at the end, in a loop of two system calls: the code that runs after a range is
	// dropped faults its pages back in.
	for _, r := range ranges {
		// RANDOM first: later faults then map single pages, not the 64 KiB around them.
		unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_RANDOM)
		unix.Syscall(unix.SYS_MADVISE, r[0], r[1]-r[0], unix.MADV_DONTNEED)
	}
}

// fixedAddress reports whether the ELF executable at path is linked at a fixed address and
// never relocated (ET_EXEC with no interpreter, no dynamic section and no RELRO, as Go links a
// static binary by default): then its read-only data is the file's, byte for byte. A
// dynamically linked ET_EXEC (a cgo build) has its GOT in a read-only RELRO mapping, written
// by the dynamic linker at start.
func fixedAddress(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC {
		return false
	}
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP, elf.PT_DYNAMIC, elf.PT_GNU_RELRO:
			return false
		}
	}
	return true
}

// readOnlyMappingOf parses a /proc/self/maps line: "start-end perms offset dev inode path". It
// takes the executable's code, and its read-only data if fixed: a position-independent
// executable's read-only data includes RELRO, relocated at start, and dropping it would read
// back unrelocated pages from the file.
func readOnlyMappingOf(line string, exe os.FileInfo, fixed bool) (uintptr, uintptr, bool) {
	fields := strings.Fields(line)
	if len(fields) < 6 || (fields[1] != "r-xp" && (!fixed || fields[1] != "r--p")) {
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
