package runtime

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spawnHigh is where forkParented first moves the child's descriptors: above any a monitor has.
const spawnHigh = 100

// cloneArgs is the kernel's struct clone_args, up to cgroup (CLONE_ARGS_SIZE_VER2).
type cloneArgs struct {
	flags, pidfd, childTID, parentTID, exitSignal, stack, stackSize, tls, setTID, setTIDSize, cgroup uint64
}

// spawnForKeeper starts the init as the caller's parent's child (CLONE_PARENT) and in cgroup2
// directory cgFd (CLONE_INTO_CGROUP; -1 for none), with files as its descriptors 0 to
// len(files)-1 (nil: /dev/null) and in a session of its own. Go's os/exec cannot: clone3
// wants exit_signal 0 with CLONE_PARENT, and package syscall always asks for SIGCHLD. Without
// CLONE_INTO_CGROUP the init would have to move into its cgroup afterwards, which on cgroup2
// waits for an RCU grace period: 2 to 17 ms here, on the start's critical path.
func spawnForKeeper(flags uintptr, cgFd int, files []*os.File, argv0 string) (*exec.Cmd, error) {
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	fds := make([]int32, len(files))
	for i, f := range files {
		if f == nil {
			f = null
		}
		fds[i] = int32(f.Fd())
	}
	path, err := unix.BytePtrFromString("/proc/self/fd/3")
	if err != nil {
		return nil, err
	}
	argv, err := syscall.SlicePtrFromStrings([]string{argv0})
	if err != nil {
		return nil, err
	}
	env := []*byte{nil}
	args := &cloneArgs{flags: uint64(flags | unix.CLONE_PARENT)}
	if cgFd >= 0 {
		args.flags |= unix.CLONE_INTO_CGROUP
		args.cgroup = uint64(cgFd)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, err
	}
	defer unix.Close(p[0])
	for _, fd := range append(fds, int32(p[1])) {
		if fd >= spawnHigh || (fd == int32(p[1]) && p[1] < len(fds)) {
			unix.Close(p[1])
			return nil, fmt.Errorf("start init: descriptor %d in the way", fd)
		}
	}
	syscall.ForkLock.Lock()
	pid, errno := forkParented(args, fds, path, &argv[0], &env[0], p[1])
	syscall.ForkLock.Unlock()
	unix.Close(p[1])
	keepAlive(files, fds, argv, env, args)
	if errno != 0 {
		return nil, os.NewSyscallError("clone3", errno)
	}
	var b [4]byte
	if n, _ := readFull(p[0], b[:]); n == len(b) {
		return nil, &os.PathError{Op: "exec", Path: "/proc/self/exe", Err: syscall.Errno(binary.NativeEndian.Uint32(b[:]))}
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		return nil, err
	}
	return &exec.Cmd{Path: "/proc/self/fd/3", Args: []string{argv0}, Process: proc}, nil
}

// forkParented is spawnForKeeper's fork; the child sets its descriptors up and execs.
//
//go:nosplit
//go:norace
func forkParented(args *cloneArgs, fds []int32, path *byte, argv, env **byte, errFd int) (int, syscall.Errno) {
	beforeFork()
	pid, _, e := syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0)
	if e != 0 || pid != 0 {
		afterFork()
		return int(pid), e
	}
	afterForkInChild()
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); e != 0 {
		childFail(errFd, e)
	}
	// Every source above the targets first (close-on-exec), then into place: a source may be
	// another's target.
	for i := range fds {
		if _, _, e = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(fds[i]), uintptr(spawnHigh+i), syscall.O_CLOEXEC); e != 0 {
			childFail(errFd, e)
		}
	}
	for i := range fds {
		if _, _, e = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(spawnHigh+i), uintptr(i), 0); e != 0 {
			childFail(errFd, e)
		}
	}
	_, _, e = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(path)),
		uintptr(unsafe.Pointer(argv)), uintptr(unsafe.Pointer(env)))
	childFail(errFd, e)
	return 0, 0 // not reached
}
