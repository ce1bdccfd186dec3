// Package runtime runs an OCI runtime-spec as a container: namespaces, the root filesystem,
// /dev, masked and read-only paths, capabilities, no_new_privs, seccomp, the user, the console,
// and exec into a running container.
//
// Its one input is a specs.Spec (plus the root filesystem mount and stdio). It knows nothing of
// images, names or the store, and it never writes to the container's stdout or stderr.
//
//	c, err := runtime.Start(ctx, runtime.Config{ID: id, Spec: spec, StateDir: dir})
//	exit, err := c.Wait()
//
// A container's init is the kiln binary re-executed (argv[0] "kiln-init"): the package's
// initialiser calls Init, which sets the container up and execs the workload; it never returns.
package runtime

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config is everything Start needs.
type Config struct {
	ID       string
	Spec     *specs.Spec  // Root.Path is the root, or the mountpoint of RootFS
	RootFS   *specs.Mount // mounted on Root.Path inside the container's mount namespace; nil: Root.Path is ready
	Stdio    Stdio        // ignored when Spec.Process.Terminal: see Container.Console
	StateDir string       // an existing directory the runtime may use for its own files
	// KeepAlive keeps the container alive when the process that started it dies. By default the
	// container gets SIGKILL then, so it never outlives its monitor.
	KeepAlive bool
	// LockedThread says the caller's goroutine is locked to an OS thread that outlives the
	// container (a monitor's): the init is forked from it. Otherwise Start forks from a thread
	// it keeps for the purpose (the parent-death signal follows the forking thread).
	LockedThread bool
	// ForKeeper makes the init a child of the caller's parent, a detached container's keeper
	// (see StartKeeper), which waits for it: the caller exits once it has started it, and must
	// not Wait. The init dies with the keeper.
	ForKeeper bool
	// OnCreate, when set, runs once the container's namespaces exist and before its process
	// starts, with the init's pid on the host: where a network is plugged in (OCI's
	// createRuntime hook). An error stops the start.
	OnCreate func(pid int) error
	// Early, when set, is this container's init, started by StartEarly. Start uses it if it
	// fits the spec, and otherwise stops it and starts another.
	Early *Early
}

// Stdio are the container's standard streams; nil means /dev/null.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// Exit is how a container's process ended.
type Exit struct {
	Code   int            // the exit status, or 128+N when killed by signal N
	Signal syscall.Signal // the signal that killed it, or 0
	// OOMKilled is true when the kernel's OOM killer killed a process of the container's cgroup.
	OOMKilled bool
}

// Error is a failure to start a container's process, with the exit status Docker gives it:
// 127 when the command is not found, 126 when it cannot be executed, 125 for everything else.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the status a command-line tool should exit with for err.
func ExitCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 125
}

// InitAnnotation, set to "true", makes the container's init stay as PID 1, reap orphans and
// forward signals, instead of becoming the workload (docker run --init).
const InitAnnotation = "org.kiln.init"

func errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}
