package runtime

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/devcgroup"
)

// ExecConfig describes a process to run in a running container.
type ExecConfig struct {
	Pid     int                 // the container's init on the host
	Process *specs.Process      // args, env, cwd, user, capabilities, terminal, ...
	Seccomp *specs.LinuxSeccomp // the container's filter, so exec'd processes get the same
	Stdio   Stdio
}

// nsOrder is the order to join namespaces: the mount namespace last but one (joining it changes
// our root, and /proc/PID/ns paths are opened before), the pid namespace last (it only affects
// children).
var nsOrder = []string{"cgroup", "ipc", "uts", "net", "mnt", "pid"}

// The helper of an exec must never show in the container. Born in the container's pid
// namespace, it would, with threads in the host's mount namespace: the container could open
// /proc/PID/task/TID/root (the host's root, with CAP_SYS_PTRACE) or read its mountinfo (the
// host's mounts, with no capability). So it is born in the host's pid namespace, joins the
// container's mount and pid namespaces on its locked thread, and only the process it forks from
// that thread (spawn: a copy, not a share, of its memory), the command, is born in the
// container: with the container's root, capabilities, filter and identity already on it. The
// helper stays, outside the container, to wait for the command and pass signals and status on.

// Exec starts cfg.Process inside every namespace and the cgroups of the container whose init is
// cfg.Pid, with the same capabilities, no_new_privs and seccomp filter the spec gives it.
func Exec(ctx context.Context, cfg ExecConfig) (*Container, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, &Error{Code: 125, Err: err}
	}
	nss, err := openNamespaces(cfg.Pid)
	if err != nil {
		return nil, &Error{Code: 125, Err: err}
	}
	defer closeAll(nss)
	ours, theirs, err := socketpair()
	if err != nil {
		return nil, &Error{Code: 125, Err: err}
	}
	// The helper is forked in our mount namespace (so the kiln it runs is ours, whatever the
	// container did to its /proc) and pid namespace; it joins the container's two itself.
	later, others := splitLater(nss)
	files, args := []*os.File{exe, theirs}, []string{initArg0}
	for i, ns := range later {
		files = append(files, ns.f)
		args = append(args, fmt.Sprintf("%s=%d", ns.kind, fdLater+i))
	}
	cmd := &exec.Cmd{Path: fmt.Sprintf("/proc/self/fd/%d", fdExe), Args: args, Env: []string{},
		ExtraFiles: files, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	// Born in the container's cgroup2 cgroup: under its device filter before it opens anything.
	if cg, err := containerCgroup2(cfg.Pid); err == nil && cg != nil {
		defer cg.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
	}
	closeNull, err := hostStdio(cmd, cfg.Stdio, cfg.Process.Terminal)
	if err != nil {
		ours.Close()
		theirs.Close()
		return nil, &Error{Code: 125, Err: err}
	}
	err = startInNamespaces(cmd, others)
	theirs.Close()
	closeNull()
	if err != nil {
		ours.Close()
		return nil, &Error{Code: 125, Err: err}
	}
	c := &Container{proc: cmd.Process}
	spec := &specs.Spec{Process: cfg.Process, Linux: &specs.Linux{Seccomp: cfg.Seccomp}}
	msg, err := newInitConfig(modeExec, spec, nil)
	if err != nil {
		c.abort(ours)
		return nil, err
	}
	join := func() error { return joinCgroups(cfg.Pid, cmd.Process.Pid) }
	console, err := handshake(ctx, ours, msg, join)
	ours.Close()
	if err != nil {
		c.proc.Kill()
		c.proc.Wait()
		return nil, err
	}
	c.console = console
	return c, nil
}

type namespace struct {
	kind string
	f    *os.File
}

// openNamespaces opens the container's namespaces that differ from ours.
func openNamespaces(pid int) ([]namespace, error) {
	var nss []namespace
	for _, kind := range nsOrder {
		theirs := fmt.Sprintf("/proc/%d/ns/%s", pid, kind)
		if same, err := sameFile(theirs, "/proc/self/ns/"+kind); err != nil || same {
			if err != nil && !os.IsNotExist(err) {
				closeAll(nss)
				return nil, fmt.Errorf("container %d: %w", pid, err)
			}
			continue
		}
		f, err := os.Open(theirs)
		if err != nil {
			closeAll(nss)
			return nil, err
		}
		nss = append(nss, namespace{kind, f})
	}
	return nss, nil
}

func sameFile(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, &os.PathError{Op: "stat", Path: a, Err: err}
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, &os.PathError{Op: "stat", Path: b, Err: err}
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

func closeAll(nss []namespace) {
	for _, ns := range nss {
		ns.f.Close()
	}
}

// startInNamespaces starts cmd from a thread that has joined nss, so the child is born inside
// them. The thread is never given back to Go: it ends with its goroutine.
func startInNamespaces(cmd *exec.Cmd, nss []namespace) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for _, ns := range nss {
			if err := unix.Setns(int(ns.f.Fd()), 0); err != nil {
				done <- fmt.Errorf("join %s namespace: %w", ns.kind, err)
				return
			}
		}
		done <- cmd.Start()
	}()
	return <-done
}

// joinCgroups puts child in every cgroup the container's init is in.
func joinCgroups(pid, child int) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dir := cgroupDir(sc.Text())
		if dir == "" {
			continue
		}
		err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(child)), 0)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("join cgroup %s: %w", dir, err)
		}
	}
	return sc.Err()
}

// cgroupDir maps a /proc/PID/cgroup line to the directory of that cgroup on the host.
func cgroupDir(line string) string {
	parts := strings.SplitN(line, ":", 3)
	if len(parts) != 3 || parts[2] == "/" {
		return ""
	}
	if parts[0] == "0" && parts[1] == "" {
		if cgroup2Only() {
			return filepath.Join(cgroupRoot, parts[2])
		}
		return filepath.Join(cgroupRoot, "unified", parts[2])
	}
	ctrl := strings.TrimPrefix(strings.Split(parts[1], ",")[0], "name=")
	return filepath.Join(cgroupRoot, ctrl, parts[2])
}

// initExec runs in the helper Exec started: in the container's cgroups and its ipc, uts, net
// and cgroup namespaces, not yet in its mount and pid namespaces (see nsOrder).
func initExec(g *gate, cfg *initConfig) error {
	spec := cfg.Spec.spec()
	if spec == nil || spec.Process == nil || len(spec.Process.Args) == 0 {
		return errorf(125, "exec: no process")
	}
	closeHeld(fdExe, fdSock, fdLater, fdLater+1) // kiln's inherited descriptors: the command's fork copies ours
	if err := joinLater(os.Args[1:]); err != nil {
		return err
	}
	if err := openConsole(g.sock, "/", spec.Process); err != nil {
		return wrapStep("set up console", err)
	}
	return startWorkload(g, spec, cfg.Seccomp)
}

// fdLater is the first descriptor on which Exec passes the helper the namespaces it joins itself,
// each named by an argument KIND=FD (a descriptor's mere presence proves nothing: the Go runtime
// opens its own).
const fdLater = 5

// joinLater joins the mount namespace, then the pid namespace, on this thread: the command is
// forked from it (spawn), and so born in both. The helper's other threads stay in the host's; no
// process of the container sees them (the helper is in the host's pid namespace), and the
// command does not share their memory.
func joinLater(args []string) error {
	for _, kind := range []string{"mnt", "pid"} {
		fd, ok := laterFd(args, kind)
		if !ok {
			continue // the container shares ours
		}
		err := joinLaterNS(kind, fd)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return nil
}

func joinLaterNS(kind string, fd int) error {
	if kind == "pid" {
		if err := unix.Setns(fd, unix.CLONE_NEWPID); err != nil {
			return errorf(125, "join pid namespace: %v", err)
		}
		return nil
	}
	// setns(CLONE_NEWNS) needs a thread whose fs state (root, cwd) is its own.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return errorf(125, "unshare fs: %v", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return errorf(125, "join mount namespace: %v", err)
	}
	return nil
}

// laterFd finds KIND=FD among args.
func laterFd(args []string, kind string) (int, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, kind+"="); ok {
			if fd, err := strconv.Atoi(v); err == nil && fd >= fdLater {
				return fd, true
			}
		}
	}
	return -1, false
}

// splitLater separates the namespaces the helper joins itself (mount, then pid) from the others.
func splitLater(nss []namespace) (later, others []namespace) {
	for _, ns := range nss {
		if ns.kind == "mnt" || ns.kind == "pid" {
			later = append(later, ns)
			continue
		}
		others = append(others, ns)
	}
	return later, others
}

// containerCgroup2 opens the cgroup2 cgroup of the container's process, or nil without one.
func containerCgroup2(pid int) (*os.File, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	u := devcgroup.Unified()
	for _, line := range strings.Split(string(b), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok && u != "" && rel != "/" {
			return os.Open(filepath.Join(u, rel))
		}
	}
	return nil, nil
}

// hostStdio gives the helper explicit stdio, opened here in the host's namespaces: left to
// os/exec, a missing stream would be opened as /dev/null after joining the container's, where
// the container decides what /dev/null is. The returned function closes what it opened.
func hostStdio(cmd *exec.Cmd, s Stdio, terminal bool) (func(), error) {
	if terminal {
		s = Stdio{} // the helper's stdio becomes the console; until then, /dev/null
	}
	var opened []*os.File
	cleanup := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	for i, f := range []**os.File{&s.Stdin, &s.Stdout, &s.Stderr} {
		if *f != nil {
			continue
		}
		flag := os.O_WRONLY
		if i == 0 {
			flag = os.O_RDONLY
		}
		null, err := os.OpenFile(os.DevNull, flag, 0)
		if err != nil {
			cleanup()
			return nil, err
		}
		*f = null
		opened = append(opened, null)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, s.Stdout, s.Stderr
	return cleanup, nil
}
