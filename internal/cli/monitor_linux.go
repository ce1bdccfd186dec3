package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	goruntime "runtime"
	"strconv"
	"syscall"

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

// recordArg0 marks the kiln a keeper execs once its container has ended, to record that.
const recordArg0 = "kiln-record"

// detach hands the prepared container to a keeper and its monitor, in a session of their own,
// and prints the ID once the container runs (see runtime.StartKeeper). The monitor starts it
// and tells this kiln how that went; the keeper waits for it, keeps its log, and records its
// end.
func detach(e *env, p *prepared) error {
	log, err := os.OpenFile(p.rec.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		p.discard()
		return err
	}
	defer log.Close()
	r, w, err := os.Pipe()
	if err != nil {
		p.discard()
		return err
	}
	defer r.Close()
	_, err = runtime.StartKeeper(runtime.Keeper{Log: log, Report: w, Env: os.Environ(), Title: "kiln-keeper " + p.rec.ID()[:12],
		Monitor: []string{monitorArg0, p.root, p.rec.ID()}, Record: []string{recordArg0, p.root, p.rec.ID()}})
	w.Close()
	if err != nil {
		p.discard()
		return fmt.Errorf("start monitor: %w", err)
	}
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

// Monitor runs a detached container's monitor, or records its end, when this process is one of
// those, and never returns then. Call it first thing in main.
func Monitor() {
	switch {
	case len(os.Args) == 3 && os.Args[0] == monitorArg0:
		goruntime.LockOSThread() // the init is forked from this thread
		// Nothing of the caller's (its directory, its descriptors above the keeper's socket)
		// reaches the container.
		os.Chdir("/")
		unix.CloseRange(4, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
		os.Exit(monitor(os.Args[1], os.Args[2], os.NewFile(3, "report"), runtime.KeeperSocket()))
	case len(os.Args) == 4 && os.Args[0] == recordArg0:
		os.Exit(recordEnd(os.Args[1], os.Args[2], os.Args[3]))
	}
}

// monitor starts the container as its keeper's child, with its output going to the keeper,
// hands it to the keeper, and tells the starting kiln how that went.
func monitor(root, id string, report, keeper *os.File) int {
	tell := func(rep monitorReport) { json.NewEncoder(report).Encode(rep); report.Close() }
	if keeper == nil {
		tell(monitorReport{Code: 125, Error: "monitor: no keeper"})
		return 1
	}
	p, err := loadPrepared(root, id)
	if err != nil {
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
	p.lockedThread, p.forKeeper = true, true
	ctr, err := p.start(context.Background(), runtime.Stdio{Stdout: w, Stderr: w}, nil)
	w.Close()
	if err != nil {
		p.discard()
		tell(monitorReport{Code: runtime.ExitCode(err), Error: err.Error()})
		return 1
	}
	src := r
	if c := ctr.Console(); c != nil {
		src = c
	}
	if err := runtime.HandToKeeper(keeper, ctr.Pid(), src); err != nil {
		ctr.Signal(syscall.SIGKILL) // the keeper reaps it; the record says it was lost
		tell(monitorReport{Code: 125, Error: err.Error()})
		return 1
	}
	tell(monitorReport{})
	return 0
}

// recordEnd is the kiln a keeper execs once it has reaped its container, with its wait status:
// it records how the container ended, releases its network and cgroups, and removes it if it
// was run with --rm.
func recordEnd(root, id, status string) int {
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ws, err := strconv.ParseUint(status, 10, 32)
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
	exit, _ := runtime.Ended(id, syscall.WaitStatus(ws))
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
