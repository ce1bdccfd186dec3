package volume

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/flock"
)

// Populate leaves ROOT/volumes/NAME:
//
//	_populate.partial/   the copy being made (or left by a kill: removed and redone)
//	_populate.done/      a finished copy whose entries are being moved into _data
const (
	partialDir = "_populate.partial"
	doneDir    = "_populate.done"
)

// Populate copies the directory tree src into the volume, as Docker fills a
// new volume with what the image has at the mount point ("copy-up"): modes
// (setuid, setgid, sticky included), owners, times, symlinks (as links, never
// followed), hardlinks, devices, fifos and xattrs where the target filesystem
// takes them. _data itself gets src's owner and mode.
//
// It copies only into a volume never populated before whose _data is empty,
// and then marks it populated in volume.json, so emptying a volume later does
// not bring the image's files back. A src that does not exist or is not a
// directory is nothing to copy: Populate returns nil and marks nothing.
//
// src itself is the caller's path; inside it, no symlink is ever followed:
// every entry is opened relative to its parent's handle, with O_NOFOLLOW.
// The copy is made next to _data and its entries are renamed in only when it
// is complete (and synced): after a kill during the copy, _data is still
// empty and the next Populate starts over; after a kill during the renames,
// the next Populate finishes them. Populates of one volume run one at a
// time; a Populate of a volume removed meanwhile fails with ErrNotFound.
func (v *Volume) Populate(src string) error {
	return v.populate(src, func() (*os.File, error) {
		f, err := os.Open(src)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return f, err
	})
}

// PopulateIn is Populate of the directory at path inside root (a container's
// root filesystem), resolved as if root were "/": symlinks on the way,
// absolute or made of "..", never lead out of root (openat2 RESOLVE_IN_ROOT,
// or filepath-securejoin where the kernel lacks it).
func (v *Volume) PopulateIn(root, path string) error {
	return v.populate(filepath.Join(root, path), func() (*os.File, error) {
		return openDirInRoot(root, path)
	})
}

// openDirInRoot is openInRoot, with nil for nothing there to copy.
func openDirInRoot(root, path string) (*os.File, error) {
	f, err := openInRoot(root, path)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return nil, nil
	}
	return f, err
}

// populate runs the copy from what open returns (nil: nothing to copy) under
// the volume's flock. open is called only once the volume is known to need
// a copy.
func (v *Volume) populate(from string, open func() (*os.File, error)) error {
	if err := v.populateLocked(open); err != nil {
		return fmt.Errorf("populate volume %s from %s: %w", v.Name, from, err)
	}
	return nil
}

func (v *Volume) populateLocked(open func() (*os.File, error)) error {
	dir := filepath.Dir(v.Dir)
	lk, err := flock.Open(context.Background(), dir, flock.Exclusive, false)
	if err != nil {
		return err
	}
	defer lk.Close()
	if !sameFile(lk, dir) {
		return ErrNotFound // removed while we waited
	}
	rec, err := readRecord(dir)
	if err != nil {
		return err
	}
	done := filepath.Join(dir, doneDir)
	if rec.Populated {
		return os.RemoveAll(done) // empty, if a kill came after the marker
	}
	if _, err := os.Lstat(done); err == nil {
		return finish(dir, rec) // a kill interrupted the renames
	}
	partial := filepath.Join(dir, partialDir)
	if err := os.RemoveAll(partial); err != nil {
		return err
	}
	if empty, err := isEmpty(v.Dir); err != nil || !empty {
		return err
	}
	src, err := open()
	if err != nil || src == nil {
		return err
	}
	defer src.Close()
	if fi, err := src.Stat(); err != nil || !fi.IsDir() {
		return err
	}
	if err := os.Mkdir(partial, 0o700); err != nil {
		return err
	}
	if err := copyTree(src, partial); err != nil {
		os.RemoveAll(partial)
		return err
	}
	// The renames below must not reach the disk before the data does.
	if err := syncFS(partial); err != nil {
		return err
	}
	if err := os.Rename(partial, done); err != nil {
		return err
	}
	return finish(dir, rec)
}

// finish moves the entries of the finished copy into _data, gives _data the
// copy's root owner and mode, and marks the volume populated. An entry that
// a container made in _data meanwhile wins over the copy's.
func finish(dir string, rec record) error {
	done, data := filepath.Join(dir, doneDir), filepath.Join(dir, dataDir)
	names, err := readNames(done)
	if err != nil {
		return err
	}
	for _, name := range names {
		err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(done, name), unix.AT_FDCWD, filepath.Join(data, name), unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EEXIST) {
			err = os.RemoveAll(filepath.Join(done, name))
		}
		if err != nil {
			return &os.PathError{Op: "move into _data", Path: name, Err: err}
		}
	}
	if err := copyRootAttrs(done, data); err != nil {
		return err
	}
	rec.Populated = true
	if err := writeRecord(dir, rec); err != nil {
		return err
	}
	return os.Remove(done)
}

// copyRootAttrs gives dst the owner, mode and xattrs of src, as Docker gives
// a volume the owner and mode of the image's directory.
func copyRootAttrs(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	s, err := os.Open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	return setMeta(int(d.Fd()), &st, func(set func(string, []byte) error) error {
		return eachXattr(fdXattrs(int(s.Fd())), set)
	})
}

func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Lstat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// copier copies one tree. Every source entry is reached from its parent's
// handle without following symlinks; the destination is a fresh private dir
// only this copier writes.
type copier struct {
	dstRoot int              // handle of the destination root
	links   map[inode]string // hardlinked files copied so far: inode -> path under dstRoot
}

type inode struct{ dev, ino uint64 }

// copyTree copies the directory src (its content and its own attributes)
// into the empty directory dst.
func copyTree(src *os.File, dst string) error {
	d, err := os.Open(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	c := &copier{dstRoot: int(d.Fd()), links: map[inode]string{}}
	if err := c.dirContent(src, d, "."); err != nil {
		return err
	}
	// Its times would not survive finish's renames; owner, mode and xattrs do.
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	return setMeta(int(d.Fd()), &st, func(set func(string, []byte) error) error {
		return eachXattr(fdXattrs(int(src.Fd())), set)
	})
}

func (c *copier) dirContent(src, dst *os.File, rel string) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return &os.PathError{Op: "readdir", Path: rel, Err: err}
	}
	for _, name := range names {
		p := path.Join(rel, name)
		if err := c.entry(src, dst, name, p); err != nil {
			return fmt.Errorf("copy %s: %w", p, err)
		}
	}
	return nil
}

// entry copies src/name to dst/name; rel is its path under the roots.
func (c *copier) entry(src, dst *os.File, name, rel string) error {
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	var st unix.Stat_t
	err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		// Listed but not there: removed meanwhile, or a whiteout that an
		// overlay lists in a directory of one layer but hides from lookups.
		return nil
	}
	if err != nil {
		return wrap("lstat", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return c.dir(src, dst, name, rel, &st)
	case unix.S_IFREG:
		return c.file(sfd, dfd, name, rel, &st)
	case unix.S_IFLNK:
		target, err := readlinkat(sfd, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return wrap("symlink", err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return wrap("mknod", err)
		}
	default:
		return nil // a socket means nothing without its process
	}
	// A symlink, device or fifo: it cannot be opened for its metadata.
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wrap("chown", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// fchmodat follows symlinks, but name is a node we just made.
		if err := unix.Fchmodat(dfd, name, st.Mode&0o7777, 0); err != nil {
			return wrap("chmod", err)
		}
	}
	err = eachXattr(linkXattrs(sfd, name), func(attr string, value []byte) error {
		return unix.Lsetxattr(procPath(dfd, name), attr, value, 0)
	})
	if err != nil {
		return err
	}
	return setTimes(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
}

func (c *copier) dir(src, dst *os.File, name, rel string, st *unix.Stat_t) error {
	sfd, err := unix.Openat(int(src.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrap("open", err)
	}
	s := os.NewFile(uintptr(sfd), rel)
	defer s.Close()
	if err := unix.Mkdirat(int(dst.Fd()), name, 0o700); err != nil {
		return wrap("mkdir", err)
	}
	dfd, err := unix.Openat(int(dst.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrap("open", err)
	}
	d := os.NewFile(uintptr(dfd), rel)
	defer d.Close()
	if err := c.dirContent(s, d, rel); err != nil {
		return err
	}
	// Attributes last: a 0555 dir must not block its own copy, and adding
	// children changes the mtime.
	if err := setMeta(dfd, st, func(set func(string, []byte) error) error {
		return eachXattr(fdXattrs(sfd), set)
	}); err != nil {
		return err
	}
	return setTimes(int(dst.Fd()), name, st, unix.AT_SYMLINK_NOFOLLOW)
}

func (c *copier) file(sfd, dfd int, name, rel string, st *unix.Stat_t) error {
	id := inode{st.Dev, st.Ino}
	if st.Nlink > 1 {
		if first, ok := c.links[id]; ok {
			return wrap("link to "+first, unix.Linkat(c.dstRoot, first, dfd, name, 0))
		}
	}
	// O_NONBLOCK: if name became a fifo since the lstat, do not hang on it.
	in, err := unix.Openat(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrap("open", err)
	}
	inf := os.NewFile(uintptr(in), rel)
	defer inf.Close()
	var now unix.Stat_t
	if err := unix.Fstat(in, &now); err != nil {
		return wrap("stat", err)
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("changed while being copied")
	}
	out, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return wrap("create", err)
	}
	outf := os.NewFile(uintptr(out), rel)
	defer outf.Close()
	if _, err := io.Copy(outf, inf); err != nil { // copy_file_range where it can
		return err
	}
	if err := setMeta(out, st, func(set func(string, []byte) error) error {
		return eachXattr(fdXattrs(in), set)
	}); err != nil {
		return err
	}
	if err := setTimes(dfd, name, st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Nlink > 1 {
		c.links[id] = rel
	}
	return outf.Close()
}

// setMeta sets owner, then mode (chown clears setuid and setgid), then
// xattrs (chown also clears security.capability) on the open fd.
func setMeta(fd int, st *unix.Stat_t, xattrs func(set func(string, []byte) error) error) error {
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return wrap("chown", err)
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return wrap("chmod", err)
	}
	return xattrs(func(name string, value []byte) error {
		return unix.Fsetxattr(fd, name, value, 0)
	})
}

func setTimes(dirfd int, name string, st *unix.Stat_t, flags int) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return wrap("set times", unix.UtimesNanoAt(dirfd, name, ts, flags))
}

// xattrSource lists a node's xattrs and reads one.
type xattrSource struct {
	list func(buf []byte) (int, error)
	get  func(name string, buf []byte) (int, error)
}

func fdXattrs(fd int) xattrSource {
	return xattrSource{
		list: func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		get:  func(name string, buf []byte) (int, error) { return unix.Fgetxattr(fd, name, buf) },
	}
}

// linkXattrs reads the xattrs of dirfd/name without following name: through
// the directory handle's /proc path, which pins the directory.
func linkXattrs(dirfd int, name string) xattrSource {
	p := procPath(dirfd, name)
	return xattrSource{
		list: func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
		get:  func(attr string, buf []byte) (int, error) { return unix.Lgetxattr(p, attr, buf) },
	}
}

func procPath(dirfd int, name string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
}

// eachXattr calls set for every xattr src has, except the ones that belong
// to where a file is rather than to the file: overlayfs' own (which would
// turn a copied directory opaque) and SELinux labels. An attribute the
// destination cannot take is skipped: xattrs are copied where possible.
func eachXattr(src xattrSource, set func(name string, value []byte) error) error {
	names, err := readXattr(src.list)
	if errors.Is(err, unix.ENOTSUP) {
		return nil
	}
	if err != nil {
		return wrap("listxattr", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(names), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") || name == "security.selinux" {
			continue
		}
		value, err := readXattr(func(buf []byte) (int, error) { return src.get(name, buf) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return wrap("getxattr "+name, err)
		}
		switch err := set(name, value); {
		case err == nil, errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		default:
			return wrap("setxattr "+name, err)
		}
	}
	return nil
}

// readXattr calls read with a buffer large enough for its answer.
func readXattr(read func(buf []byte) (int, error)) ([]byte, error) {
	for range 8 {
		n, err := read(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = read(buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew between the two calls
		}
		return buf[:n], err
	}
	return nil, unix.ERANGE
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", wrap("readlink", err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// openInRoot opens the directory at p inside root for reading, resolving p
// as if root were "/".
func openInRoot(root, p string) (*os.File, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 {
		fd, err := unix.Openat2(rfd, p, how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), filepath.Join(root, p)), nil
		case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM):
			return openInRootUserspace(root, p) // old kernel, or a seccomp filter
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue // a rename raced with a ".." lookup: the kernel asks us to retry
		default:
			return nil, &os.PathError{Op: "openat2", Path: filepath.Join(root, p), Err: err}
		}
	}
	return nil, &os.PathError{Op: "openat2", Path: filepath.Join(root, p), Err: unix.EAGAIN}
}

// openInRootUserspace resolves p in user space, then opens the result
// without following a symlink: safe as long as nobody changes the tree
// meanwhile, which holds for an image's root filesystem.
func openInRootUserspace(root, p string) (*os.File, error) {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(full, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: full, Err: err}
	}
	return os.NewFile(uintptr(fd), full), nil
}

// syncFS flushes the filesystem that holds dir.
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return &os.PathError{Op: "syncfs", Path: dir, Err: err}
	}
	return nil
}

// wrap names the failed operation, keeping the errno for errors.Is.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
