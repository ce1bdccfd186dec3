package boot

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func openKVM() error {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("no usable /dev/kvm: %w", err)
	}
	defer unix.Close(fd)
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil || v != 12 {
		return fmt.Errorf("/dev/kvm: KVM_GET_API_VERSION = %d, %v (want 12)", v, err)
	}
	return nil
}

// qemuAttr makes qemu get SIGKILL when kiln dies, however it dies, and puts it in a process
// group of its own: a terminal's ^C, sent to the foreground group, must reach kiln only, which
// passes it to the app, and not end qemu.
func qemuAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// socketPair returns the two ends of a connected stream socket pair, close-on-exec.
func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socket pair for the status port: %w", err)
	}
	unix.SetNonblock(fds[0], true) // kiln's end: read and written through Go's poller
	return os.NewFile(uintptr(fds[0]), "status"), os.NewFile(uintptr(fds[1]), "status (qemu's)"), nil
}

// forwardable says whether kiln passes sig to the app: not those about kiln's own children,
// terminal and runtime.
func forwardable(sig syscall.Signal) bool {
	switch sig {
	case syscall.SIGCHLD, syscall.SIGWINCH, syscall.SIGURG, syscall.SIGPIPE:
		return false
	}
	return true
}
