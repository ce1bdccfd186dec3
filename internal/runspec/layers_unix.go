//go:build unix

package runspec

import (
	"io/fs"
	"os"
	"syscall"
)

// openNoFollow opens a file resolve found as a regular file: O_NOFOLLOW in
// case it has since become a symlink, O_NONBLOCK in case it is a FIFO.
func openNoFollow(name string) (*os.File, error) {
	return os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
}

// isWhiteoutDevice reports whether fi is an overlayfs whiteout: a character
// device numbered 0:0.
func isWhiteoutDevice(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}
