package boot

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// The file descriptors qemu inherits (exec.Cmd.ExtraFiles start at 3): pipes that kiln reads,
// and for the status port one end of a socket pair, which kiln also writes to.
const (
	fdStdout  = 3
	fdStderr  = 4
	fdStatus  = 5
	fdConsole = 6
)

// machine is the qemu invocation for one boot, everything decided.
type machine struct {
	qemu, accel       string
	kernel, initramfs string
	cmdline           string
	memory            string
	cpus              int
	ports             []Port
	volumes           []Volume
	network           bool
}

// args is qemu's command line: a microvm (virtio-mmio devices, no PCI, no firmware tables
// beyond ACPI), no default devices, no monitor; the kernel console on the first ISA serial
// port, the app's stdout, stderr and exit status on three more (bootconfig's ports: built into
// every x86 kernel, so the guest loads no module and waits for nothing to reach them). The
// status port goes both ways: kiln sends the app's signals on it.
func (m *machine) args() []string {
	a := []string{
		"-M", "microvm", "-accel", m.accel,
		"-m", m.memory, "-smp", strconv.Itoa(m.cpus),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", m.kernel, "-initrd", m.initramfs, "-append", m.cmdline,
		"-chardev", chardevFD("console", fdConsole), "-serial", "chardev:console",
	}
	if m.accel == AccelKVM {
		a = append(a, "-cpu", "host")
	}
	for _, p := range []struct {
		id   string
		port bootconfig.Port
		fd   int
	}{{"stdout", bootconfig.PortStdout, fdStdout}, {"stderr", bootconfig.PortStderr, fdStderr}, {"status", bootconfig.PortStatus, fdStatus}} {
		dev := chardevFD(p.id, p.fd)
		if p.fd == fdStatus {
			dev = chardevSocket(p.id, p.fd)
		}
		a = append(a, "-chardev", dev,
			"-device", fmt.Sprintf("isa-serial,chardev=%s,iobase=%#x,irq=%d", p.id, p.port.IOBase, p.port.IRQ))
	}
	if m.network {
		netdev := "user,id=net0"
		for _, p := range m.ports {
			netdev += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", p.Host, p.Guest)
		}
		a = append(a, "-netdev", netdev, "-device", "virtio-net-device,netdev=net0")
	}
	for i, v := range m.volumes {
		fsdev := fmt.Sprintf("local,id=fs%d,path=%s,security_model=none", i, escapeComma(v.HostDir))
		if v.ReadOnly {
			fsdev += ",readonly=on"
		}
		a = append(a, "-fsdev", fsdev, "-device", fmt.Sprintf("virtio-9p-device,fsdev=fs%d,mount_tag=%s", i, volumeTag(i)))
	}
	return a
}

// chardevFD is a chardev writing into an inherited file descriptor.
func chardevFD(id string, fd int) string {
	return fmt.Sprintf("file,id=%s,path=/dev/fd/%d,append=on", id, fd)
}

// chardevSocket is a chardev on an inherited, connected socket: both directions.
func chardevSocket(id string, fd int) string {
	return fmt.Sprintf("socket,id=%s,fd=%d", id, fd)
}

// volumeTag is the 9P mount tag of the i-th volume.
func volumeTag(i int) string { return "kiln" + strconv.Itoa(i) }

// escapeComma doubles commas, qemu's escape inside an option value.
func escapeComma(s string) string { return strings.ReplaceAll(s, ",", ",,") }
