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

	once sync.Once
	exit Exit
	err  error
}

// Start creates the container's namespaces and root, and runs its process. It returns once the
// process runs, or with an *Error saying which step failed.
func Start(ctx context.Context, cfg Config) (*Container, error) {
	if err := validate(cfg.Spec); err != nil {
		return nil, &Error{Code: 125, Err: err}
	}
	msg, err := newInitConfig(modeRun, cfg.Spec, cfg.RootFS)
	if err != nil {
		return nil, err
	}
	cg, err := newCgroup(cfg.ID, cfg.Spec)
	if err != nil {
		return nil, &Error{Code: 125, Err: err}
	}
	cmd, sock, err := startInit(cfg, cg)
	if err != nil {
		cg.remove()
		return nil, &Error{Code: 125, Err: err}
	}
	c := &Container{proc: cmd.Process, cgroup: cg}
	// Joining a v1 cgroup waits for an RCU grace period (milliseconds): do it while the init
	// sets up mounts; the init waits for goByte before it execs the workload.
	join := func() error {
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
	return nil
}

// startInit runs the kiln binary as the container's init inside new namespaces. fd 3 of the
// init is its own executable (read-only), fd 4 the socket to us.
func startInit(cfg Config, cg *cgroup) (*exec.Cmd, *os.File, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, nil, err
	}
	ours, theirs, err := socketpair()
	if err != nil {
		return nil, nil, err
	}
	defer theirs.Close()
	flags, err := cloneFlags(cfg.Spec.Linux.Namespaces)
	if err != nil {
		ours.Close()
		return nil, nil, err
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/3",
		Args:       []string{initArg0},
		Env:        []string{},
		ExtraFiles: []*os.File{exe, theirs},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: flags,
			Setsid:     true,
		},
	}
	if !cfg.KeepAlive {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	cg.prepare(cmd.SysProcAttr)
	if !cfg.Spec.Process.Terminal {
		setStdio(cmd, cfg.Stdio)
	}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, nil, fmt.Errorf("start container init: %w", err)
	}
	return cmd, ours, nil
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
		return nil, &Error{Code: 125, Err: err}
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

// Adopt takes over a container whose process is this process's child but was started by an
// earlier program this process ran before an execve (the detached monitor sheds its start-up
// memory that way). id names the container, to release its cgroup when it ends.
func Adopt(id string, pid int) (*Container, error) {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil, err
	}
	return &Container{proc: p, cgroup: existingCgroup(id)}, nil
}
