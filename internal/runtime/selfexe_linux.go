package runtime

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// The container's init runs from the kiln binary. If a container could open /proc/PID/exe of a
// process running that binary for writing, it could replace kiln on the host (CVE-2019-5736).
// So the init runs from a read-only bind mount of the binary that is unmounted (lazily) right
// after we open it: the open file keeps the read-only mount alive, nothing on the host shows it,
// and writes through /proc/PID/exe fail with EROFS. Four syscalls, once per kiln process.

var selfExeOnce = sync.OnceValues(openSelfExe)

func selfExe() (*os.File, error) { return selfExeOnce() }

func openSelfExe() (*os.File, error) {
	dir := os.TempDir()
	tmp, err := os.CreateTemp(dir, ".kiln-exe-")
	if err != nil {
		return nil, fmt.Errorf("protect kiln binary: %w", err)
	}
	mnt := tmp.Name()
	tmp.Close()
	defer os.Remove(mnt)
	if err := unix.Mount("/proc/self/exe", mnt, "", unix.MS_BIND, ""); err != nil {
		return nil, &os.PathError{Op: "bind mount kiln binary on", Path: mnt, Err: err}
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
