package runtime

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var propagation = map[string]uintptr{
	"": unix.MS_SLAVE | unix.MS_REC, "slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// privatizeMounts keeps the container's mounts from propagating back to the host.
func privatizeMounts(p string) error {
	flags, ok := propagation[p]
	if !ok {
		return fmt.Errorf("rootfs propagation %q: unknown", p)
	}
	return unix.Mount("", "/", "", flags, "")
}

// mountRoot makes root a mount point: the overlay kiln asked for, or a bind of itself.
func mountRoot(root string, fs *specs.Mount) error {
	if fs == nil {
		return unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, "")
	}
	flags, data := mountOptions(fs.Options)
	if fs.Type == "overlay" && len(data) > maxMountData {
		short, dirs, err := shortLowerdirs(data)
		if err != nil {
			return err
		}
		defer closeFiles(dirs)
		data = short
	}
	if err := unix.Mount(fs.Source, root, fs.Type, flags, data); err != nil {
		return &os.PathError{Op: "mount " + fs.Type, Path: root, Err: err}
	}
	return nil
}

// maxMountData is the most of its data argument mount(2) reads: one page, NUL included.
const maxMountData = 4095

// shortLowerdirs names each lower directory of an overlay's options by a descriptor
// (/proc/self/fd/N, 16 bytes or so) instead of its path, so an image of a few hundred layers
// fits in one mount call. The directories must stay open until the mount is made.
func shortLowerdirs(data string) (string, []*os.File, error) {
	opts := strings.Split(data, ",")
	var dirs []*os.File
	for i, o := range opts {
		lower, ok := strings.CutPrefix(o, "lowerdir=")
		if !ok {
			continue
		}
		var short []string
		for _, d := range strings.Split(lower, ":") {
			f, err := os.OpenFile(d, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				closeFiles(dirs)
				return "", nil, fmt.Errorf("overlay lower directory: %w", err)
			}
			dirs = append(dirs, f)
			short = append(short, procFd(f))
		}
		opts[i] = "lowerdir=" + strings.Join(short, ":")
	}
	data = strings.Join(opts, ",")
	if len(data) > maxMountData {
		closeFiles(dirs)
		return "", nil, fmt.Errorf("overlay: %d layers are too many for one mount", len(dirs))
	}
	return data, dirs, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

type mountFlag struct {
	clear bool
	flag  uintptr
}

var mountFlags = map[string]mountFlag{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

// mountOptions splits fstab-style options into flags and the filesystem's data string.
// Propagation options are left out; see propagationOf.
func mountOptions(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if _, ok := propagation[o]; ok {
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

func propagationOf(opts []string) uintptr {
	var p uintptr
	for _, o := range opts {
		if f, ok := propagation[o]; ok && o != "" {
			p |= f
		}
	}
	return p
}

// mountAll mounts the spec's mounts in order, each target resolved inside root without
// following symlinks out of it.
func mountAll(root string, mounts []specs.Mount) error {
	for _, m := range mounts {
		if err := mountOne(root, m); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
		}
	}
	return nil
}

func mountOne(root string, m specs.Mount) error {
	flags, data := mountOptions(m.Options)
	bind := flags&unix.MS_BIND != 0
	if m.Type == "cgroup" || m.Type == "cgroup2" {
		return mountCgroupfs(root, m, flags)
	}
	target, err := makeTarget(root, m, bind)
	if err != nil {
		return err
	}
	defer target.Close()
	src := m.Source
	if bind {
		err := bindMount(src, target, flags, propagationOf(m.Options))
		if !errors.Is(err, unix.ENOSYS) {
			return err // propagation included
		}
		if err := bindRemount(root, m.Destination, src, target, flags); err != nil {
			return err
		}
	} else if err := unix.Mount(src, procFd(target), m.Type, flags, data); err != nil {
		return err
	}
	if p := propagationOf(m.Options); p != 0 {
		return withTarget(root, m.Destination, func(t string) error { return unix.Mount("", t, "", p, "") })
	}
	return nil
}

// bindMount binds src on target with its flags (ro, nosuid, ...) and propagation (MS_PRIVATE,
// ...; 0 for the default) set before the mount is attached: open_tree clones src as a detached
// mount, mount_setattr sets its attributes, and move_mount puts it on exactly the target
// handle, so no path is looked up twice and the mount is never visible writable. ENOSYS (before
// Linux 5.12) or flags the new API does not take here: nothing is done, and the caller falls
// back to mount and remount.
func bindMount(src string, target *os.File, flags, prop uintptr) error {
	attr, ok := mountAttrs(flags)
	if !ok {
		return unix.ENOSYS
	}
	rec := 0
	if flags&unix.MS_REC != 0 {
		rec = unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, uint(unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|rec))
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	defer unix.Close(fd)
	if prop &^= unix.MS_REC; attr != 0 || prop != 0 {
		ma := &unix.MountAttr{Attr_set: attr, Propagation: uint64(prop)}
		err := unix.MountSetattr(fd, "", uint(unix.AT_EMPTY_PATH|rec), ma)
		if err != nil {
			return &os.PathError{Op: "mount_setattr", Path: src, Err: err}
		}
	}
	err = unix.MoveMount(fd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return &os.PathError{Op: "move_mount", Path: src, Err: err}
	}
	return nil
}

// mountAttrs are the MOUNT_ATTR_ bits for a bind's flags; false for flags they cannot say.
func mountAttrs(flags uintptr) (uint64, bool) {
	var attr uint64
	for ms, a := range map[uintptr]uint64{unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
		unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC} {
		if flags&ms != 0 {
			attr |= a
		}
	}
	rest := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	return attr, rest == 0
}

// bindRemount is bindMount for old kernels: a bind mount, then a remount for its flags.
func bindRemount(root, dest, src string, target *os.File, flags uintptr) error {
	if err := unix.Mount(src, procFd(target), "", flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return err
	}
	return remountBind(root, dest, flags)
}

// remountBind applies flags a bind mount cannot take at creation (ro, nosuid, ...).
func remountBind(root, dest string, flags uintptr) error {
	extra := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if extra == 0 {
		return nil
	}
	return withTarget(root, dest, func(t string) error {
		return unix.Mount("", t, "", unix.MS_BIND|unix.MS_REMOUNT|extra|lockedFlags(t), "")
	})
}

// lockedFlags are the flags of the mount at t that a remount must keep.
func lockedFlags(t string) uintptr {
	var st unix.Statfs_t
	if unix.Statfs(t, &st) != nil {
		return 0
	}
	var f uintptr
	for bit, flag := range map[int64]uintptr{unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
		unix.ST_NOEXEC: unix.MS_NOEXEC} {
		if int64(st.Flags)&bit != 0 { // Statfs_t.Flags is int32 or uint32 on some architectures
			f |= flag
		}
	}
	return f
}

// withTarget opens dest inside root (after any mount on it) and calls f with a path to it.
func withTarget(root, dest string, f func(string) error) error {
	h, err := openInRoot(root, dest)
	if err != nil {
		return err
	}
	defer h.Close()
	return f(procFd(h))
}

// makeTarget creates the mount point: a directory, or an empty file for a bind of a file.
func makeTarget(root string, m specs.Mount, bind bool) (*os.File, error) {
	file := false
	if bind {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return nil, err
		}
		file = !fi.IsDir()
	}
	if !file {
		return mkdirHandle(root, m.Destination)
	}
	parent, err := mkdirHandle(root, path.Dir(m.Destination))
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	name := path.Base(m.Destination)
	// O_EXCL: only ever create; never open what the image has there (a fifo would block us).
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "create mount point", Path: m.Destination, Err: err}
	}
	if err == nil {
		unix.Close(fd)
	}
	return openInRoot(root, m.Destination)
}

func mkdirInRoot(root, dir string) error {
	if dir == "" || dir == "/" {
		return nil
	}
	h, err := mkdirHandle(root, dir)
	if err != nil {
		return err
	}
	return h.Close()
}

// procFd names an open file so mount(2) acts on exactly it, whatever symlinks say.
func procFd(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// mountCgroupfs gives the container a read-only view of its cgroups: cgroup2 where the host is
// cgroup2-only (with the cgroup namespace, the container sees its own subtree), else an empty
// read-only tmpfs (a v1 hierarchy would show the host's).
func mountCgroupfs(root string, m specs.Mount, flags uintptr) error {
	target, err := mkdirHandle(root, m.Destination)
	if err != nil {
		return err
	}
	defer target.Close()
	if cgroup2Only() {
		return unix.Mount("cgroup2", procFd(target), "cgroup2", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	}
	return unix.Mount("tmpfs", procFd(target), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=0")
}

// pivotRoot makes root the root and detaches the old one, without a temporary directory:
// pivot_root(".", ".") stacks the old root on the new, and unmounting "." removes it.
func pivotRoot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", root, err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// openNoFollow opens p (in the container, after pivot_root) refusing any symlink on the way, so a
// link planted in the image cannot redirect a mask.
func openNoFollow(p string) (*os.File, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, p, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// maskPaths hides each path: a directory under an empty read-only tmpfs, a file under /dev/null.
func maskPaths(paths []string) error {
	for _, p := range paths {
		f, err := openNoFollow(p)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		err = maskOne(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

func maskOne(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", procFd(f), "tmpfs", unix.MS_RDONLY, "size=0")
	}
	return unix.Mount("/dev/null", procFd(f), "", unix.MS_BIND, "")
}

func readonlyPaths(paths []string) error {
	for _, p := range paths {
		f, err := openNoFollow(p)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return err
		}
		err = unix.Mount(procFd(f), procFd(f), "", unix.MS_BIND|unix.MS_REC, "")
		f.Close()
		if err != nil {
			return fmt.Errorf("bind %s: %w", p, err)
		}
		f, err = openNoFollow(p)
		if err != nil {
			return err
		}
		t := procFd(f)
		err = unix.Mount("", t, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|lockedFlags(t), "")
		f.Close()
		if err != nil {
			return fmt.Errorf("make %s read-only: %w", p, err)
		}
	}
	return nil
}

func readonlyRoot(ro bool) error {
	if !ro {
		return nil
	}
	return unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|lockedFlags("/"), "")
}

// setSysctls writes the spec's sysctls under the container's /proc/sys, before it is made
// read-only. Only sysctls of a namespace the container has its own of are allowed: anything
// else would change the host.
func setSysctls(l *specs.Linux) error {
	for k, v := range l.Sysctl {
		if err := checkSysctl(k, l.Namespaces); err != nil {
			return err
		}
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// ipcSysctls are the kernel.* sysctls of an IPC namespace (fs.mqueue.* are too).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// checkSysctl says whether sysctl k belongs to a namespace the container does not share.
func checkSysctl(k string, nss []specs.LinuxNamespace) error {
	if k == "" || strings.Contains(k, "..") || strings.ContainsAny(k, "/\x00") || strings.HasPrefix(k, ".") {
		return fmt.Errorf("sysctl %q: bad name", k)
	}
	var ns specs.LinuxNamespaceType
	switch {
	case strings.HasPrefix(k, "net."):
		ns = specs.NetworkNamespace
	case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
		ns = specs.IPCNamespace
	case k == "kernel.hostname" || k == "kernel.domainname":
		ns = specs.UTSNamespace
	default:
		return fmt.Errorf("sysctl %q: not namespaced, it would change the host", k)
	}
	for _, n := range nss {
		if n.Type == ns && n.Path == "" {
			return nil
		}
	}
	return fmt.Errorf("sysctl %q: the container shares the host's %s namespace", k, ns)
}
