package runtime

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A detached container is kept by a process that does nothing but wait: it copies the
// container's output to its log, reaps it, and then execs kiln to record how it ended. A Go
// program cannot wait in less than about 3 MiB (its runtime, its heap, the code its idle
// threads run). The keeper is not one: it is a fork of the kiln that runs `kiln run -d`, running
// a few raw system calls on its copy of that kiln's stack, like the child between fork and
// exec in package syscall. Before it waits it drops every page it will not touch again, and
// stays at a few pages of code, stack and buffer.
//
// The keeper forks and execs the monitor, a whole kiln that prepares and starts the container
// as the keeper's child (CLONE_PARENT: see Config.ForKeeper), hands the keeper the container's
// pid and output (HandToKeeper), tells the starting kiln how it went, and exits.

// Keeper is what StartKeeper needs.
type Keeper struct {
	Log    *os.File // where the container's output goes; the keeper writes it
	Report *os.File // the monitor's fd 3 (the keeper's socket is its fd 4)
	// Monitor and Record are argv of /proc/self/exe: the monitor, and the program the keeper
	// execs once the container has ended, with its wait status appended.
	Monitor, Record []string
	Env             []string
	Title           string // its command line, as ps shows it
}

// Fixed descriptor numbers in the keeper (above any kiln has open, see StartKeeper) and in the
// monitor.
const (
	keeperHigh                       = 1000
	keeperNull, keeperLog, keeperRep = keeperHigh, keeperHigh + 1, keeperHigh + 2
	keeperSock, keeperMonSock        = keeperHigh + 3, keeperHigh + 4
	monitorReportFd, monitorSockFd   = 3, 4
	keeperBufSize                    = 32 << 10
	keeperMaxRanges                  = 512
)

// keeperPlan is everything the keeper uses once it has dropped its memory, in one mapping of
// its own: no Go pointers, only addresses within the mapping and numbers.
type keeperPlan struct {
	fds           [5]int32 // /dev/null, log, report, keeper's socket, monitor's socket
	exe           uintptr  // "/proc/self/exe\x00"
	monArgv       uintptr  // in the Go heap: used before the drop only
	monEnv        uintptr
	recArgv       uintptr // NULL-terminated arrays in the mapping
	recEnv        uintptr
	status        [12]byte // the last argument of Record: the decimal wait status
	buf           uintptr  // keeperBufSize bytes
	nranges       int
	ranges        [keeperMaxRanges][2]uintptr // what to drop
	monPid        int32
	ctrPid        int32
	handed        int32
	wstatus       int32
	iov           [2]uintptr
	msg           unix.Msghdr
	cmsg          [32]byte
	sigIgn        [4]uintptr // struct kernel_sigaction: handler SIG_IGN, flags, restorer, mask
	anchorLo      uintptr
	anchorHi      uintptr
	statusWritten int32
	title         [64]byte // the keeper's command line, NUL-padded
	comm          [16]byte // its name
	slash         [2]byte  // "/", its working directory
	argLo, argHi  uintptr  // where the kernel finds the command line: the caller's arguments
	args          *byte    // argLo: not in the Go heap
}

// StartKeeper starts a detached container's keeper, which starts its monitor. It returns the
// keeper's pid; the keeper runs in a session of its own and outlives the caller.
func StartKeeper(k Keeper) (int, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("keeper socketpair: %w", err)
	}
	lsock, msock := pair[0], pair[1]
	defer unix.Close(lsock)
	defer unix.Close(msock)
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(null)
	fds := [5]int{null, int(k.Log.Fd()), int(k.Report.Fd()), lsock, msock}
	for _, fd := range fds {
		if fd >= keeperHigh {
			return 0, fmt.Errorf("keeper: descriptor %d is too high", fd)
		}
	}
	monArgv, err := syscall.SlicePtrFromStrings(k.Monitor)
	if err != nil {
		return 0, err
	}
	monEnv, err := syscall.SlicePtrFromStrings(k.Env)
	if err != nil {
		return 0, err
	}
	mem, p, err := newKeeperPlan(k)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(mem)
	for i, fd := range fds {
		p.fds[i] = int32(fd)
	}
	p.monArgv, p.monEnv = uintptr(unsafe.Pointer(&monArgv[0])), uintptr(unsafe.Pointer(&monEnv[0]))
	if err := p.addRanges(mem); err != nil {
		return 0, err
	}
	syscall.ForkLock.Lock()
	pid, errno := forkKeeper(p)
	syscall.ForkLock.Unlock()
	keepAlive(monArgv, monEnv)
	if errno != 0 {
		return 0, fmt.Errorf("fork keeper: %w", errno)
	}
	return pid, nil
}

//go:noinline
func keepAlive(...any) {}

// newKeeperPlan maps the plan and fills in the strings it needs after the drop.
func newKeeperPlan(k Keeper) ([]byte, *keeperPlan, error) {
	size := int(unsafe.Sizeof(keeperPlan{})) + keeperBufSize + 64
	for _, s := range append(append([]string{"/proc/self/exe"}, k.Record...), k.Env...) {
		size += len(s) + 1 + 8
	}
	size += 3 * 8
	size = (size + 4095) &^ 4095
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("keeper plan: %w", err)
	}
	p := (*keeperPlan)(unsafe.Pointer(&mem[0]))
	off := (int(unsafe.Sizeof(keeperPlan{})) + 63) &^ 63
	p.buf = uintptr(unsafe.Pointer(&mem[off]))
	off += keeperBufSize
	str := func(s string) uintptr {
		a := uintptr(unsafe.Pointer(&mem[off]))
		off += copy(mem[off:], s) + 1
		return a
	}
	p.exe = str("/proc/self/exe")
	argv := make([]uintptr, 0, len(k.Record)+2)
	for _, s := range k.Record {
		argv = append(argv, str(s))
	}
	argv = append(argv, uintptr(unsafe.Pointer(&p.status[0])), 0)
	env := make([]uintptr, 0, len(k.Env)+1)
	for _, s := range k.Env {
		env = append(env, str(s))
	}
	env = append(env, 0)
	array := func(a []uintptr) uintptr {
		off = (off + 7) &^ 7
		start := uintptr(unsafe.Pointer(&mem[off]))
		for _, v := range a {
			binary.NativeEndian.PutUint64(mem[off:], uint64(v))
			off += 8
		}
		return start
	}
	p.recArgv, p.recEnv = array(argv), array(env)
	copy(p.title[:len(p.title)-1], k.Title)
	copy(p.comm[:len(p.comm)-1], "kiln-keeper")
	p.slash[0] = '/'
	if last := os.Args[len(os.Args)-1]; len(os.Args[0]) > 0 && len(last) > 0 {
		// Go's os.Args are the kernel's argument strings, not copies.
		p.args = unsafe.StringData(os.Args[0])
		p.argLo = uintptr(unsafe.Pointer(p.args))
		p.argHi = uintptr(unsafe.Pointer(unsafe.StringData(last))) + uintptr(len(last))
	}
	p.sigIgn[0] = 1 // SIG_IGN
	p.iov = [2]uintptr{uintptr(unsafe.Pointer(&p.ctrPid)), 4}
	p.msg.Iov = (*unix.Iovec)(unsafe.Pointer(&p.iov))
	p.msg.Iovlen = 1
	p.msg.Control = &p.cmsg[0]
	p.msg.SetControllen(len(p.cmsg))
	return mem, p, nil
}

// addRanges lists this process's mappings, but the plan's own and the kernel's, as what the
// keeper drops.
func (p *keeperPlan) addRanges(mem []byte) error {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return err
	}
	defer f.Close()
	own := uintptr(unsafe.Pointer(&mem[0]))
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || (len(fields) >= 6 && strings.HasPrefix(fields[5], "[v")) {
			continue // [vdso], [vvar], [vsyscall]
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || uintptr(a) == own {
			continue
		}
		if p.nranges == keeperMaxRanges {
			return errors.New("keeper: too many mappings")
		}
		p.ranges[p.nranges] = [2]uintptr{uintptr(a), uintptr(b)}
		p.nranges++
	}
	return sc.Err()
}

// forkKeeper forks; the child runs the keeper and never returns.
//
//go:nosplit
//go:norace
func forkKeeper(p *keeperPlan) (int, syscall.Errno) {
	beforeFork()
	pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, cloneArg0, cloneArg1, 0, 0, 0, 0)
	if e != 0 || pid != 0 {
		afterFork()
		return int(pid), e
	}
	afterForkInChild()
	keeperMain(p)
	return 0, 0 // not reached
}

// keeperMain is the keeper: raw system calls only, on this copy of the caller's stack.
//
//go:nosplit
//go:norace
func keeperMain(p *keeperPlan) {
	keeperSetup(p)
	keeperForkMonitor(p)
	keeperDrop(p)
	keeperReceive(p)
	if p.handed == 1 { // the monitor exits right after: no zombie beside the container
		syscall.RawSyscall6(syscall.SYS_WAIT4, uintptr(p.monPid), 0, 0, 0, 0, 0)
	}
	keeperCopy(p)
	keeperReap(p)
	if p.handed == 1 && p.statusWritten == 1 {
		syscall.RawSyscall(syscall.SYS_EXECVE, p.exe, p.recArgv, p.recEnv)
	}
	keeperExit(0)
}

//go:nosplit
//go:norace
func keeperExit(code uintptr) {
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, code, 0, 0)
	}
}

// keeperSetup gives the keeper a session, /dev/null for stdio, only its own descriptors, at
// fixed numbers, and makes it ignore what a terminal or a shutdown's first round sends.
//
//go:nosplit
//go:norace
func keeperSetup(p *keeperPlan) {
	syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0)
	// Nothing of the caller's stays with a process that lives as long as the container: not
	// its directory (a mount it keeps busy), not its descriptors.
	syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(&p.slash[0])), 0, 0)
	// Its command line is the caller's: write its own over it, as setproctitle does.
	syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NAME, uintptr(unsafe.Pointer(&p.comm[0])), 0, 0, 0, 0)
	if p.argLo != 0 {
		args := unsafe.Slice(p.args, p.argHi-p.argLo)
		for i := range args {
			args[i] = 0
			if i < len(p.title)-1 {
				args[i] = p.title[i]
			}
		}
	}
	for i := range 5 {
		if _, _, e := syscall.RawSyscall(syscall.SYS_DUP3, uintptr(p.fds[i]), uintptr(keeperHigh+i), syscall.O_CLOEXEC); e != 0 {
			keeperExit(125)
		}
	}
	syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 0, keeperHigh-1, 0)
	syscall.RawSyscall(unix.SYS_CLOSE_RANGE, keeperHigh+5, ^uintptr(0), 0)
	for fd := range uintptr(3) {
		syscall.RawSyscall(syscall.SYS_DUP3, keeperNull, fd, 0)
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, keeperNull, 0, 0)
	for _, sig := range [3]uintptr{uintptr(syscall.SIGTERM), uintptr(syscall.SIGINT), uintptr(syscall.SIGHUP)} {
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&p.sigIgn)), 0, 8, 0, 0)
	}
}

// keeperForkMonitor forks and execs the monitor, with the report pipe as its fd 3 and its end
// of the keeper's socket as fd 4.
//
//go:nosplit
//go:norace
func keeperForkMonitor(p *keeperPlan) {
	pid, _, e := syscall.RawSyscall6(syscall.SYS_CLONE, cloneArg0, cloneArg1, 0, 0, 0, 0)
	if e != 0 {
		keeperExit(125)
	}
	if pid == 0 {
		syscall.RawSyscall(syscall.SYS_DUP3, keeperRep, monitorReportFd, 0)
		syscall.RawSyscall(syscall.SYS_DUP3, keeperMonSock, monitorSockFd, 0)
		syscall.RawSyscall(syscall.SYS_EXECVE, p.exe, p.monArgv, p.monEnv)
		keeperExit(127)
	}
	p.monPid = int32(pid)
	syscall.RawSyscall(syscall.SYS_CLOSE, keeperRep, 0, 0)
	syscall.RawSyscall(syscall.SYS_CLOSE, keeperMonSock, 0, 0)
}

// keeperDrop drops every page of the copied kiln but the plan's and a few around this stack
// frame: the memory is the caller's copy, and the keeper needs none of it. Code pages come
// back from the executable as they run.
//
//go:nosplit
//go:norace
func keeperDrop(p *keeperPlan) {
	var anchor byte
	sp := uintptr(unsafe.Pointer(&anchor)) &^ 4095
	p.anchorLo, p.anchorHi = sp-4*4096, sp+4*4096
	argLo, argHi := p.argLo&^4095, (p.argHi+4095)&^4095
	for i := 0; i < p.nranges; i++ {
		keeperDropBut(p.ranges[i][0], p.ranges[i][1], argLo, argHi, p.anchorLo, p.anchorHi)
	}
}

// keeperDropBut drops [a, b) but [lo1, hi1) and [lo2, hi2), where lo1 <= hi1 and lo2 < hi2.
//
//go:nosplit
//go:norace
func keeperDropBut(a, b, lo1, hi1, lo2, hi2 uintptr) {
	if lo1 > lo2 {
		lo1, hi1, lo2, hi2 = lo2, hi2, lo1, hi1
	}
	for _, keep := range [2][2]uintptr{{lo1, hi1}, {lo2, hi2}} {
		if keep[0] > a && a < b {
			syscall.RawSyscall(syscall.SYS_MADVISE, a, min(b, keep[0])-a, unix.MADV_DONTNEED)
		}
		a = max(a, keep[1])
	}
	if a < b {
		syscall.RawSyscall(syscall.SYS_MADVISE, a, b-a, unix.MADV_DONTNEED)
	}
}

// keeperReceive waits for the monitor's message: the container's pid, and its output as the
// one descriptor passed. Nothing (the monitor failed, or died) leaves handed 0.
//
//go:nosplit
//go:norace
func keeperReceive(p *keeperPlan) {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, keeperSock, uintptr(unsafe.Pointer(&p.msg)), unix.MSG_CMSG_CLOEXEC)
		if e == syscall.EINTR {
			continue
		}
		// struct cmsghdr: len (8 bytes), level, type (4 each), then the descriptor.
		if e == 0 && n == 4 && *(*int32)(unsafe.Pointer(&p.cmsg[8])) == unix.SOL_SOCKET &&
			*(*int32)(unsafe.Pointer(&p.cmsg[12])) == unix.SCM_RIGHTS {
			p.handed = 1
		}
		break
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, keeperSock, 0, 0)
}

// keeperCopy copies the container's output to the log until its end (EOF, or EIO from a
// terminal once the container's side is closed).
//
//go:nosplit
//go:norace
func keeperCopy(p *keeperPlan) {
	if p.handed != 1 {
		return
	}
	src := uintptr(*(*int32)(unsafe.Pointer(&p.cmsg[16])))
	// The monitor's Go made it non-blocking, on the open file both share: a read must wait.
	if fl, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, src, syscall.F_GETFL, 0); e == 0 {
		syscall.RawSyscall(syscall.SYS_FCNTL, src, syscall.F_SETFL, fl&^syscall.O_NONBLOCK)
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, src, p.buf, keeperBufSize)
		if e == syscall.EINTR || e == syscall.EAGAIN {
			continue
		}
		if e != 0 || n == 0 {
			break
		}
		for done := uintptr(0); done < n; {
			m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, keeperLog, p.buf+done, n-done)
			if e == syscall.EINTR {
				continue
			}
			if e != 0 {
				break // the log cannot take it: drop this much, keep reading
			}
			done += m
		}
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, src, 0, 0)
	syscall.RawSyscall(syscall.SYS_CLOSE, keeperLog, 0, 0)
}

// keeperReap reaps the monitor and the container (and anything else left to the keeper) and
// writes the container's wait status where Record's last argument is.
//
//go:nosplit
//go:norace
func keeperReap(p *keeperPlan) {
	for {
		pid, _, e := syscall.RawSyscall6(syscall.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(&p.wstatus)), 0, 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return // ECHILD: none left
		}
		if p.handed == 1 && int32(pid) == p.ctrPid {
			keeperFormat(&p.status, uint32(p.wstatus))
			p.statusWritten = 1
		}
	}
}

// keeperFormat writes v in decimal into dst, NUL-terminated.
//
//go:nosplit
//go:norace
func keeperFormat(dst *[12]byte, v uint32) {
	n := 0
	for d := uint32(1000000000); d > 0; d /= 10 {
		if digit := v / d % 10; digit != 0 || n > 0 || d == 1 {
			dst[n] = byte('0' + digit)
			n++
		}
	}
	dst[n] = 0
}

// HandToKeeper is the monitor's last word to its keeper (the socket at fd 4): the container's
// pid and output.
func HandToKeeper(sock *os.File, pid int, output *os.File) error {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(pid))
	rights := unix.UnixRights(int(output.Fd()))
	if err := unix.Sendmsg(int(sock.Fd()), b[:], rights, nil, 0); err != nil {
		return fmt.Errorf("hand container %d to its keeper: %w", pid, err)
	}
	return nil
}

// KeeperSocket is the monitor's end of the socket to its keeper, when it has one.
func KeeperSocket() *os.File {
	var st unix.Stat_t
	if unix.Fstat(monitorSockFd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil
	}
	return os.NewFile(monitorSockFd, "keeper")
}

// Ended finishes container id whose process its keeper reaped with wait status ws: how it
// ended, and its cgroups removed.
func Ended(id string, ws syscall.WaitStatus) (Exit, error) {
	cg := existingCgroup(id)
	exit := Exit{Code: ws.ExitStatus()}
	if ws.Signaled() {
		exit = Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	exit.OOMKilled = cg.oomKilled()
	return exit, cg.remove()
}
