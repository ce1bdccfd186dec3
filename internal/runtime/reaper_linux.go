package runtime

import (
	"os"
	"os/signal"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// reap is `--init`: the init stays PID 1, starts the workload as its child, forwards every signal
// to it, reaps every orphan, and exits with the workload's status.
func reap(sock *os.File, path string, p *specs.Process) error {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	proc, err := os.StartProcess(path, p.Args, &os.ProcAttr{
		Env:   p.Env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		return execError(p.Args[0], err)
	}
	sock.Write([]byte{readyByte})
	sock.Close() // the parent's handshake ends: the workload runs
	for {
		if code, done := reapAll(proc.Pid); done {
			os.Exit(code)
		}
		if s := <-sigs; s != syscall.SIGCHLD && s != syscall.SIGURG { // SIGURG is Go's own
			unix.Kill(proc.Pid, s.(syscall.Signal))
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
