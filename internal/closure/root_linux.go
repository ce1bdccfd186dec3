package closure

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// rootDir opens files under a Resolver's root with openat2 RESOLVE_IN_ROOT: the kernel then
// resolves every path as if the root were "/", so that even a tree that changes while it is read
// (a symlink swapped in after walk checked the path) cannot lead outside it. Without openat2
// (before Linux 5.6, or filtered by seccomp) paths are joined to the root as they are, which walk's
// own component-by-component resolution keeps inside the root for a tree nobody changes meanwhile.
type rootDir struct {
	dir string
	fd  int // O_PATH handle of dir; -1 without openat2
}

func openRootDir(dir string) (*rootDir, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	d := &rootDir{dir: dir, fd: fd}
	probe, err := d.openat2(".", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		unix.Close(fd)
		if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) {
			return nil, &fs.PathError{Op: "openat2", Path: dir, Err: err}
		}
		d.fd = -1
		return d, nil
	}
	unix.Close(probe)
	runtime.AddCleanup(d, func(fd int) { unix.Close(fd) }, fd)
	return d, nil
}

func (d *rootDir) openat2(rel string, flags uint64) (int, error) {
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for range 16 {
		fd, err := unix.Openat2(d.fd, rel, how)
		if err != unix.EAGAIN && err != unix.EINTR { // EAGAIN: a rename raced with "..": retry
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// rel is p (absolute, under the root) relative to the root.
func rel(p string) string {
	r := strings.TrimLeft(path.Clean(p), "/")
	if r == "" {
		return "."
	}
	return r
}

// open opens the file or directory p under the root for reading. Anything else is an error: a
// fifo (which a stage's step can make where a library is looked for) would block the open or the
// read for good, a device never end; O_NONBLOCK keeps the open itself from waiting.
func (d *rootDir) open(p string) (*os.File, error) {
	var fd int
	var err error
	if d.fd < 0 {
		fd, err = unix.Open(filepath.Join(d.dir, p), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	} else {
		fd, err = d.openat2(rel(p), unix.O_RDONLY|unix.O_NONBLOCK)
		runtime.KeepAlive(d)
	}
	if err == nil {
		err = regularOrDir(fd)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

var errNotRegular = errors.New("not a regular file or directory")

// regularOrDir closes fd unless it is a regular file or a directory, and takes O_NONBLOCK off.
func regularOrDir(fd int) error {
	var st unix.Stat_t
	err := unix.Fstat(fd, &st)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		err = errNotRegular
	}
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		unix.Close(fd)
	}
	return err
}

// lstat returns the mode of p under the root and, for a symlink, its target.
func (d *rootDir) lstat(p string) (fs.FileMode, string, error) {
	if d.fd < 0 {
		host := filepath.Join(d.dir, p)
		fi, err := os.Lstat(host)
		if err != nil {
			return 0, "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return fi.Mode(), "", nil
		}
		t, err := os.Readlink(host)
		return fi.Mode(), t, err
	}
	dir, err := d.openat2(rel(path.Dir(p)), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return 0, "", &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	defer unix.Close(dir)
	runtime.KeepAlive(d)
	base := path.Base(p)
	if p == "/" {
		base = "."
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return 0, "", &fs.PathError{Op: "lstat", Path: p, Err: err}
	}
	mode := fileMode(st.Mode)
	if mode&fs.ModeSymlink == 0 {
		return mode, "", nil
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dir, base, buf)
	if err != nil {
		return 0, "", &fs.PathError{Op: "readlink", Path: p, Err: err}
	}
	return mode, string(buf[:n]), nil
}

// readDir lists the directory p under the root.
func (d *rootDir) readDir(p string) ([]fs.DirEntry, error) {
	f, err := d.open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// fileMode turns st_mode into an fs.FileMode, as os.Lstat does.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	for bit, flag := range map[uint32]fs.FileMode{unix.S_ISUID: fs.ModeSetuid, unix.S_ISGID: fs.ModeSetgid, unix.S_ISVTX: fs.ModeSticky} {
		if m&bit != 0 {
			mode |= flag
		}
	}
	return mode
}
