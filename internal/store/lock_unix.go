//go:build unix

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockMode says how a file is flocked.
type lockMode int

const (
	shared    lockMode = unix.LOCK_SH
	exclusive lockMode = unix.LOCK_EX
)

// lockPath opens path (creating it) and flocks it, waiting until ctx is done.
// Each call opens its own file description, so locks taken by goroutines of
// one process exclude each other exactly like locks of different processes.
func lockPath(ctx context.Context, path string, mode lockMode) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(ctx, f, mode); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// lockFile flocks f, polling so that a cancelled ctx ends the wait.
func lockFile(ctx context.Context, f *os.File, mode lockMode) error {
	wait := time.Millisecond
	for {
		ok, err := tryLock(f, mode)
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// tryLock flocks f without waiting; false means another holder has it.
func tryLock(f *os.File, mode lockMode) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), int(mode)|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		default:
			return false, &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
	}
}

// unlock releases f's lock by closing it (closing the last descriptor of an
// open file description drops its flock).
func unlock(f *os.File) {
	if f != nil {
		f.Close()
	}
}
