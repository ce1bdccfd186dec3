package runspec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// liveRoot reads files of a root that its container may be changing while
// kiln reads them. Checking each component and then opening the whole path
// again (as layerView does) leaves a window in which a directory swapped for
// a symlink to "/etc" sends the open to the host's file. Here the kernel
// resolves every path in one step, relative to one handle of the root, with
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS): an absolute symlink or ".."
// stays inside the root whatever changes meanwhile. (pathrs-lite does that,
// and emulates it safely on kernels before 5.6.)
type liveRoot struct {
	root *os.File // O_PATH handle of the root directory
}

func openLiveRoot(root string) (*liveRoot, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open root", Path: root, Err: err}
	}
	return &liveRoot{root: os.NewFile(uintptr(fd), root)}, nil
}

func (r *liveRoot) Close() error { return r.root.Close() }

// readFile returns the content of the regular file at name inside the root.
// The file is looked up as an O_PATH handle and opened for reading only once
// it is known to be a regular file: opening a device node the container made
// could have effects on the host, and a fifo would block.
func (r *liveRoot) readFile(name string) ([]byte, error) {
	h, err := pathrs.OpenatInRoot(r.root, name)
	if err != nil {
		return nil, r.lookupError(name, err)
	}
	defer h.Close()
	if fi, err := h.Stat(); err != nil {
		return nil, err
	} else if fi.IsDir() {
		return nil, fmt.Errorf("%s in the image: a directory", name)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the image: not a regular file", name)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, r.lookupError(name, err)
	}
	defer f.Close()
	return readImageFile(f, name)
}

// lookupError names the file by its path through the root, keeps only the
// errno of pathrs-lite's wrapping, and words a file where a directory should
// be as layerView does, so readColonFile takes it for no file at all.
func (r *liveRoot) lookupError(name string, err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	if errno == unix.ENOTDIR {
		err = errNotDir
	}
	return &fs.PathError{Op: "open", Path: filepath.Join(r.root.Name(), name), Err: err}
}
