package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Container is a started container: its init has become (or, with InitAnnotation, started) the
// workload.
type Container struct {
	proc    *os.Process
	console *os.File
	cgroup  *cgroup
	release func() // gives back the thread the init was forked from; nil for none

	once sync.Once
	exit Exit
	err  error
}

// Start creates the container's namespaces and root, and runs its process. It returns once the
// process runs, or with an *Error saying which step failed. It takes over cfg.Early either way.
func Start(ctx context.Context, cfg Config) (*Container, error) {
	if err := validate(cfg.Spec); err != nil {
		cfg.Early.abort()
		return nil, &Error{Code: 125, Err: err}
	}
	msg, err := newInitConfig(modeRun, cfg.Spec, cfg.RootFS)
	if err != nil {
		cfg.Early.abort()
		return nil, err
	}
	early := cfg.Early.takeFor(cfg) // nil if there is none or it does not fit
	cg, err := makeCgroup(cfg.ID, cfg.Spec)
	if err != nil {
		early.abort()
		cg.remove()
		return nil, &Error{Code: 125, Err: err}
	}
	var cmd *exec.Cmd
	var sock *os.File
	var release func()
	if early != nil {
		cmd, sock, release = early.cmd, early.sock, early.release
		cg.adopt(early.v1)
	} else if cmd, sock, release, err = startInit(cfg, cg); err != nil {
		cg.remove()
		return nil, &Error{Code: 125, Err: err}
	}
	c := &Container{proc: cmd.Process, cgroup: cg, release: release}
	// Joining a v1 cgroup waits for an RCU grace period (milliseconds): do it while the init
	// sets up mounts; the init waits for goByte before it execs the workload.
	join := func() error {
		if early != nil && early.v1 != "" {
			<-early.joined
			cg.joinedBy(early.v1, early.in1)
		}
		if err := cg.join(cmd.Process.Pid); err != nil {
			return err
		}
		if cfg.OnCreate != nil {
			return cfg.OnCreate(cmd.Process.Pid)
		}
		return nil
	}
	console, err := handshake(ctx, sock, msg, join)
	if err != nil {
		if early != nil {
			<-early.joined // its v1 join must be over before the init is reaped and its pid freed
		}
		c.abort(sock)
		return nil, err
	}
	c.console = console
	return c, nil
}

func validate(s *specs.Spec) error {
	switch {
	case s == nil:
		return errors.New("no runtime spec")
	case s.Process == nil || len(s.Process.Args) == 0:
		return errors.New("runtime spec: no process args")
	case s.Root == nil || s.Root.Path == "":
		return errors.New("runtime spec: no root path")
	case s.Linux == nil:
		return errors.New("runtime spec: no linux section")
	}
	if f := unsupported(s); f != "" {
		return fmt.Errorf("runtime spec: %s is not supported", f)
	}
	return nil
}

// unsupported names the first field of s the runtime does not implement, or "": refused, not
// silently ignored (see initSpec for what the init gets).
func unsupported(s *specs.Spec) string {
	l := s.Linux
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"hooks", s.Hooks != nil},
		{"solaris", s.Solaris != nil}, {"windows", s.Windows != nil}, {"vm", s.VM != nil},
		{"zos", s.ZOS != nil}, {"freebsd", s.FreeBSD != nil},
		{"linux.uidMappings", len(l.UIDMappings) > 0}, {"linux.gidMappings", len(l.GIDMappings) > 0},
		{"linux.netDevices", len(l.NetDevices) > 0}, {"linux.mountLabel", l.MountLabel != ""},
		{"linux.intelRdt", l.IntelRdt != nil}, {"linux.memoryPolicy", l.MemoryPolicy != nil},
		{"linux.personality", l.Personality != nil}, {"linux.timeOffsets", len(l.TimeOffsets) > 0},
	} {
		if f.set {
			return f.name
		}
	}
	return ""
}

// startInit runs the kiln binary as the container's init inside new namespaces. fd 3 of the
// init is its own executable (read-only), fd 4 the socket to us.
func startInit(cfg Config, cg *cgroup) (*exec.Cmd, *os.File, func(), error) {
	flags, err := cloneFlags(cfg.Spec.Linux.Namespaces)
	if err != nil {
		return nil, nil, nil, err
	}
	var stdio *Stdio
	if !cfg.Spec.Process.Terminal {
		stdio = &cfg.Stdio
	}
	keepAlive := cfg.KeepAlive
	if cfg.ForKeeper {
		// The init sets its parent-death signal itself (see startWorkload): set here, it would
		// kill the init at once, its parent not being the forking process.
		flags |= unix.CLONE_PARENT
		keepAlive = true
	}
	return spawnInit(flags, cg, stdio, keepAlive, cfg.LockedThread)
}

// spawnInit starts the init with clone flags flags, in cgroup cg (nil: the caller's), with
// stdio (nil: none, for a terminal), from the calling thread if here is set. Call release once
// the init has been waited for.
func spawnInit(flags uintptr, cg *cgroup, stdio *Stdio, keepAlive, here bool) (cmd *exec.Cmd, sock *os.File, release func(), err error) {
	exe, err := selfExe()
	if err != nil {
		return nil, nil, nil, err
	}
	ours, theirs, err := socketpair()
	if err != nil {
		return nil, nil, nil, err
	}
	defer theirs.Close()
	if flags&unix.CLONE_PARENT != 0 {
		files := make([]*os.File, 3, 5)
		if stdio != nil {
			files[0], files[1], files[2] = stdio.Stdin, stdio.Stdout, stdio.Stderr
		}
		cgFd := -1
		if cg != nil && cg.v2fd != nil {
			cgFd = int(cg.v2fd.Fd())
		}
		if cmd, err = spawnForKeeper(flags&^unix.CLONE_PARENT, cgFd, append(files, exe, theirs), initArg0); err != nil {
			ours.Close()
			return nil, nil, nil, fmt.Errorf("start container init: %w", err)
		}
		return cmd, ours, func() {}, nil
	}
	cmd = &exec.Cmd{
		Path:       "/proc/self/fd/3",
		Args:       []string{initArg0},
		Env:        []string{},
		ExtraFiles: []*os.File{exe, theirs},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			Setsid:     true,
		},
	}
	if !keepAlive {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	cg.prepare(cmd.SysProcAttr)
	if stdio != nil {
		setStdio(cmd, *stdio)
	}
	if here {
		release, err = func() {}, cmd.Start()
	} else {
		release, err = startOnOwnThread(cmd)
	}
	if err != nil {
		ours.Close()
		return nil, nil, nil, fmt.Errorf("start container init: %w", err)
	}
	return cmd, ours, release, nil
}

// startOnOwnThread starts cmd from an OS thread kept for it until release. The kernel sends the
// parent-death signal when the thread that forked the child ends, not the process, and Go ends
// the thread of any goroutine that exits while locked to it, as kiln's network and volume code
// do, on threads from the same pool. A goroutine locked to the forking thread and parked there
// until release keeps every other goroutine off it.
func startOnOwnThread(cmd *exec.Cmd) (release func(), err error) {
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		errc <- cmd.Start()
		<-done
	}()
	if err := <-errc; err != nil {
		close(done)
		return nil, err
	}
	return sync.OnceFunc(func() { close(done) }), nil
}

func setStdio(cmd *exec.Cmd, s Stdio) {
	// Pass *os.File values straight through: the container writes to the same open file
	// descriptions, with no copying goroutine in between.
	if s.Stdin != nil {
		cmd.Stdin = s.Stdin
	}
	if s.Stdout != nil {
		cmd.Stdout = s.Stdout
	}
	if s.Stderr != nil {
		cmd.Stderr = s.Stderr
	}
}

var namespaceFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

func cloneFlags(nss []specs.LinuxNamespace) (uintptr, error) {
	var flags uintptr
	for _, ns := range nss {
		f, ok := namespaceFlags[ns.Type]
		if !ok {
			return 0, fmt.Errorf("namespace %q is not supported", ns.Type)
		}
		if ns.Path != "" {
			if err := checkJoin(ns); err != nil {
				return 0, err
			}
			continue // the init joins it: see joinNamespaces
		}
		if ns.Type == specs.CgroupNamespace && !cgroup2Only() {
			continue // a cgroup namespace only makes sense where the container's cgroup is a cgroup2 one
		}
		flags |= f
	}
	if flags&unix.CLONE_NEWNS == 0 {
		return 0, errors.New("a mount namespace is required")
	}
	return flags, nil
}

// handshake sends the init its config, runs ready while the init sets up, lets it go on, then
// reads until the init execs the workload (EOF) or reports an error. A console's master arrives
// on the way.
func handshake(ctx context.Context, sock *os.File, msg *initConfig, ready func() error) (*os.File, error) {
	// shutdown, not close: it wakes a recvmsg blocked on the socket; the caller then kills the init.
	stop := context.AfterFunc(ctx, func() { unix.Shutdown(int(sock.Fd()), unix.SHUT_RDWR) })
	defer stop()
	if err := json.NewEncoder(sock).Encode(msg); err != nil {
		return nil, &Error{Code: 125, Err: fmt.Errorf("send config to container init: %w", err)}
	}
	if err := ready(); err != nil {
		return nil, initFailure(sock, &Error{Code: 125, Err: err})
	}
	// An init that failed during setup has closed its end: these writes fail, and what it said
	// is read below.
	sock.Write([]byte{goByte})
	unix.Shutdown(int(sock.Fd()), unix.SHUT_WR)
	data, fds, err := readAll(sock)
	var console *os.File
	if len(fds) > 0 {
		console = os.NewFile(uintptr(fds[0]), "console")
	}
	if ctx.Err() != nil { // interrupted: the EOF was ours, not the init's exec
		err = ctx.Err()
	}
	if err != nil {
		if console != nil {
			console.Close()
		}
		return nil, &Error{Code: 125, Err: fmt.Errorf("container init: %w", err)}
	}
	data = bytes.TrimPrefix(data, []byte{consoleByte})
	execed := len(data) > 0 && data[0] == readyByte
	if execed {
		data = data[1:]
	}
	if execed && len(data) == 0 {
		return console, nil
	}
	if console != nil {
		console.Close()
	}
	if len(data) == 0 {
		return nil, &Error{Code: 125, Err: errors.New("container init ended before starting the workload")}
	}
	var e initError
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, &Error{Code: 125, Err: fmt.Errorf("container init: %s", data)}
	}
	return nil, &Error{Code: e.Code, Err: errors.New(e.Message)}
}

// initFailure is what to report when the parent's part of the start failed: the init may have
// failed on its own first (a missing command, say) and taken its namespaces with it, which is
// why ours failed; then what it said is the cause. Shutting our end makes an init still waiting
// for the go byte give up, so the read ends.
func initFailure(sock *os.File, ours *Error) *Error {
	unix.Shutdown(int(sock.Fd()), unix.SHUT_WR)
	data, fds, _ := readAll(sock)
	for _, fd := range fds {
		unix.Close(fd)
	}
	var e initError
	data = bytes.TrimPrefix(data, []byte{consoleByte})
	if len(data) > 0 && json.Unmarshal(data, &e) == nil && e.Message != "" {
		return &Error{Code: e.Code, Err: errors.New(e.Message)}
	}
	return ours
}

// readAll reads the socket to EOF, collecting any file descriptors passed with the bytes.
func readAll(sock *os.File) ([]byte, []int, error) {
	var data []byte
	var fds []int
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECONNRESET { // the init exited without reading all we sent: it is done talking
			return data, fds, nil
		}
		if err != nil {
			return data, fds, err
		}
		if oobn > 0 {
			fds = append(fds, parseRights(oob[:oobn])...)
		}
		if n == 0 {
			return data, fds, nil
		}
		data = append(data, buf[:n]...)
	}
}

func parseRights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if r, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, r...)
		}
	}
	return fds
}

func (c *Container) abort(sock io.Closer) {
	sock.Close()
	c.proc.Kill()
	c.Wait()
}

// Pid is the container process's pid on the host.
func (c *Container) Pid() int { return c.proc.Pid }

// Console is the master side of the container's terminal, or nil without one.
func (c *Container) Console() *os.File { return c.console }

// Signal sends sig to the container's process.
func (c *Container) Signal(sig syscall.Signal) error {
	return c.proc.Signal(sig)
}

// Wait waits for the container's process to end and releases what the runtime holds for it.
func (c *Container) Wait() (Exit, error) {
	c.once.Do(func() {
		ps, err := c.proc.Wait()
		if c.release != nil {
			c.release()
		}
		c.exit, c.err = exitOf(ps), err
		c.exit.OOMKilled = c.cgroup.oomKilled()
		if rerr := c.cgroup.remove(); c.err == nil {
			c.err = rerr
		}
	})
	return c.exit, c.err
}

func exitOf(ps *os.ProcessState) Exit {
	if ps == nil {
		return Exit{Code: 125}
	}
	ws := ps.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return Exit{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return Exit{Code: ws.ExitStatus()}
}
