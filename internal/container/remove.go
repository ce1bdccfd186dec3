package container

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kiln-project/kiln/internal/flock"
)

// Remove deletes the container's directory and frees its name. It refuses with ErrRunning while
// the container's process is alive, detaches any mount left under the directory (so nothing is
// deleted through it, a volume least of all), and deletes even what a container left without
// write or search permission. Symlinks are removed, never followed. A container whose
// state.json cannot be read can still be removed.
func (c *Container) Remove() error {
	lock, err := c.lockForRemove()
	if err != nil {
		return err
	}
	t, err := c.takeOut()
	lock.Close() // out of sight now: an Update that waited for the lock finds nothing
	if err != nil {
		return fmt.Errorf("remove container %s: %w", c.id, err)
	}
	defer t.unlock.Close()
	if err := removeAll(t.dir); err != nil {
		return fmt.Errorf("remove container %s: %w (left in %s, removed again by the next kiln command)", c.id, err, t.dir)
	}
	return nil
}

// lockForRemove takes the container's lock, making the lock file if it is what is broken:
// removing is how the user recovers from a damaged record.
func (c *Container) lockForRemove() (*os.File, error) {
	lock, err := flock.Open(context.Background(), filepath.Join(c.dir, "lock"), flock.Exclusive, true)
	if err == nil && !c.cs.exists(c.id) { // removed while we waited for the lock
		lock.Close()
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c.id)
	}
	if err != nil {
		return nil, fmt.Errorf("remove container %s: %w", c.id, err)
	}
	return lock, nil
}

// takeOut checks that the container may go and moves it out of sight. Call with its lock held.
func (c *Container) takeOut() (trashDir, error) {
	st, readErr := c.read()
	if readErr == nil && st.Pid > 0 && Alive(st.Pid, st.PidStart) {
		return trashDir{}, fmt.Errorf("%w (pid %d)", ErrRunning, st.Pid)
	}
	if err := unmountUnder(c.dir); err != nil {
		return trashDir{}, err
	}
	name := ""
	if readErr == nil {
		name = st.Name
	}
	return c.cs.unpublish(c.id, name)
}

// trashDir is a container directory moved into tmp/ to be deleted.
type trashDir struct {
	dir    string
	unlock *os.File // the shared tmp.lock, held until dir is gone
}

// unpublish moves the container's directory into tmp/ and frees its name, under names.lock:
// the reverse of publish.
func (cs *Containers) unpublish(id, name string) (trashDir, error) {
	tmp, err := flock.Open(context.Background(), cs.path("tmp.lock"), flock.Shared, true)
	if err != nil {
		return trashDir{}, err
	}
	names, err := flock.Open(context.Background(), cs.path("names.lock"), flock.Exclusive, true)
	if err != nil {
		tmp.Close()
		return trashDir{}, err
	}
	defer names.Close()
	t := trashDir{dir: cs.path("tmp", "rm-"+id), unlock: tmp}
	if err := os.Rename(cs.path(id), t.dir); err != nil {
		tmp.Close()
		return trashDir{}, err
	}
	// The container is gone now whatever happens to its name: a name left behind is stale and
	// the next claim takes it over.
	cs.freeNames(name, id)
	return t, nil
}

// cleanup removes what crashed Creates and Removes left in tmp/. It runs only when no other
// process uses tmp/, and leaves what it cannot remove for the next time: it is housekeeping,
// so its errors are not the caller's.
func (cs *Containers) cleanup() {
	lock, err := flock.TryOpen(cs.path("tmp.lock"), flock.Exclusive, true)
	if err != nil || lock == nil {
		return
	}
	defer lock.Close()
	entries, err := os.ReadDir(cs.path("tmp"))
	if err != nil {
		return
	}
	for _, e := range entries {
		removeAll(cs.path("tmp", e.Name()))
	}
}

// removeAll is os.RemoveAll (which never follows symlinks) that also gets through directories
// without search or write permission, which stop it when the caller lacks CAP_DAC_OVERRIDE.
func removeAll(path string) error {
	err := os.RemoveAll(path)
	if err == nil {
		return nil
	}
	// WalkDir calls fn for a directory before reading it, and reports symlinks as symlinks, so
	// only real directories inside path are opened up, each before it is entered.
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
