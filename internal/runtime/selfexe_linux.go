package runtime

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The container's init runs from the kiln binary. If a container could open /proc/PID/exe of a
// process running that binary for writing, it could replace kiln on the host (CVE-2019-5736).
// So the init runs from a read-only bind mount of the binary that no mount table holds: a
// detached clone of /proc/self/exe's mount (open_tree), made read-only (mount_setattr) and
// reopened through /proc/self/fd. The open file keeps the mount alive, nothing on the host
// ever shows it, and writes through /proc/PID/exe fail with EROFS. Three syscalls, once per
// kiln process. Kernels before 5.12 (no mount_setattr) get the same through a bind mount on a
// temporary file, unmounted (lazily) right after it is opened.

var selfExeOnce = sync.OnceValues(openSelfExe)

func selfExe() (*os.File, error) { return selfExeOnce() }

func openSelfExe() (*os.File, error) { return openReadOnly("/proc/self/exe") }

// openReadOnly opens the file at path through a read-only mount of it that no mount table holds.
func openReadOnly(path string) (*os.File, error) {
	f, err := openDetached(path)
	if errors.Is(err, unix.ENOSYS) {
		return openBound(path)
	}
	return f, err
}

func openDetached(path string) (*os.File, error) {
	tree, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("protect kiln binary: open_tree %s: %w", path, err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return nil, fmt.Errorf("protect kiln binary: make its clone read-only: %w", err)
	}
	return os.OpenFile("/proc/self/fd/"+strconv.Itoa(tree), os.O_RDONLY|unix.O_CLOEXEC, 0)
}

func openBound(path string) (*os.File, error) {
	tmp, err := os.CreateTemp(os.TempDir(), ".kiln-exe-")
	if err != nil {
		return nil, fmt.Errorf("protect kiln binary: %w", err)
	}
	mnt := tmp.Name()
	tmp.Close()
	defer os.Remove(mnt)
	if err := unix.Mount(path, mnt, "", unix.MS_BIND, ""); err != nil {
		return nil, &os.PathError{Op: "bind mount " + path + " on", Path: mnt, Err: err}
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV)
	if err := unix.Mount("", mnt, "", flags, ""); err != nil {
		return nil, &os.PathError{Op: "remount read-only", Path: mnt, Err: err}
	}
	return os.OpenFile(mnt, os.O_RDONLY|unix.O_CLOEXEC, 0)
}

func socketpair() (ours, theirs *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "init-parent"), os.NewFile(uintptr(fds[1]), "init-child"), nil
}
