package runtime

import (
	"errors"
	"fmt"
	"os"
	"path"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are the nodes every container's /dev has, as in Docker and runc.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

var devLinks = [][2]string{
	{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
	{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
}

// createDevices makes the device nodes and the usual links in the container's /dev.
func createDevices(root string, extra []specs.LinuxDevice) error {
	dev, err := mkdirHandle(root, "/dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	for _, d := range append(defaultDevices[:len(defaultDevices):len(defaultDevices)], extra...) {
		if err := mknod(root, dev, d); err != nil {
			return fmt.Errorf("%s: %w", d.Path, err)
		}
	}
	for _, l := range devLinks {
		if err := unix.Symlinkat(l[0], int(dev.Fd()), l[1]); err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "symlink", Path: "/dev/" + l[1], Err: err}
		}
	}
	return nil
}

// mknod makes device d; dev is the handle to /dev, where all the default ones go.
func mknod(root string, dev *os.File, d specs.LinuxDevice) error {
	dir := dev
	if path.Dir(d.Path) != "/dev" {
		h, err := mkdirHandle(root, path.Dir(d.Path))
		if err != nil {
			return err
		}
		defer h.Close()
		dir = h
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(*d.FileMode)
	}
	switch d.Type {
	case "c", "u":
		mode |= unix.S_IFCHR
	case "b":
		mode |= unix.S_IFBLK
	case "p":
		mode |= unix.S_IFIFO
	default:
		return fmt.Errorf("device type %q: want c, b, u or p", d.Type)
	}
	name := path.Base(d.Path)
	err := unix.Mknodat(int(dir.Fd()), name, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if err != nil && err != unix.EEXIST {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Fchownat(int(dir.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// setupConsole opens a terminal in the container's own devpts, binds it on /dev/console, makes
// it the workload's stdio and controlling terminal, and hands the master to the parent.
func setupConsole(sock *os.File, root string, p *specs.Process) error {
	if !p.Terminal {
		return nil
	}
	return console(sock, root, p.ConsoleSize, true)
}

// openConsole is setupConsole for a process joining a running container: its /dev/console is
// there already.
func openConsole(sock *os.File, root string, p *specs.Process) error {
	if !p.Terminal {
		return nil
	}
	return console(sock, root, p.ConsoleSize, false)
}

// console makes the terminal. Its window size is set before the workload runs, so a program that
// asks at once (stty size, a shell's line editor) sees the caller's.
func console(sock *os.File, root string, size *specs.Box, bind bool) error {
	ptmx, err := withRootFile(root, "/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("pty number: %w", err)
	}
	slave, err := withRootFile(root, fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY)
	if err != nil {
		return err
	}
	defer slave.Close()
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set window size: %w", err)
		}
	}
	if bind {
		if err := bindConsole(root, slave); err != nil {
			return err
		}
	}
	if err := useTerminal(slave); err != nil {
		return err
	}
	rights := unix.UnixRights(int(ptmx.Fd()))
	return unix.Sendmsg(int(sock.Fd()), []byte{consoleByte}, rights, nil, 0)
}

// withRootFile opens p inside root with flags. Directly where openat2 exists, not by reopening
// a handle through /proc/self/fd: an exec's helper is not in the pid namespace of the
// container's /proc, where its own /proc/self does not exist.
func withRootFile(root, p string, flags int) (*os.File, error) {
	if f, err := openat2Only(root, p, flags); !errors.Is(err, unix.ENOSYS) {
		return f, err
	}
	h, err := openInRoot(root, p)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	f, err := os.OpenFile(procFd(h), flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return f, nil
}

func bindConsole(root string, slave *os.File) error {
	console, err := makeTarget(root, specs.Mount{Destination: "/dev/console", Source: "/dev/null"}, true)
	if err != nil {
		return err
	}
	defer console.Close()
	return unix.Mount(procFd(slave), procFd(console), "", unix.MS_BIND, "")
}

// useTerminal makes t the stdio and controlling terminal of this process (and so the workload).
func useTerminal(t *os.File) error {
	if _, err := unix.Setsid(); err != nil && err != unix.EPERM {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(int(t.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(t.Fd()), fd, 0); err != nil {
			return err
		}
	}
	return nil
}

func setHostname(s *specs.Spec) error {
	if s.Hostname == "" || !hasNamespace(s, specs.UTSNamespace) {
		return nil
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return err
	}
	if s.Domainname != "" {
		return unix.Setdomainname([]byte(s.Domainname))
	}
	return nil
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path == "" {
			return true
		}
	}
	return false
}

// loopbackUp brings lo up in a new network namespace, where it starts down.
func loopbackUp(s *specs.Spec) error {
	if !hasNamespace(s, specs.NetworkNamespace) {
		return nil
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
