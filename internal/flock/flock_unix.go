//go:build unix

package flock

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func how(m Mode) int {
	if m == Shared {
		return unix.LOCK_SH
	}
	return unix.LOCK_EX
}

// Open opens path (creating the file if create) and locks it, waiting until ctx is done. A ctx
// that is never done waits in the kernel; one that can be cancelled is polled.
func Open(ctx context.Context, path string, m Mode, create bool) (*os.File, error) {
	f, err := os.OpenFile(path, openFlags(create), 0o600)
	if err != nil {
		return nil, err
	}
	if err := Lock(ctx, f, m); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// TryOpen is Open without the wait: nil, nil when someone else holds the lock.
func TryOpen(path string, m Mode, create bool) (*os.File, error) {
	f, err := os.OpenFile(path, openFlags(create), 0o600)
	if err != nil {
		return nil, err
	}
	ok, err := TryLock(f, m)
	if err != nil || !ok {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Lock locks an open file, waiting until ctx is done.
func Lock(ctx context.Context, f *os.File, m Mode) error {
	if ctx.Done() == nil {
		return flock(f, how(m))
	}
	wait := time.Millisecond
	for {
		ok, err := TryLock(f, m)
		if err != nil || ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return &os.PathError{Op: "lock", Path: f.Name(), Err: ctx.Err()}
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// TryLock locks f without waiting; false means another holder has it.
func TryLock(f *os.File, m Mode) (bool, error) {
	err := flock(f, how(m)|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return err
		}
		return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
	}
}
