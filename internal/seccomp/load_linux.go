package seccomp

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Load installs prog with seccomp(SECCOMP_SET_MODE_FILTER,
// SECCOMP_FILTER_FLAG_TSYNC): on every thread of the process, not just the
// calling one. A Go program runs on threads it does not choose, and new
// threads are cloned from whichever thread the runtime picks, so filtering one
// thread would leave the others, and their future clones, unfiltered. TSYNC also
// gives every thread the caller's no_new_privs.
//
// The caller must have set no_new_privs (prctl(PR_SET_NO_NEW_PRIVS, 1) on the
// same thread, under runtime.LockOSThread) or hold CAP_SYS_ADMIN. Load makes
// no syscall but seccomp(2), so it can run right before execve in a
// re-exec'd init; the filter must then allow what the Go runtime does until
// execve (futex, mmap, rt_sig*, sched_yield, execve: Default does).
func Load(prog []unix.SockFilter) error {
	return LoadFlags(prog, 0)
}

// LoadFlags is Load with extra SECCOMP_FILTER_FLAG_* flags (see FilterFlags).
func LoadFlags(prog []unix.SockFilter, flags uint) error {
	if len(prog) == 0 || len(prog) > unix.BPF_MAXINSNS {
		return fmt.Errorf("load seccomp filter: %d instructions (want 1 to %d)", len(prog), unix.BPF_MAXINSNS)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		uintptr(flags|unix.SECCOMP_FILTER_FLAG_TSYNC), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	switch {
	case errno == unix.EACCES:
		return fmt.Errorf("load seccomp filter: %w (set no_new_privs first, or hold CAP_SYS_ADMIN)", os.NewSyscallError("seccomp", errno))
	case errno != 0:
		return fmt.Errorf("load seccomp filter: %w", os.NewSyscallError("seccomp", errno))
	case r != 0:
		// TSYNC could not move thread r: it has a filter of its own.
		return fmt.Errorf("load seccomp filter: thread %d has another seccomp filter", r)
	}
	return nil
}

// FilterFlags turns a profile's flags into SECCOMP_FILTER_FLAG_* bits for
// LoadFlags.
func FilterFlags(p *specs.LinuxSeccomp) (uint, error) {
	var flags uint
	for _, f := range p.Flags {
		switch f {
		case specs.LinuxSeccompFlagLog:
			flags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			flags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			return 0, errors.New("seccomp: flag SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a seccomp agent, which kiln does not run")
		default:
			return 0, fmt.Errorf("seccomp: unknown flag %q", f)
		}
	}
	return flags, nil
}
