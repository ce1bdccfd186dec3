package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/runtime"
)

// monitorArg0 marks a kiln process as the monitor of a detached container.
const monitorArg0 = "kiln-monitor"

// monitorReport is what a monitor tells the kiln that started it.
type monitorReport struct {
	Code  int    `json:",omitempty"`
	Error string `json:",omitempty"`
}

// detach hands the prepared container to a monitor in its own session and prints the ID once the
// container runs.
func detach(e *env, p *prepared) error {
	r, w, err := os.Pipe()
	if err != nil {
		p.discard()
		return err
	}
	defer r.Close()
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{monitorArg0, p.root, p.rec.ID()},
		Env: os.Environ(), ExtraFiles: []*os.File{w}, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	err = cmd.Start()
	w.Close()
	if err != nil {
		p.discard()
		return fmt.Errorf("start monitor: %w", err)
	}
	cmd.Process.Release()
	var rep monitorReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		p.discard()
		return fmt.Errorf("monitor of %s: %w", p.rec.ID(), err)
	}
	if rep.Error != "" {
		return &runtime.Error{Code: rep.Code, Err: errors.New(rep.Error)}
	}
	fmt.Fprintln(e.stdout, p.rec.ID())
	return nil
}

// Monitor runs a detached container's monitor when this process is one, and never returns then.
// Call it first thing in main.
func Monitor() {
	switch {
	case len(os.Args) == 3 && os.Args[0] == monitorArg0:
		goruntime.LockOSThread() // the container's parent thread; see becomeWaiter
		// Nothing of the caller's (its directory, its descriptors above the report pipe) stays
		// with a monitor that lives as long as the container.
		os.Chdir("/")
		unix.CloseRange(4, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
		os.Exit(monitor(os.Args[1], os.Args[2], os.NewFile(3, "report")))
	case len(os.Args) == 6 && os.Args[0] == waiterArg0:
		os.Exit(waiter(os.Args[1], os.Args[2], os.Args[3:]))
	}
}

// monitor starts the container with its output going to the log, tells the starting kiln how
// that went, then waits for the container and records its end.
func monitor(root, id string, report *os.File) int {
	tell := func(rep monitorReport) { json.NewEncoder(report).Encode(rep); report.Close() }
	p, err := loadPrepared(root, id)
	if err != nil {
		tell(monitorReport{Code: 125, Error: err.Error()})
		return 1
	}
	log, err := os.OpenFile(p.rec.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.discard()
		tell(monitorReport{Code: 125, Error: err.Error()})
		return 1
	}
	// The container writes into a pipe, never the log file itself (see shield.go).
	r, w, err := os.Pipe()
	if err != nil {
		p.discard()
		tell(monitorReport{Code: 125, Error: err.Error()})
		return 1
	}
	p.lockedThread = true // see Monitor and becomeWaiter
	ctr, err := p.start(context.Background(), runtime.Stdio{Stdout: w, Stderr: w}, nil)
	w.Close()
	if err != nil {
		p.discard()
		tell(monitorReport{Code: runtime.ExitCode(err), Error: err.Error()})
		return 1
	}
	tell(monitorReport{})
	src := r
	if c := ctr.Console(); c != nil {
		src = c
	}
	becomeWaiter(root, id, ctr, log, src)
	// Only if the exec failed: wait here, with everything start-up left in memory.
	go io.Copy(log, src)
	p.finish(ctr)
	return 0
}

// waiterArg0 marks the lean half of a monitor: the same process after an execve, waiting.
const waiterArg0 = "kiln-wait"

// becomeWaiter replaces the monitor's program with a fresh kiln that only waits: the container
// stays its child across execve, and none of what preparing and starting it used stays
// resident. The fork and this exec happen on the same locked thread, so the container's
// parent-death signal does not fire. log and src (the pipe or console the container writes to)
// survive the exec under their own numbers.
func becomeWaiter(root, id string, ctr *runtime.Container, log, src *os.File) error {
	for _, f := range []*os.File{log, src} {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
			return err
		}
	}
	args := []string{waiterArg0, root, id, strconv.Itoa(ctr.Pid()),
		strconv.Itoa(int(log.Fd())), strconv.Itoa(int(src.Fd()))}
	return unix.Exec("/proc/self/exe", args, os.Environ())
}

// waiter is the monitor after becomeWaiter: copy the container's output to the log, wait for the
// container, record its end. Signals meant for a terminal, or a shutdown's first round, do not
// end it: the container's exit does.
func waiter(root, id string, args []string) int {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	var nums [3]int
	for i, a := range args {
		n, err := strconv.Atoi(a)
		if err != nil {
			return 1
		}
		nums[i] = n
	}
	ctr, err := runtime.Adopt(id, nums[0])
	if err != nil {
		return 1
	}
	cs, err := container.Open(root)
	if err != nil {
		return 1
	}
	rec, err := cs.Get(id)
	if err != nil {
		return 1
	}
	copied := make(chan struct{})
	go func() {
		io.Copy(os.NewFile(uintptr(nums[1]), "log"), os.NewFile(uintptr(nums[2]), "output"))
		close(copied)
	}()
	debug.FreeOSMemory()
	trimResident()
	exit, _ := ctr.Wait()
	select { // what the container wrote before it exited
	case <-copied:
	case <-time.After(time.Second):
	}
	(&prepared{rec: rec, root: root}).record(exit)
	return 0
}

func loadPrepared(root, id string) (*prepared, error) {
	cs, err := container.Open(root)
	if err != nil {
		return nil, err
	}
	rec, err := cs.Get(id)
	if err != nil {
		return nil, err
	}
	return load(rec, root)
}
