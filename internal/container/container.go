// Package container keeps the records of containers under $ROOT/containers: each container's
// state.json, its name, its copy-on-write directories and its log. There is no daemon, so the
// records outlive the kiln process that wrote them: every change is made under a file lock and
// written atomically, and a reader checks recorded pids against /proc before trusting them.
//
// It never starts or signals a process (internal/runtime does) and never builds a runtime spec
// (internal/runspec does).
//
// On disk:
//
//	$ROOT/containers/
//	  <id>/          state.json, lock, upper/, work/, rootfs/, container.log, and what others keep there
//	  names/<name>   the id of the container holding the name
//	  names.lock     flock: exclusive while a name is claimed or freed
//	  tmp/           containers being created (<id>) or removed (rm-<id>)
//	  tmp.lock       flock: shared by Create and Remove while they use tmp/, exclusive by the cleanup
//
// A container directory appears and disappears by rename, so a reader sees all of one or nothing.
//
//	cs, err := container.Open(root)
//	c, err := cs.Create(&container.State{Image: "curl:latest", ImageDigest: digest})
//	err = c.Update(func(st *container.State) error { st.Status = container.StatusRunning; return nil })
//	st, err := c.State() // refreshed: a dead process is reported as exited
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kiln-project/kiln/internal/flock"
)

var (
	ErrNotFound  = errors.New("no such container")
	ErrAmbiguous = errors.New("ambiguous container reference")
	ErrNameInUse = errors.New("container name already in use")
	ErrRunning   = errors.New("container is running")
)

// NameInUseError says which container holds a name. It matches ErrNameInUse.
type NameInUseError struct{ Name, ID string }

func (e *NameInUseError) Error() string {
	return fmt.Sprintf("container name %q is already in use by container %s: remove that container or choose another name", e.Name, e.ID)
}

func (e *NameInUseError) Is(target error) bool { return target == ErrNameInUse }

// Containers is the set of container records under one kiln root.
type Containers struct {
	dir   string        // $ROOT/containers, absolute, symlinks resolved (mount points are compared to it)
	newID func() string // tests replace it to make ids share a prefix
}

// Container is a handle on one container's record; its state is read afresh by each call.
type Container struct {
	cs  *Containers
	id  string
	dir string
}

// minPrefix is the shortest id prefix Get accepts.
const minPrefix = 3

// Open opens (creating it, 0700) root/containers. It also removes what a crashed Create or
// Remove left in tmp/, unless another kiln process is using tmp/ right now.
func Open(root string) (*Containers, error) {
	dir, err := filepath.Abs(filepath.Join(root, "containers"))
	if err != nil {
		return nil, fmt.Errorf("open containers: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "names"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open containers: %w", err)
		}
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return nil, fmt.Errorf("open containers: %w", err)
	}
	cs := &Containers{dir: dir, newID: newID}
	cs.cleanup()
	return cs, nil
}

func (cs *Containers) path(elem ...string) string {
	return filepath.Join(append([]string{cs.dir}, elem...)...)
}

func (cs *Containers) container(id string) *Container {
	return &Container{cs: cs, id: id, dir: cs.path(id)}
}

func (cs *Containers) exists(id string) bool {
	fi, err := os.Lstat(cs.path(id))
	return err == nil && fi.IsDir()
}

// Create records a new container from st: it allocates the ID (unless st.ID holds one from
// NewID), a generated name when st.Name is empty, fills in Created and Status when they are
// zero, makes the container's directory with upper/, work/ and rootfs/, and writes state.json.
// On success st holds what was recorded. A name held by another container is a
// *NameInUseError.
func (cs *Containers) Create(st *State) (*Container, error) {
	if st.ID != "" && (!isID(st.ID) || cs.exists(st.ID)) {
		return nil, fmt.Errorf("create container: ID %q is not one from NewID", st.ID)
	}
	rec := *st
	if rec.Name != "" {
		name, err := ValidateName(rec.Name)
		if err != nil {
			return nil, fmt.Errorf("create container: %w", err)
		}
		rec.Name = name
	}
	if rec.ID == "" {
		rec.ID = cs.newID()
	}
	if rec.Created.IsZero() {
		rec.Created = time.Now().UTC()
	}
	if rec.Status == "" {
		rec.Status = StatusCreated
	}
	tmp, err := flock.Open(context.Background(), cs.path("tmp.lock"), flock.Shared, true)
	if err != nil {
		return nil, fmt.Errorf("create container: %w", err)
	}
	defer tmp.Close()
	stage := cs.path("tmp", rec.ID)
	if err := makeDirs(stage); err != nil {
		os.RemoveAll(stage)
		return nil, fmt.Errorf("create container: %w", err)
	}
	if err := cs.publish(stage, &rec); err != nil {
		os.RemoveAll(stage)
		return nil, fmt.Errorf("create container: %w", err)
	}
	*st = rec
	return cs.container(rec.ID), nil
}

// makeDirs makes a container's directory and what the overlay and the lock need in it.
// Modes are set explicitly: the umask must not decide the mode of the container's "/".
func makeDirs(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		mode fs.FileMode
	}{{"upper", 0o755}, {"work", 0o700}, {"rootfs", 0o755}} {
		p := filepath.Join(dir, d.name)
		if err := os.Mkdir(p, d.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// publish claims rec's name (or a generated one) for rec.ID, writes state.json into the staged
// directory and renames it into place. All three happen under names.lock, so for every process
// a name file never exists without its container's directory, except after a crash (a stale
// name, which the next claim takes over).
func (cs *Containers) publish(stage string, rec *State) error {
	names, err := flock.Open(context.Background(), cs.path("names.lock"), flock.Exclusive, true)
	if err != nil {
		return err
	}
	defer names.Close()
	if rec.Name == "" {
		if rec.Name, err = cs.generateFreeName(); err != nil {
			return err
		}
	} else if err := cs.nameFree(rec.Name); err != nil {
		return err
	}
	if err := writeState(stage, rec); err != nil {
		return err
	}
	if err := cs.writeName(rec.Name, rec.ID); err != nil {
		return err
	}
	if err := os.Rename(stage, cs.path(rec.ID)); err != nil {
		os.Remove(cs.path("names", rec.Name))
		return err
	}
	return nil
}

// Get finds a container by full id, name, or unique id prefix of at least 3 characters, in that
// order (as Docker does, a name wins over a prefix).
func (cs *Containers) Get(ref string) (*Container, error) {
	if isID(ref) && cs.exists(ref) {
		return cs.container(ref), nil
	}
	if name, err := ValidateName(ref); err == nil {
		if id, err := cs.nameOwner(name); err == nil && cs.exists(id) {
			return cs.container(id), nil
		}
	}
	if len(ref) >= minPrefix && isHex(ref) {
		ids, err := cs.ids()
		if err != nil {
			return nil, err
		}
		var found []string
		for _, id := range ids {
			if strings.HasPrefix(id, ref) {
				found = append(found, id)
			}
		}
		switch len(found) {
		case 1:
			return cs.container(found[0]), nil
		case 0:
		default:
			return nil, fmt.Errorf("%w: %q matches %d containers", ErrAmbiguous, ref, len(found))
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

// ids lists the container directories.
func (cs *Containers) ids() ([]string, error) {
	entries, err := os.ReadDir(cs.dir)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && isID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// List returns every container's refreshed state, newest first.
func (cs *Containers) List() ([]*State, error) {
	ids, err := cs.ids()
	if err != nil {
		return nil, err
	}
	states := make([]*State, 0, len(ids))
	for _, id := range ids {
		st, err := cs.container(id).State()
		if errors.Is(err, ErrNotFound) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, err
		}
		states = append(states, st)
	}
	slices.SortFunc(states, func(a, b *State) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return states, nil
}

func (c *Container) ID() string  { return c.id }
func (c *Container) Dir() string { return c.dir }

// LogPath is where a detached container's output goes.
func (c *Container) LogPath() string { return filepath.Join(c.dir, "container.log") }

// NewID returns a new container ID, for a caller that needs it before Create (which takes it
// in State.ID): 256 random bits, so no two are alike.
func NewID() string { return newID() }

// newID returns 64 random hex digits. Like Docker, it avoids ids whose 12-digit short form
// (the default hostname) is all decimal digits and so reads as a number.
func newID() string {
	var b [32]byte
	for {
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

func isID(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return s != ""
}
