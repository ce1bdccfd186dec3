package runtime

import (
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// reap is `--init`: the init stays PID 1, starts the workload as its child (spawn), forwards every
// signal to it, reaps every orphan, and exits with the workload's status. An exec's helper does
// the same from outside the container (see initExec). On a terminal the workload gets the
// foreground process group, so the keys that signal (^C, ^Z, ^\) reach it once, not twice.
//
// PID 1 catches signals before the workload can send it any: Go's default for SIGTERM is to exit.
// Nothing in the container can signal an exec's helper, and kiln sends it none before the
// handshake ends: it catches them while the command starts (Go enables each of the 64 signals
// with a round trip to its signal thread).
func reap(sock *os.File, path string, p *specs.Process, inside bool) error {
	sigs := make(chan os.Signal, 16)
	caught := make(chan struct{})
	go func() { signal.Notify(sigs); close(caught) }()
	if inside {
		<-caught
	}
	pid, err := spawn(path, p.Args, p.Env, p.Terminal)
	if err != nil {
		return execError(p.Args[0], err)
	}
	<-caught
	sock.Write([]byte{readyByte})
	sock.Close() // the parent's handshake ends: the workload runs
	closeHeld()
	for {
		if code, done := reapAll(pid); done {
			os.Exit(code)
		}
		if s := <-sigs; s != syscall.SIGCHLD && s != syscall.SIGURG { // SIGURG is Go's own
			unix.Kill(pid, s.(syscall.Signal))
		}
	}
}

// closeHeld closes what this process holds beyond stdio and keep: the kiln binary, and whatever
// kiln inherited from its caller (close-on-exec, but a reaper never execs). The Go runtime's own
// (its poller's epoll and eventfd), anonymous inodes, stay. It reads /proc/self/fd: in an exec's
// helper, call it before joining the container's mount namespace, whose /proc does not show us.
func closeHeld(keep ...int) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 || slices.Contains(keep, fd) {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && !strings.HasPrefix(target, "anon_inode:") {
			unix.Close(fd)
		}
	}
}

// reapAll collects every exited child; done reports that the workload itself exited.
func reapAll(child int) (int, bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return 0, false
		}
		if pid != child {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}
