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
	cmd := &exec.Cmd{Path: fmt.Sprintf("/proc/self/fd/%d", fdExe), Args: []string{initArg0}, Env: []string{},
		ExtraFiles: []*os.File{exe, theirs}, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if !cfg.Process.Terminal {
		setStdio(cmd, cfg.Stdio)
	}
	err = startInNamespaces(cmd, nss)
	theirs.Close()
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
		// setns(CLONE_NEWNS) needs a thread whose fs state (root, cwd) is its own.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			done <- fmt.Errorf("unshare fs: %w", err)
			return
		}
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

// initExec runs in the child Exec started: it is already in the container; it only needs the
// console and the process's identity and filters.
func initExec(g *gate, cfg *initConfig) error {
	if cfg.Spec == nil || cfg.Spec.Process == nil || len(cfg.Spec.Process.Args) == 0 {
		return errorf(125, "exec: no process")
	}
	if err := openConsole(g.sock, "/", cfg.Spec.Process); err != nil {
		return wrapStep("set up console", err)
	}
	return startWorkload(g, cfg.Spec, cfg.Seccomp)
}
