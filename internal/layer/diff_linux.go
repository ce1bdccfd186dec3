package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Diff writes the changes recorded in an overlayfs upper directory as an OCI
// layer (tar -> gzip -> w) and returns its hashes and sizes, like Write.
//
// The layer is deterministic like Write's: entries sorted as Write sorts
// them, every mtime = mtime (whole seconds), no user or group names, no
// atime or ctime, gzip header without name or time. Nothing of the host's
// goes in: not inode numbers, timestamps or SELinux labels.
//
// Regular files, directories, symlinks, device nodes and fifos keep their
// mode (setuid, setgid, sticky included), owner and xattrs. Files with
// several links inside upper are written once, at the first of their names
// in sort order, then as hardlinks to it (mode and owner repeated, xattrs
// not). Overlay's own xattrs (trusted.overlay.*, user.overlay.*) are never
// written, nor is security.selinux (the host's labelling, not the step's
// content); sockets are left out, as tar cannot carry them.
//
// Overlay whiteouts (0:0 character devices) become ".wh.NAME" entries. A
// directory with trusted.overlay.opaque=y (or user.overlay.opaque=y) becomes
// its entry followed directly by "DIR/.wh..wh..opq", before any of its
// children (the one exception to the sort order), so that even tools that
// apply markers in tar order keep them. A directory that is in upper only
// because something below it changed is still written, with its mode and
// owner from upper, so the layer stands on its own. The root itself is not
// written: its mode and owner are those of the upper dir kiln made, not the
// step's (Docker's diffs leave it out too).
//
// exclude lists paths as seen in the container ("/build", a mount point such
// as "/proc" that shows in upper as an empty directory); each is left out with
// everything under it. A directory that holds one is still written.
//
// upper must have been made with metacopy and redirect_dir off (kiln mounts
// so): a file or directory carrying their xattrs is an error, since its
// content or name lives in a lower layer Diff does not read. Seeing
// trusted.overlay.opaque needs CAP_SYS_ADMIN, as mounting did.
//
// Every lookup is relative to an open directory and never follows a
// symlink, so even a container still running on upper cannot make Diff read
// outside it; what it changes meanwhile may or may not be in the layer.
func Diff(w io.Writer, upper string, mtime time.Time, exclude []string) (Written, error) {
	skip, err := excludeSet(exclude)
	if err != nil {
		return Written{}, fmt.Errorf("diff %s: %w", upper, err)
	}
	d := &differ{mtime: wholeSeconds(mtime), skip: skip, links: make(map[inode]string)}
	written, err := writeTarGzip(w, func(tw *tar.Writer) error {
		d.tw = tw
		return d.root(upper)
	})
	if err != nil {
		return Written{}, fmt.Errorf("diff %s: %w", upper, err)
	}
	return written, nil
}

func excludeSet(exclude []string) (map[string]bool, error) {
	skip := make(map[string]bool, len(exclude))
	for _, p := range exclude {
		if !path.IsAbs(p) {
			return nil, fmt.Errorf("exclude %q: not an absolute path", p)
		}
		skip[path.Clean(p)] = true
	}
	return skip, nil
}

type differ struct {
	tw    *tar.Writer
	mtime time.Time
	skip  map[string]bool  // excluded paths; the walk never enters them, so exact matches suffice
	links map[inode]string // tar name of the first entry of each inode with several links
}

type inode struct{ dev, ino uint64 }

// node is one entry of upper.
type node struct {
	path     string // in the container, "/etc/passwd"
	base     string // last component of its tar name: the sort key among siblings
	name     string // in the tar: "etc/passwd", "etc/.wh.old", "etc/"
	st       unix.Stat_t
	whiteout bool
}

func (n *node) kind() uint32 { return n.st.Mode & unix.S_IFMT }

func (d *differ) root(upper string) error {
	if d.skip["/"] {
		return nil
	}
	fd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: upper, Err: err}
	}
	return d.walk(os.NewFile(uintptr(fd), upper), "/")
}

// walk writes what is below the directory dir, open as f, and closes f.
func (d *differ) walk(f *os.File, dir string) error {
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	dirFd := int(f.Fd())
	nodes := make([]*node, 0, len(names))
	for _, base := range names {
		p := path.Join(dir, base)
		if d.skip[p] {
			continue
		}
		n, err := statNode(dirFd, p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if n != nil {
			nodes = append(nodes, n)
		}
	}
	slices.SortFunc(nodes, func(a, b *node) int { return strings.Compare(a.base, b.base) })
	for _, n := range nodes {
		if n.kind() == unix.S_IFDIR {
			if err := d.dir(dirFd, n); err != nil {
				return err
			}
			continue
		}
		if err := d.write(dirFd, n); err != nil {
			return fmt.Errorf("%s: %w", n.path, err)
		}
	}
	return nil
}

// statNode reads the entry p in the directory dirFd, or returns nil for a
// socket.
func statNode(dirFd int, p string) (*node, error) {
	n := &node{path: p, base: path.Base(p)}
	if err := unix.Fstatat(dirFd, n.base, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, wrapOp("stat", err)
	}
	if strings.HasPrefix(n.base, whiteoutPrefix) {
		// In a layer it would delete, not be, a file.
		return nil, fmt.Errorf("names starting with %q are reserved for whiteouts in a layer", whiteoutPrefix)
	}
	n.name = strings.TrimPrefix(p, "/")
	switch n.kind() {
	case unix.S_IFSOCK:
		return nil, nil
	case unix.S_IFCHR:
		if n.st.Rdev == 0 {
			n.whiteout = true
			n.base = whiteoutPrefix + n.base
			n.name = path.Join(path.Dir(n.name), n.base)
		}
	case unix.S_IFDIR:
		n.name += "/"
	}
	return n, nil
}

// dir writes the directory n, its opaque marker, and what is below it.
func (d *differ) dir(parentFd int, n *node) error {
	fd, err := unix.Openat(parentFd, path.Base(n.path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", n.path, wrapOp("open", err))
	}
	f := os.NewFile(uintptr(fd), n.path)
	if err := d.dirHeader(fd, n); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", n.path, err)
	}
	return d.walk(f, n.path)
}

func (d *differ) dirHeader(fd int, n *node) error {
	if err := sameInode(fd, n); err != nil {
		return err
	}
	xattrs, err := fdXattrs(fd)
	if err != nil {
		return err
	}
	hdr := d.header(n)
	hdr.Typeflag = tar.TypeDir
	opaque, err := keepXattrs(hdr, xattrs)
	if err != nil {
		return err
	}
	if err := d.tw.WriteHeader(hdr); err != nil || !opaque {
		return err
	}
	return d.marker(n.name + opaqueMarker)
}

// write writes the entry n, a whiteout or anything but a directory.
func (d *differ) write(dirFd int, n *node) error {
	if n.whiteout {
		return d.marker(n.name) // overlay's inode: no metadata of the step's
	}
	hdr := d.header(n)
	if n.st.Nlink > 1 {
		id := inode{n.st.Dev, n.st.Ino}
		if first, ok := d.links[id]; ok {
			// Mode and owner as the inode's, which some tools apply to the
			// link's path; its xattrs went with its first name.
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return d.tw.WriteHeader(hdr)
		}
		d.links[id] = n.name
	}
	if n.kind() == unix.S_IFREG {
		hdr.Typeflag = tar.TypeReg
		return d.file(dirFd, n, hdr)
	}
	return d.special(dirFd, n, hdr)
}

// header is what every entry of n's says: name, mode, owner, mtime.
func (d *differ) header(n *node) *tar.Header {
	return &tar.Header{
		Name:    n.name,
		Mode:    int64(n.st.Mode & 0o7777),
		Uid:     int(n.st.Uid),
		Gid:     int(n.st.Gid),
		ModTime: d.mtime,
		Format:  tar.FormatPAX, // as in Write: never Go's choice between formats
	}
}

// special writes a symlink, device or fifo.
func (d *differ) special(dirFd int, n *node, hdr *tar.Header) error {
	switch n.kind() {
	case unix.S_IFLNK:
		target, err := readlink(dirFd, n)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if n.kind() == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(n.st.Rdev)), int64(unix.Minor(n.st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("unsupported file type %#o", n.kind())
	}
	// Nodes that cannot be opened: their xattrs through the directory's
	// handle, with l*xattr calls that do not follow the last component.
	xattrs, err := linkXattrs(fmt.Sprintf("/proc/self/fd/%d/%s", dirFd, path.Base(n.path)))
	if err != nil {
		return err
	}
	if _, err := keepXattrs(hdr, xattrs); err != nil {
		return err
	}
	return d.tw.WriteHeader(hdr)
}

// marker writes an empty ".wh.*" entry. A whiteout carries no metadata of
// its own, so markers get fixed ones (0600 0:0, the mode Docker gives them).
func (d *differ) marker(name string) error {
	return d.tw.WriteHeader(&tar.Header{
		Name: name, Typeflag: tar.TypeReg, Mode: 0o600, ModTime: d.mtime, Format: tar.FormatPAX,
	})
}

// file writes the regular file n: the inode stat saw, its xattrs and
// content, with the size it has once open.
func (d *differ) file(dirFd int, n *node, hdr *tar.Header) error {
	// O_NONBLOCK: should n have been replaced by a fifo, do not wait for a writer.
	fd, err := unix.Openat(dirFd, path.Base(n.path), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapOp("open", err)
	}
	defer unix.Close(fd)
	if err := sameInode(fd, n); err != nil {
		return err
	}
	xattrs, err := fdXattrs(fd)
	if err != nil {
		return err
	}
	if _, err := keepXattrs(hdr, xattrs); err != nil {
		return err
	}
	hdr.Size = n.st.Size // as fstat says, by sameInode
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	copied, err := io.CopyN(d.tw, fdReader(fd), hdr.Size)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("shrank from %d to %d bytes while being read", hdr.Size, copied)
	}
	if err != nil {
		return err
	}
	if m, _ := fdReader(fd).Read(make([]byte, 1)); m > 0 {
		return fmt.Errorf("grew beyond %d bytes while being read", hdr.Size)
	}
	return nil
}

// fdReader reads a regular file's descriptor: no os.File, whose poller
// registration costs two system calls per file.
type fdReader int

func (fd fdReader) Read(p []byte) (int, error) {
	n, err := unix.Read(int(fd), p)
	switch {
	case err != nil:
		return 0, wrapOp("read", err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// sameInode fails if fd is not the inode stat saw as n (it was replaced in
// between), and refreshes n.st from fd.
func sameInode(fd int, n *node) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return wrapOp("stat", err)
	}
	if st.Dev != n.st.Dev || st.Ino != n.st.Ino {
		return errors.New("replaced while being read")
	}
	n.st = st
	return nil
}

func readlink(dirFd int, n *node) (string, error) {
	for size := n.st.Size + 1; ; size *= 2 {
		buf := make([]byte, size)
		m, err := unix.Readlinkat(dirFd, path.Base(n.path), buf)
		if err != nil {
			return "", wrapOp("readlink", err)
		}
		if int64(m) < size {
			return string(buf[:m]), nil
		}
	}
}

// keepXattrs puts the xattrs a layer carries into hdr as SCHILY.xattr.*
// records, and says whether overlay marked the directory opaque.
func keepXattrs(hdr *tar.Header, xattrs map[string]string) (opaque bool, err error) {
	for name, value := range xattrs {
		attr, ok := overlayAttr(name)
		switch {
		case ok && attr == "opaque":
			// "y" only: since Linux 6.7, "x" marks a directory holding xattr whiteouts.
			opaque = opaque || (hdr.Typeflag == tar.TypeDir && value == "y")
		case ok && (attr == "metacopy" || attr == "redirect"):
			return false, fmt.Errorf("xattr %s: upper made with metacopy or redirect_dir, which Diff cannot read", name)
		case ok, name == "security.selinux":
		default:
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = make(map[string]string)
			}
			hdr.PAXRecords["SCHILY.xattr."+name] = value
		}
	}
	return opaque, nil
}

// overlayAttr returns "opaque" for "trusted.overlay.opaque" or
// "user.overlay.opaque" (userxattr mounts); false for other xattrs.
func overlayAttr(name string) (string, bool) {
	if attr, ok := strings.CutPrefix(name, "trusted.overlay."); ok {
		return attr, true
	}
	return strings.CutPrefix(name, "user.overlay.")
}

// fdXattrs returns the xattrs of an open file or directory.
func fdXattrs(fd int) (map[string]string, error) {
	return readXattrs(
		func(buf []byte) (int, error) { return unix.Flistxattr(fd, buf) },
		func(name string, buf []byte) (int, error) { return unix.Fgetxattr(fd, name, buf) })
}

// linkXattrs returns the xattrs of p, not following p if it is a symlink.
func linkXattrs(p string) (map[string]string, error) {
	return readXattrs(
		func(buf []byte) (int, error) { return unix.Llistxattr(p, buf) },
		func(name string, buf []byte) (int, error) { return unix.Lgetxattr(p, name, buf) })
}

func readXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error)) (map[string]string, error) {
	names, err := growRead(list)
	switch {
	case errors.Is(err, unix.ENOTSUP):
		return nil, nil
	case err != nil:
		return nil, wrapOp("listxattr", err)
	case len(names) == 0:
		return nil, nil
	}
	xattrs := make(map[string]string)
	for _, name := range strings.Split(strings.TrimSuffix(string(names), "\x00"), "\x00") {
		value, err := growRead(func(buf []byte) (int, error) { return get(name, buf) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed since listed
		}
		if err != nil {
			return nil, wrapOp("getxattr "+name, err)
		}
		xattrs[name] = string(value)
	}
	return xattrs, nil
}

// growRead calls read with a buffer big enough for its answer.
func growRead(read func(buf []byte) (int, error)) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := read(buf)
		if err == nil {
			return buf[:n], nil
		}
		if !errors.Is(err, unix.ERANGE) {
			return nil, err
		}
		size, err := read(nil)
		if err != nil {
			return nil, err
		}
		buf = make([]byte, max(size, 2*len(buf)))
	}
}
