package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-project/kiln/internal/atomicfile"
	"github.com/kiln-project/kiln/internal/flock"
)

// Status is where a container is in its life.
type Status string

const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusExited  Status = "exited"
)

// State is a container's record, kept in state.json.
type State struct {
	ID          string // 64 hex digits
	Name        string // Docker's grammar; see ValidateName
	Image       string // as the user named it
	ImageDigest string // the manifest it resolved to

	Created  time.Time
	Started  time.Time `json:",omitzero"`
	Finished time.Time `json:",omitzero"`

	Status       Status
	Pid          int    `json:",omitempty"` // the container's process on the host
	PidStart     uint64 `json:",omitempty"` // its start time (see StartTime): a reused pid is not it
	MonitorPid   int    `json:",omitempty"` // the process that waits for it and records its exit
	MonitorStart uint64 `json:",omitempty"`
	ExitCode     int
	OOMKilled    bool   `json:",omitempty"`
	Error        string `json:",omitempty"` // why it failed to start, or why its exit code is a guess

	AutoRemove  bool   `json:",omitempty"`
	Detached    bool   `json:",omitempty"`
	Terminal    bool   `json:",omitempty"`
	StopSignal  string `json:",omitempty"`
	StopTimeout int    // seconds from StopSignal to SIGKILL

	Command     []string          `json:",omitempty"` // what it runs, for ps
	Layers      []string          `json:",omitempty"` // diffIDs of the image layers it uses (store gc keeps them)
	AnonVolumes []string          `json:",omitempty"` // removed with `kiln rm -v`
	Volumes     []string          `json:",omitempty"` // named volumes it uses
	Ports       []Port            `json:",omitempty"`
	Network     string            `json:",omitempty"` // the network it is on, or none, host, container:ID
	IPAddress   string            `json:",omitempty"` // its address on Network
	Labels      map[string]string `json:",omitempty"`
}

// Port is a published port.
type Port struct {
	HostIP        string `json:",omitempty"`
	HostPort      uint16
	ContainerPort uint16
	Protocol      string // "tcp", "udp", "sctp"
}

// exitUnknown is Docker's exit code for a container whose real exit status was never recorded.
const exitUnknown = 255

// monitorGrace bounds how long State waits for a live monitor that has reaped the container's
// process to record its exit status (it does so right after wait(2) returns).
const monitorGrace = time.Second

// State reads the container's state and refreshes it: when the recorded process is gone, or
// the kiln making it died before it started, the container is reported exited. If its monitor is gone too, nobody will ever record the exit
// status, so State records exit code 255 with an Error saying why (under the lock, once).
func (c *Container) State() (*State, error) {
	st, err := c.read()
	if err == nil && st.creatorGone() {
		return c.update(func(s *State) error {
			if s.creatorGone() {
				s.markLost("kiln died before the container started")
			}
			return nil
		})
	}
	if err != nil || !st.processGone() {
		return st, err
	}
	for deadline := time.Now().Add(monitorGrace); st.monitorAlive() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if st, err = c.read(); err != nil || !st.processGone() {
			return st, err
		}
	}
	if st.monitorAlive() {
		// A hung monitor may still record the real code: report, but do not persist, a guess.
		st.markLost(fmt.Sprintf("monitor (pid %d) has not recorded the exit status", st.MonitorPid))
		return st, nil
	}
	return c.update(func(s *State) error {
		if s.processGone() && !s.monitorAlive() {
			s.markLost("monitor died (kill -9?)")
		}
		return nil
	})
}

// processGone: the record says the process is there, and it is not.
func (st *State) processGone() bool {
	if st.Status == StatusExited || st.Status == StatusCreated && st.Pid <= 0 {
		return false
	}
	return !Alive(st.Pid, st.PidStart)
}

// creatorGone: a container still being made, by a monitor (a foreground kiln) that is gone.
func (st *State) creatorGone() bool {
	return st.Status == StatusCreated && st.Pid <= 0 && st.MonitorPid > 0 && !st.monitorAlive()
}

func (st *State) monitorAlive() bool { return Alive(st.MonitorPid, st.MonitorStart) }

func (st *State) markLost(why string) {
	st.Status, st.ExitCode, st.Error = StatusExited, exitUnknown, why
	if st.Finished.IsZero() {
		st.Finished = time.Now().UTC()
	}
}

// Update changes the container's state: under the container's lock it reads state.json, calls
// f, and writes the result atomically (temp file, fsync, rename), so concurrent updates from
// any process are never lost. An error from f is returned as is and nothing is written.
// ID and Name cannot change.
func (c *Container) Update(f func(*State) error) error {
	_, err := c.update(f)
	return err
}

func (c *Container) update(f func(*State) error) (*State, error) {
	lock, err := flock.Open(context.Background(), filepath.Join(c.dir, "lock"), flock.Exclusive, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c.id)
	}
	if err != nil {
		return nil, fmt.Errorf("update container %s: %w", c.id, err)
	}
	defer lock.Close()
	st, err := c.read() // after taking the lock: a Remove that held it has renamed the dir away
	if err != nil {
		return nil, err
	}
	id, name := st.ID, st.Name
	if err := f(st); err != nil {
		return nil, err
	}
	if st.ID != id || st.Name != name {
		return nil, fmt.Errorf("update container %s: ID and Name cannot change", c.id)
	}
	if err := writeState(c.dir, st); err != nil {
		return nil, fmt.Errorf("update container %s: %w", c.id, err)
	}
	return st, nil
}

// Saved returns the record as last written, without checking the processes it names: for the
// monitor itself, which State would wait for to record the exit.
func (c *Container) Saved() (*State, error) { return c.read() }

func (c *Container) read() (*State, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c.id)
	}
	if err != nil {
		return nil, fmt.Errorf("read container %s: %w", c.id, err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read container %s: %s: %w", c.id, filepath.Join(c.dir, "state.json"), err)
	}
	return &st, nil
}

// writeState replaces dir/state.json atomically for readers. Nothing is fsynced: a record only
// matters while the host is up (a crash ends every container), and Remove copes with a
// state.json the crash left empty. On the start path each fsync cost a millisecond.
func writeState(dir string, st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, "state.json"), append(b, '\n'), 0o600, atomicfile.NoSync, "")
}
