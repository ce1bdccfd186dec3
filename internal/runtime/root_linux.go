package runtime

import (
	"errors"
	"os"
	"path"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Paths inside the container's root are resolved by the kernel with openat2(RESOLVE_IN_ROOT): a
// symlink in the image, absolute or climbing with "..", stays inside the root. One syscall per
// path; pathrs-lite (which does the same in user space) is the fallback for kernels before 5.6.

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot opens p inside root as an O_PATH handle.
func openInRoot(root, p string) (*os.File, error) {
	return openat2InRoot(root, p, unix.O_PATH)
}

// pinned is the container's root, opened once by the init after its root is mounted: the init
// resolves some twenty paths in it, each of which would open the root again.
var pinned = struct {
	path string
	fd   int
}{fd: -1}

// pinRoot keeps root open for openat2InRoot until unpinRoot. Only the init calls it, from its one
// locked thread, between mounting the root and pivoting into it.
func pinRoot(root string) error {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: root, Err: err}
	}
	pinned.path, pinned.fd = root, fd
	return nil
}

func unpinRoot() {
	if pinned.fd >= 0 {
		unix.Close(pinned.fd)
	}
	pinned.path, pinned.fd = "", -1
}

func openRoot(root string) (fd int, done func(), err error) {
	if pinned.fd >= 0 && root == pinned.path {
		return pinned.fd, func() {}, nil
	}
	r, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	return r, func() { unix.Close(r) }, nil
}

func openat2InRoot(root, p string, flags int) (*os.File, error) {
	f, err := openat2Only(root, p, flags)
	if errors.Is(err, unix.ENOSYS) {
		return pathrs.OpenInRoot(root, p)
	}
	return f, err
}

// openat2Only is openat2InRoot without the fallback: ENOSYS before Linux 5.6.
func openat2Only(root, p string, flags int) (*os.File, error) {
	r, done, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer done()
	fd, err := unix.Openat2(r, p, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRoot})
	if errors.Is(err, unix.ENOSYS) {
		return nil, err
	}
	if err != nil {
		return nil, &os.PathError{Op: "open in container root", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// mkdirHandle makes directory dir (and its parents) inside root and returns a handle to it.
func mkdirHandle(root, dir string) (*os.File, error) {
	h, err := openat2InRoot(root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || !errors.Is(err, unix.ENOENT) || dir == "/" {
		return h, err
	}
	parent, err := mkdirHandle(root, path.Dir(dir))
	if err != nil {
		return nil, err
	}
	err = unix.Mkdirat(int(parent.Fd()), path.Base(dir), 0o755)
	parent.Close()
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "mkdir in container root", Path: dir, Err: err}
	}
	return openat2InRoot(root, dir, unix.O_PATH|unix.O_DIRECTORY)
}
