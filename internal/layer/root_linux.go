package layer

import (
	"errors"
	"fmt"
	"os"
	"path"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// root confines the path lookups of Extract to one directory: every parent
// directory is resolved as if dir were "/", so no symlink, absolute or made
// of "..", leads out of it. Final components are then handled with *at
// calls that do not follow symlinks.
//
// With openat2 (Linux 5.6+) the kernel enforces this (RESOLVE_IN_ROOT).
// Without it we fall back to filepath-securejoin, which resolves the path in
// user space: safe as long as nobody else changes dir while we extract, which
// holds for a cache directory only kiln writes.
type root struct {
	dir     string
	fd      int  // O_PATH handle of dir
	openat2 bool // false when the kernel (or a seccomp filter) lacks openat2
}

func openRoot(dir string) (*root, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	rt := &root{dir: dir, fd: fd, openat2: true}
	probe, err := rt.openat2Dir(".")
	switch {
	case err == nil:
		unix.Close(probe)
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
		rt.openat2 = false
	default:
		unix.Close(fd)
		return nil, &os.PathError{Op: "openat2", Path: dir, Err: err}
	}
	return rt, nil
}

func (rt *root) close() { unix.Close(rt.fd) }

// openDir returns an O_PATH handle of the directory rel (clean, relative,
// "." for the root itself), resolved inside the root.
func (rt *root) openDir(rel string) (int, error) {
	if rt.openat2 {
		fd, err := rt.openat2Dir(rel)
		return fd, wrapOp("openat2 "+rel, err)
	}
	p, err := securejoin.SecureJoin(rt.dir, rel)
	if err != nil {
		return -1, fmt.Errorf("resolve %s: %w", rel, err)
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	return fd, wrapOp("open "+rel, err)
}

func (rt *root) openat2Dir(rel string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 {
		fd, err := unix.Openat2(rt.fd, rel, how)
		// EAGAIN: a rename raced with a ".." lookup; the kernel asks us to retry.
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// mkdirAll is openDir that first creates the missing directories of rel,
// 0755 and owned by the caller, as a tar's implied parents are.
func (rt *root) mkdirAll(rel string) (int, error) {
	fd, err := rt.openDir(rel)
	if !errors.Is(err, unix.ENOENT) || rel == "." {
		return fd, err
	}
	parent, err := rt.mkdirAll(path.Dir(rel))
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	base := path.Base(rel)
	switch err := unix.Mkdirat(parent, base, impliedDirMode); err {
	case nil:
		// Only now is base certainly our new directory, not a symlink.
		if err := unix.Fchmodat(parent, base, impliedDirMode, 0); err != nil {
			return -1, wrapOp("chmod "+rel, err)
		}
	case unix.EEXIST:
	default:
		return -1, wrapOp("mkdir "+rel, err)
	}
	fd, err = unix.Openat(parent, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	return fd, wrapOp("open "+rel, err)
}

// wrapOp names the failed operation, keeping the errno for errors.Is.
func wrapOp(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
