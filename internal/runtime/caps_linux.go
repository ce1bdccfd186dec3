package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var capNames = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
	"CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
	"CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
	"CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
	"CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
	"CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32,
	"CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36,
	"CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}

// capSet is a set of capabilities as the kernel's 64-bit mask.
type capSet uint64

func parseCaps(names []string) (capSet, error) {
	var s capSet
	for _, n := range names {
		c, ok := capNames[strings.ToUpper(n)]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		if c <= lastCap() {
			s |= 1 << c
		}
	}
	return s, nil
}

// lastCap is the highest capability the running kernel knows; read once.
var lastCap = sync.OnceValue(readLastCap)

func readLastCap() uint {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 40
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 40
	}
	return uint(n)
}

type caps struct{ bounding, effective, permitted, inheritable, ambient capSet }

// capsOf parses the spec's sets, less what this process cannot grant: a capability outside its
// own bounding set is dropped, as runc does (--privileged asks for every capability the kernel
// knows; kiln itself may run without some).
func capsOf(p *specs.LinuxCapabilities) (caps, error) {
	var c caps
	if p == nil {
		return c, nil
	}

	var err error
	have := ownBounding()
	for _, s := range []struct {
		dst   *capSet
		names []string
	}{{&c.bounding, p.Bounding}, {&c.effective, p.Effective}, {&c.permitted, p.Permitted},
		{&c.inheritable, p.Inheritable}, {&c.ambient, p.Ambient}} {
		if *s.dst, err = parseCaps(s.names); err != nil {
			return c, err
		}
		*s.dst &= have
	}
	return c, nil
}

// threads says which threads a credential change applies to. Capabilities, the bounding set
// and keep-caps are per thread. An init that execs next changes its own thread only (execve
// takes the calling thread's credentials and ends the others); the reaper (--init) stays, so
// it changes every thread, or its idle runtime threads would keep every capability.
type threads bool

const (
	thisThread threads = false
	allThreads threads = true
)

// prctl runs prctl(option, arg2, arg3) on the threads.
func (t threads) prctl(option int, arg2, arg3 uintptr) error {
	if t == allThreads {
		_, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, uintptr(option), arg2, arg3)
		if e != syscall.ENOTSUP { // ENOTSUP: a binary with cgo (a test's); this thread only
			return errnoErr(e)
		}
	}
	return unix.Prctl(option, arg2, arg3, 0, 0)
}

// dropBounding removes from the bounding set every capability not in keep.
func dropBounding(keep capSet, t threads) error {
	for c := uint(0); c <= lastCap(); c++ {
		if keep&(1<<c) != 0 {
			continue
		}
		if err := t.prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	return nil
}

// applyCaps sets the effective, permitted and inheritable sets, then the ambient set.
func applyCaps(c caps, t threads) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(c.effective), Permitted: uint32(c.permitted), Inheritable: uint32(c.inheritable)},
		{Effective: uint32(c.effective >> 32), Permitted: uint32(c.permitted >> 32), Inheritable: uint32(c.inheritable >> 32)},
	}
	var err error
	if t == allThreads {
		_, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
		if err = errnoErr(e); e == syscall.ENOTSUP {
			err = unix.Capset(&hdr, &data[0])
		}
	} else {
		err = unix.Capset(&hdr, &data[0])
	}
	if err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	for i := uint(0); i <= lastCap(); i++ {
		if c.ambient&(1<<i) == 0 {
			continue
		}
		if err := t.prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i)); err != nil {
			return fmt.Errorf("raise ambient capability %d: %w", i, err)
		}
	}
	return nil
}

// ownBounding is this thread's bounding set.
func ownBounding() capSet {
	var s capSet
	for c := uint(0); c <= lastCap(); c++ {
		if in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && in == 1 {
			s |= 1 << c
		}
	}
	return s
}
