package boot

import (
	"fmt"
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

// dieWithParent makes qemu get SIGKILL when kiln dies, however it dies.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
