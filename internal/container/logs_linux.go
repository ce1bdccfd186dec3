package container

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// waker sleeps until the watched file is written to, a timeout passes, or ctx is done. It uses
// inotify so that `kiln logs -f` shows output as it comes, and falls back to polling.
type waker struct{ fd int }

func newWaker() *waker {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		fd = -1
	}
	return &waker{fd: fd}
}

func (w *waker) watch(path string) {
	if w.fd >= 0 {
		if _, err := unix.InotifyAddWatch(w.fd, path, unix.IN_MODIFY); err != nil {
			w.close()
		}
	}
}

func (w *waker) wait(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.fd < 0 {
		return sleep(ctx, d)
	}
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, int(d/time.Millisecond)); err != nil && !errors.Is(err, unix.EINTR) {
		return sleep(ctx, d)
	}
	var buf [4096]byte
	for {
		if n, err := unix.Read(w.fd, buf[:]); n <= 0 || err != nil {
			break // drained: only the wake-up mattered
		}
	}
	return ctx.Err()
}

func (w *waker) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}
