package container

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"
)

// pollInterval is how often a follower asks done() and, where inotify is missing, looks for
// appended output.
const pollInterval = 100 * time.Millisecond

// Follow copies the log file at path to w. With follow it then copies what is appended, until
// ctx is done (it returns ctx.Err()) or done reports that the container has exited and the file
// has been copied to its end; a nil done follows until ctx is done. A log that does not exist
// yet reads as empty.
func Follow(ctx context.Context, path string, w io.Writer, follow bool, done func() bool) error {
	return FollowTail(ctx, path, w, -1, follow, done)
}

// FollowTail is Follow starting at the last lines lines of the file (`kiln logs --tail N`);
// lines < 0 means the whole file.
func FollowTail(ctx context.Context, path string, w io.Writer, lines int, follow bool, done func() bool) error {
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	wake := newWaker()
	defer wake.close()
	for {
		// Asked before copying: once the container has exited nothing more is written, so what
		// the copy below reaches is the end.
		finished := done != nil && done()
		if f == nil {
			var err error
			f, err = openLog(path, lines)
			if errors.Is(err, fs.ErrNotExist) && follow && !finished {
				if err := wake.wait(ctx, pollInterval); err != nil {
					return err
				}
				continue
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			wake.watch(path)
		}
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !follow || finished {
			return nil
		}
		if err := wake.wait(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// openLog opens the log positioned at its last lines lines (lines < 0: at the start).
func openLog(path string, lines int) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil || lines < 0 {
		return f, err
	}
	off, err := tailOffset(f, lines)
	if err == nil {
		_, err = f.Seek(off, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// tailOffset returns where the last n lines of f begin. A last line need not end in "\n".
func tailOffset(f *os.File, n int) (int64, error) {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil || n == 0 {
		return end, err
	}
	buf := make([]byte, 32<<10)
	for pos := end; pos > 0; {
		size := min(int64(len(buf)), pos)
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil {
			return 0, err
		}
		for i := size - 1; i >= 0; i-- {
			// A "\n" ends a line; one that is the file's last byte starts nothing after it.
			if buf[i] == '\n' && pos+i != end-1 {
				if n--; n == 0 {
					return pos + i + 1, nil
				}
			}
		}
	}
	return 0, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
