package build

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/flock"
)

// A step's directory (Options.WorkDir/step-<random>) is flocked while its step runs. A build
// killed mid-step cannot remove its own, so the next build with steps, and kiln gc, remove every
// one whose lock nobody holds.

// stepDirPrefix names step directories, so that nothing else under WorkDir is ever removed.
const stepDirPrefix = "step-"

// makeStepDir creates and flocks a step directory under parent; unlock it after removing it. A
// concurrent RemoveStaleSteps may see the directory before it is locked and remove it; the
// inode comparison after locking detects that, and another name is tried.
func makeStepDir(parent string) (string, *os.File, error) {
	for range 10 {
		var b [8]byte
		rand.Read(b[:])
		dir := filepath.Join(parent, stepDirPrefix+hex.EncodeToString(b[:]))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", nil, fmt.Errorf("make step directory: %w", err)
		}
		f, err := os.Open(dir)
		if err != nil {
			continue
		}
		ok, err := flock.TryLock(f, flock.Exclusive)
		if err != nil {
			f.Close()
			return "", nil, fmt.Errorf("lock step directory: %w", err)
		}
		if ok && sameDir(f, dir) {
			return dir, f, nil
		}
		f.Close()
	}
	return "", nil, fmt.Errorf("make step directory in %s: removed by another process 10 times", parent)
}

func sameDir(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// StaleSteps is what RemoveStaleSteps removed.
type StaleSteps struct {
	Dirs  []string // the step directories removed
	Freed int64    // bytes of the regular files in them
}

// RemoveStaleSteps removes the step directories under workDir (Options.WorkDir) that no running
// build holds: those of builds that were killed. A mount left under one (a step's rootfs/) is
// detached first, so that removing never deletes through it into what it covers; a directory
// with a mount that will not go is kept, and named in the error.
func RemoveStaleSteps(workDir string) (StaleSteps, error) {
	var rep StaleSteps
	entries, err := os.ReadDir(workDir)
	if errors.Is(err, fs.ErrNotExist) {
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("remove stale build steps: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), stepDirPrefix) {
			continue
		}
		dir := filepath.Join(workDir, e.Name())
		removed, freed, err := removeIfStale(dir)
		if err != nil {
			errs = append(errs, err)
		}
		if removed {
			rep.Dirs = append(rep.Dirs, dir)
			rep.Freed += freed
		}
	}
	return rep, errors.Join(errs...)
}

// removeIfStale removes dir if nobody holds its lock, and says how many bytes that freed.
func removeIfStale(dir string) (removed bool, freed int64, err error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, 0, nil // removed by another process meanwhile
	}
	if err != nil {
		return false, 0, fmt.Errorf("remove stale build step: %w", err)
	}
	defer f.Close()
	ok, err := flock.TryLock(f, flock.Exclusive)
	if err != nil {
		return false, 0, fmt.Errorf("remove stale build step: %w", err)
	}
	if !ok || !sameDir(f, dir) {
		return false, 0, nil // in use, or removed and made again under this name
	}
	if err := container.UnmountUnder(dir); err != nil {
		return false, 0, fmt.Errorf("remove stale build step %s: %w", dir, err)
	}
	freed = diskUse(dir)
	if err := os.RemoveAll(dir); err != nil {
		return false, 0, fmt.Errorf("remove stale build step: %w", err)
	}
	return true, freed, nil
}

// diskUse adds up the sizes of the regular files under dir.
func diskUse(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
