package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// pseudoMount is one filesystem every guest gets.
type pseudoMount struct {
	target, fstype string
	flags          uintptr
	data           string
}

var pseudoMounts = []pseudoMount{
	{"/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"},
	{"/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
}

// tmpMount is /tmp's tmpfs, mounted only where the image's /tmp is missing or empty: files the
// image has there must stay seen, as under docker run.
var tmpMount = pseudoMount{"/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"}

// scratchDirs are made when the image has none, and not mounted over: the initramfs root is in
// memory and writable already.
var scratchDirs = []struct {
	path string
	mode uint32
}{{"/tmp", 0o1777}, {"/run", 0o755}}

// devLinks are the /dev entries a shell expects and devtmpfs does not make.
var devLinks = [][2]string{
	{"/dev/fd", "/proc/self/fd"},
	{"/dev/stdin", "/proc/self/fd/0"},
	{"/dev/stdout", "/proc/self/fd/1"},
	{"/dev/stderr", "/proc/self/fd/2"},
}

// mountPseudo mounts the pseudo filesystems. One already mounted (devtmpfs with
// CONFIG_DEVTMPFS_MOUNT) is left as it is. Bare system calls rather than os.MkdirAll and
// os.Symlink: each parent is there already, and under emulation less code run is less time.
func mountPseudo() error {
	for _, m := range pseudoMounts {
		if err := unix.Mkdir(m.target, 0o755); err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "mkdir", Path: m.target, Err: err}
		}
		err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data)
		if err != nil && err != unix.EBUSY {
			return &os.PathError{Op: "mount " + m.fstype + " on", Path: m.target, Err: err}
		}
	}
	for _, d := range scratchDirs {
		if err := unix.Mkdir(d.path, d.mode); err == nil {
			unix.Chmod(d.path, d.mode) // the umask took the sticky and write bits
		} else if err != unix.EEXIST {
			return &os.PathError{Op: "mkdir", Path: d.path, Err: err}
		}
	}
	if emptyDir(tmpMount.target) {
		m := tmpMount
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data); err != nil {
			return &os.PathError{Op: "mount " + m.fstype + " on", Path: m.target, Err: err}
		}
	}
	for _, l := range devLinks {
		if err := unix.Symlink(l[1], l[0]); err != nil && err != unix.EEXIST {
			return &os.LinkError{Op: "symlink", Old: l[1], New: l[0], Err: err}
		}
	}
	return nil
}

// ensureStdio opens /dev/console on descriptors 0, 1 and 2 when the kernel could not (an
// initramfs without /dev/console), so that the console writer works.
func ensureStdio() {
	var st unix.Stat_t
	if unix.Fstat(2, &st) == nil {
		return
	}
	fd, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return
	}
	for i := 0; i < 3; i++ {
		unix.Dup3(fd, i, 0)
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

// ninePOptions are the 9P mount options: msize is the largest virtio transport's limit, so
// that reads and writes go in few round trips.
const ninePOptions = "trans=virtio,version=9p2000.L,msize=512000,cache=mmap"

// mountShares mounts each share on its target, created if missing. A share is 9P; a kernel
// without 9P but with virtiofs (Debian's cloud kernel) mounts the same tag with virtiofs.
func mountShares(mounts []bootconfig.Mount) error {
	if len(mounts) == 0 {
		return nil
	}
	types := shareTypes()
	if len(types) == 0 {
		return fmt.Errorf("mount share %q on %s: the kernel has neither 9p nor virtiofs (see /proc/filesystems; "+
			"bake with a kernel that has 9p, or its 9p and 9pnet_virtio modules)", mounts[0].Tag, mounts[0].Target)
	}
	for _, m := range mounts {
		if err := mountShare(m, types); err != nil {
			return err
		}
	}
	return nil
}

func mountShare(m bootconfig.Mount, types []string) error {
	if !filepath.IsAbs(m.Target) {
		return fmt.Errorf("mount share %q: target %q is not absolute", m.Tag, m.Target)
	}
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return fmt.Errorf("mount share %q: %w", m.Tag, err)
	}
	flags := uintptr(unix.MS_NODEV)
	if m.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	var errs []error
	for _, t := range types {
		data := ""
		if t == "9p" {
			data = ninePOptions
		}
		err := unix.Mount(m.Tag, m.Target, t, flags, data)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
	}
	return fmt.Errorf("mount share %q on %s: %w", m.Tag, m.Target, errors.Join(errs...))
}

// shareTypes lists the share filesystems this kernel has, 9p first.
func shareTypes() []string {
	b, _ := readFile("/proc/filesystems")
	var out []string
	for _, t := range []string{"9p", "virtiofs"} {
		if strings.Contains(string(b), "\t"+t+"\n") {
			out = append(out, t)
		}
	}
	return out
}

// emptyDir reports whether dir is a directory with no entries.
func emptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && err != nil
}
