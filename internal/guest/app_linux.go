package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// Exit statuses kiln-init reports for itself, as docker run and kiln run do.
const (
	StatusSetupFailed   = 125
	StatusCannotExecute = 126
	StatusNotFound      = 127
)

// forwarded are the signals PID 1 passes on to the app. SIGINT is also what the kernel sends
// on Ctrl-Alt-Del once that is turned over to init.
var forwarded = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT,
	unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR, unix.SIGWINCH}

// appError is a failure to start the app, with the status it maps to.
type appError struct {
	status int
	err    error
}

func (e *appError) Error() string { return e.err.Error() }
func (e *appError) Unwrap() error { return e.err }

// lookPath finds a command the way execvp does, in the PATH of env, in the app's workdir: a
// relative name ("./app") or PATH entry is relative to it, as the app's exec will be.
func lookPath(name string, env []string, workdir string) (string, error) {
	if strings.Contains(name, "/") {
		p := inDir(workdir, name)
		return p, checkExecutable(p)
	}
	var firstErr error
	for _, dir := range filepath.SplitList(getenv(env, "PATH")) {
		p := inDir(workdir, filepath.Join(dir, name))
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if firstErr == nil && !errors.Is(err, fs.ErrNotExist) {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", &appError{StatusNotFound, fmt.Errorf("%s: not found in PATH %s", name, getenv(env, "PATH"))}
}

// inDir is p, made absolute from dir when relative.
func inDir(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return &appError{StatusNotFound, err}
	case st.IsDir() || st.Mode()&0o111 == 0:
		return &appError{StatusCannotExecute, &os.PathError{Op: "exec", Path: p, Err: unix.EACCES}}
	}
	return nil
}

// startApp starts the app with stdin from /dev/null and stdout, stderr as given, in its own
// session, as the config's user.
func startApp(c *bootconfig.Config, stdout, stderr *os.File) (*os.Process, error) {
	path, err := lookPath(c.Args[0], c.Env, c.Workdir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Workdir, 0o755); err != nil {
		return nil, &appError{StatusSetupFailed, fmt.Errorf("workdir: %w", err)}
	}
	uid, gid, _ := parseUser(c.User) // checked by LoadConfig
	null, err := os.Open(os.DevNull)
	if err != nil {
		return nil, &appError{StatusSetupFailed, err}
	}
	defer null.Close()
	p, err := os.StartProcess(path, c.Args, &os.ProcAttr{
		Dir:   c.Workdir,
		Env:   c.Env,
		Files: []*os.File{null, stdout, stderr},
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
		},
	})
	if err != nil {
		status := StatusCannotExecute
		if errors.Is(err, fs.ErrNotExist) { // e.g. a missing ELF interpreter
			status = StatusNotFound
		}
		return nil, &appError{status, err}
	}
	return p, nil
}

// superviseApp forwards signals to the app and reaps every child (orphans are reparented to
// PID 1) until the app exits, and returns its exit status (128+N when killed by signal N).
// sigs must have been registered before the app started, so no SIGCHLD is missed.
func superviseApp(app *os.Process, sigs chan os.Signal) int {
	for {
		if status, done := reap(app.Pid); done {
			return status
		}
		if s := <-sigs; s != unix.SIGCHLD {
			app.Signal(s)
		}
	}
}

// reap collects every exited child without blocking; done is set when pid was one of them.
func reap(pid int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || got <= 0 {
			return status, done
		}
		if got == pid {
			status, done = exitStatus(ws), true
		}
	}
}

func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// killRest kills every process left (daemons the app started) and reaps them, waiting at
// most wait: the app is the VM's reason to run.
func killRest(wait time.Duration) {
	unix.Kill(-1, unix.SIGKILL) // every process but PID 1 itself
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		pid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		if errors.Is(err, unix.ECHILD) {
			return
		}
		if pid <= 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// notifySignals registers for SIGCHLD and the forwarded signals.
func notifySignals() chan os.Signal {
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, append([]os.Signal{unix.SIGCHLD}, forwarded...)...)
	return sigs
}
