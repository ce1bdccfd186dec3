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

func openat2InRoot(root, p string, flags int) (*os.File, error) {
	r, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(r)
	fd, err := unix.Openat2(r, p, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRoot})
	if errors.Is(err, unix.ENOSYS) {
		return pathrs.OpenInRoot(root, p)
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
