package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-project/kiln/internal/devcgroup"
)

// Early is a container's init started before the container's spec is complete. Making the
// namespaces, executing the init and the Go runtime's start take a third of a container's start;
// begun early, they overlap with the caller's own preparation (the image, the record, the
// spec). An early init waits for its config like any other: until Start sends it, it has done
// nothing but exist in its namespaces and its cgroup.
type Early struct {
	id       string
	flags    uintptr
	terminal bool
	stdio    Stdio
	ready    chan struct{} // closed once the start below has ended, well or not
	err      error
	cmd      *exec.Cmd
	sock     *os.File
	release  func()
	v2       string // the cgroup2 directory it was born in, or ""
	// Without cgroup2: the v1 devices cgroup made for it, or "", which it is moved into after
	// ready; joined is closed once that is over, in1 says if it worked.
	v1     string
	joined chan struct{}
	in1    bool
}

// StartEarly starts the init of container id in new namespaces nss, with stdio (unused when
// terminal: the init makes the terminal). It returns at once: the fork and exec go on in the
// background too. The caller passes the result to Start in Config.Early, or calls Abort. If
// the early start fails, Start starts the init the usual way and reports what goes wrong.
func StartEarly(id string, nss []specs.LinuxNamespace, stdio Stdio, terminal bool) (*Early, error) {
	flags, err := cloneFlags(nss)
	if err != nil {
		return nil, err
	}
	e := &Early{id: id, flags: flags, terminal: terminal, stdio: stdio, ready: make(chan struct{}), joined: make(chan struct{})}
	go e.run()
	return e, nil
}

// run starts the init from this goroutine's own thread, then keeps the thread until release:
// the kernel sends the init's parent-death signal when the thread that forked it ends (see
// startOnOwnThread, which this is without a second goroutine to hand over to).
func (e *Early) run() {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	done := make(chan struct{})
	e.err = e.start()
	if e.err == nil {
		e.release = sync.OnceFunc(func() { close(done) })
	}
	close(e.ready)
	if e.err == nil {
		e.joinDevices1()
	}
	close(e.joined)
	if e.err == nil {
		<-done
	}
}

func (e *Early) start() error {
	cg, err := e.cgroup()
	if err != nil {
		return err
	}
	var in *Stdio
	if !e.terminal {
		in = &e.stdio
	}
	e.cmd, e.sock, _, err = spawnInit(e.flags, cg, in, false, true)
	if cg != nil {
		cg.v2fd.Close()
	}
	if err != nil {
		e.removeCgroup()
	}
	return err
}

// joinDevices1 moves the init into its v1 devices cgroup, where the host has no cgroup2 for the
// device filter: a v1 migration waits for an RCU grace period (5 ms here), which this way
// passes beside the init's Go start and the caller's preparation; Start waits for it only
// before its go byte, and writes the allow-list first. A failure leaves the joining to Start.
func (e *Early) joinDevices1() {
	if e.v1 != "" {
		e.in1 = writeFile(e.v1, "cgroup.procs", strconv.Itoa(e.cmd.Process.Pid)) == nil
	}
}

// cgroup makes the cgroup2 directory the init is born in, where the host has cgroup2; its
// limits and device filter are written by Start, before the workload runs. Without cgroup2 it
// makes the v1 devices directory joinDevices1 moves the init into (best effort).
func (e *Early) cgroup() (*cgroup, error) {
	u := devcgroup.Unified()
	if u == "" {
		if h := v1Hierarchy("devices"); h != "" {
			dir := filepath.Join(cgroupRoot, h, "kiln", e.id)
			if os.MkdirAll(dir, 0o755) == nil {
				e.v1 = dir
			}
		}
		return nil, nil
	}
	e.v2 = filepath.Join(u, "kiln", e.id)
	if err := os.MkdirAll(e.v2, 0o755); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	f, err := os.Open(e.v2)
	if err != nil {
		e.removeCgroup()
		return nil, err
	}
	return &cgroup{v2: e.v2, v2fd: f}, nil
}

// Abort stops an early init that will not be used, and removes its cgroup.
func (e *Early) Abort() { e.abort() }

func (e *Early) abort() {
	if e == nil {
		return
	}
	if <-e.ready; e.err != nil {
		return // nothing runs, nothing is left
	}
	<-e.joined
	e.sock.Close() // the init, waiting for its config, reads EOF and ends
	e.cmd.Process.Kill()
	e.cmd.Wait()
	e.release()
	e.removeCgroup()
}

func (e *Early) removeCgroup() {
	for _, d := range []string{e.v2, e.v1} {
		if d != "" {
			rmdirRetry(d)
		}
	}
}

// takeFor returns e if it can be the init of cfg, as it was started; if not, it stops it and
// returns nil. A nil e gives nil.
func (e *Early) takeFor(cfg Config) *Early {
	if e == nil {
		return nil
	}
	if <-e.ready; e.err != nil {
		return nil
	}
	if err := e.fits(cfg); err != nil {
		e.abort()
		return nil
	}
	return e
}

func (e *Early) fits(cfg Config) error {
	flags, err := cloneFlags(cfg.Spec.Linux.Namespaces)
	switch {
	case err != nil:
		return err
	case flags != e.flags:
		return errors.New("other namespaces")
	case cfg.ID != e.id || ((e.v2 != "" || e.v1 != "") && cgroupPath(cfg.ID, cfg.Spec) != "/kiln/"+e.id):
		return errors.New("another cgroup")
	case cfg.KeepAlive || cfg.LockedThread || cfg.ForKeeper:
		return errors.New("kept alive, or forked from the caller's thread")
	case cfg.Spec.Process.Terminal != e.terminal:
		return errors.New("terminal differs")
	case !e.terminal && cfg.Stdio != e.stdio:
		return errors.New("other stdio")
	}
	return nil
}
