package runtime

import (
	"encoding/binary"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// spawn starts path as a child of this thread, with argv and env, stdio and working directory
// this thread's, and returns its pid once it has execed.
//
// Go's os/exec forks with CLONE_VM|CLONE_VFORK: until the child execs, it shares its parent's
// memory. An exec's command is forked straight into the container's pid namespace, where a
// process with CAP_SYS_PTRACE could trace it in that moment and write into the helper's memory,
// and the helper keeps the host's pid namespace. So spawn forks as fork(2) does, into a copy,
// the way runc's nsexec does: the child runs a few raw system calls on its copy of this stack
// and execs. With foreground it first makes its own process group the terminal's (stdin's).
func spawn(path string, argv, env []string, foreground bool) (int, error) {
	path0, err := unix.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return 0, err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return 0, err
	}
	// The child reports a failed exec on this pipe; its end closes when the exec succeeds.
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	defer unix.Close(p[0])
	syscall.ForkLock.Lock() // no descriptor made meanwhile without close-on-exec reaches the child
	pid, errno := forkExec(path0, &argvp[0], &envp[0], p[1], foreground)
	syscall.ForkLock.Unlock()
	unix.Close(p[1])
	if errno != 0 {
		return 0, errno
	}
	var b [4]byte
	if n, _ := readFull(p[0], b[:]); n == len(b) {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		return 0, syscall.Errno(binary.NativeEndian.Uint32(b[:]))
	}
	return pid, nil
}

func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if m <= 0 {
			return n, err
		}
		n += m
	}
	return n, nil
}

// The Go runtime's own hooks around a fork, as package syscall uses them: signals blocked and
// the stack fixed in the parent; signal handlers reset to the defaults in the child.
//
//go:linkname beforeFork syscall.runtime_BeforeFork
func beforeFork()

//go:linkname afterFork syscall.runtime_AfterFork
func afterFork()

//go:linkname afterForkInChild syscall.runtime_AfterForkInChild
func afterForkInChild()

// forkExec forks and, in the child, execs. Between the fork and the exec the child may make
// only raw system calls: it is one thread of a copied Go runtime that must not run (no stack
// growth, no allocation, no scheduler), as in syscall.forkAndExecInChild.
//
//go:nosplit
//go:norace
func forkExec(path *byte, argv, env **byte, errFd int, foreground bool) (int, syscall.Errno) {
	beforeFork()
	pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, cloneArg0, cloneArg1, 0, 0, 0, 0)
	if e != 0 || pid != 0 {
		afterFork()
		return int(pid), e
	}
	if foreground { // signals stay blocked until after TIOCSPGRP: no SIGTTOU
		if _, _, e = syscall.RawSyscall(syscall.SYS_SETPGID, 0, 0, 0); e != 0 {
			childFail(errFd, e)
		}
		me, _, _ := syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
		pgrp := int32(me)
		if _, _, e = syscall.RawSyscall(syscall.SYS_IOCTL, 0, syscall.TIOCSPGRP, uintptr(unsafe.Pointer(&pgrp))); e != 0 {
			childFail(errFd, e)
		}
	}
	afterForkInChild()
	_, _, e = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(path)),
		uintptr(unsafe.Pointer(argv)), uintptr(unsafe.Pointer(env)))
	childFail(errFd, e)
	return 0, 0 // not reached
}

// childFail reports e on fd and ends the child.
//
//go:nosplit
//go:norace
func childFail(fd int, e syscall.Errno) {
	v := uint32(e)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&v)), 4)
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
}
