package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"syscall"

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
	if len(os.Args) != 3 || os.Args[0] != monitorArg0 {
		return
	}
	os.Exit(monitor(os.Args[1], os.Args[2], os.NewFile(3, "report")))
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
	ctr, err := p.start(context.Background(), runtime.Stdio{Stdout: log, Stderr: log})
	if err != nil {
		p.discard()
		tell(monitorReport{Code: runtime.ExitCode(err), Error: err.Error()})
		return 1
	}
	tell(monitorReport{})
	if c := ctr.Console(); c != nil {
		go io.Copy(log, c)
	}
	log.Close()
	debug.FreeOSMemory() // the monitor idles for the container's life: give back what start used
	p.finish(ctr)
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
