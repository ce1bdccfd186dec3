package guest

import (
	"os"

	"golang.org/x/sys/unix"
)

// readFile reads a small file (the config, /proc and /sys files) with bare system calls.
// os.ReadFile would do as well, but its first call in a process runs far more code (the
// poller, a File and its cleanup, a stat), and under emulation new code is what costs.
func readFile(p string) ([]byte, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: p, Err: err}
		case n == 0:
			return out, nil
		default:
			out = append(out, buf[:n]...)
		}
	}
}
