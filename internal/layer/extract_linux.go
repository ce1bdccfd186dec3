package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// overlayOpaque is the xattr overlayfs reads to make a directory opaque.
const overlayOpaque = "trusted.overlay.opaque"

// Extract unpacks one uncompressed layer into dir, which should be empty: it
// is the unpacked form of this layer alone, meant to be an overlayfs lower
// directory. It refuses what Check refuses, and in addition resolves every
// parent inside dir (see root), so even a layer that slipped past Check
// cannot write outside dir.
//
// Whiteouts are recorded the way overlayfs stores them, not applied:
// ".wh.NAME" becomes a 0:0 character device NAME (unless this layer made
// NAME itself, which a whiteout never hides), and ".wh..wh..opq" sets the
// xattr trusted.overlay.opaque=y on its directory. Modes (setuid, setgid,
// sticky included), owners, mtimes, xattrs (PAX SCHILY.xattr.*, except the
// overlay's own trusted.overlay.* and user.overlay.*, which a layer must not
// forge), hardlinks, symlinks, devices and fifos are restored.
//
// Extract needs root (CAP_CHOWN, CAP_MKNOD, CAP_SYS_ADMIN for trusted.*).
func Extract(ctx context.Context, r io.Reader, dir string) error {
	rt, err := openRoot(dir)
	if err != nil {
		return fmt.Errorf("extract layer: %w", err)
	}
	defer rt.close()
	x := &extractor{rt: rt}
	if err := x.run(ctx, r); err != nil {
		return fmt.Errorf("extract layer into %s: %w", dir, err)
	}
	return nil
}

type extractor struct {
	rt   *root
	c    checker
	dirs []dirTimes // set last: creating children changes a directory's mtime
}

type dirTimes struct {
	name string
	hdr  *tar.Header
}

func (x *extractor) run(ctx context.Context, r io.Reader) error {
	lr := newLayerReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := lr.next()
		if err == io.EOF {
			return x.setDirTimes()
		}
		if err != nil {
			return err
		}
		name, err := x.c.entry(hdr)
		if err == errSkip {
			continue
		}
		if err != nil {
			return err
		}
		if err := x.apply(name, hdr, ctxReader{ctx, lr}); err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
}

// apply makes the checked entry hdr, whose clean relative name is name.
func (x *extractor) apply(name string, hdr *tar.Header, content io.Reader) error {
	base := path.Base(name)
	if base == opaqueMarker {
		return x.opaque(path.Dir(name))
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return x.whiteout(path.Join(path.Dir(name), strings.TrimPrefix(base, whiteoutPrefix)), hdr)
	}
	parent, err := x.rt.mkdirAll(path.Dir(name))
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.mkdir(parent, base, name, hdr)
	case tar.TypeReg:
		return create(parent, base, hdr, content)
	case tar.TypeSymlink:
		return symlink(parent, base, hdr)
	case tar.TypeLink:
		return x.link(parent, base, hdr)
	}
	return mknod(parent, base, hdr)
}

func (x *extractor) mkdir(parent int, base, name string, hdr *tar.Header) error {
	if err := removeExisting(parent, base, true); err != nil {
		return err
	}
	if err := unix.Mkdirat(parent, base, 0o700); err != nil && err != unix.EEXIST {
		return wrapOp("mkdir", err)
	}
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapOp("open", err)
	}
	defer unix.Close(fd)
	if err := setOwnerMode(fd, hdr); err != nil {
		return err
	}
	if err := setXattrs(fd, hdr); err != nil {
		return err
	}
	x.dirs = append(x.dirs, dirTimes{name, hdr})
	return nil
}

func create(parent int, base string, hdr *tar.Header, content io.Reader) error {
	if err := removeExisting(parent, base, false); err != nil {
		return err
	}
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return wrapOp("create", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if _, err := io.Copy(f, content); err != nil {
		return err
	}
	if err := setOwnerMode(fd, hdr); err != nil {
		return err
	}
	if err := setXattrs(fd, hdr); err != nil {
		return err
	}
	if err := setTimes(parent, base, hdr); err != nil {
		return err
	}
	return f.Close()
}

func symlink(parent int, base string, hdr *tar.Header) error {
	if err := removeExisting(parent, base, false); err != nil {
		return err
	}
	if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
		return wrapOp("symlink", err)
	}
	return setNodeMeta(parent, base, hdr, false)
}

func (x *extractor) link(parent int, base string, hdr *tar.Header) error {
	target := path.Clean(strings.TrimLeft(hdr.Linkname, "/"))
	targetParent, err := x.rt.openDir(path.Dir(target))
	if err != nil {
		return err
	}
	defer unix.Close(targetParent)
	if err := removeExisting(parent, base, false); err != nil {
		return err
	}
	// Flags 0: link the target itself, even when it is a symlink.
	return wrapOp("link to "+target, unix.Linkat(targetParent, path.Base(target), parent, base, 0))
}

func mknod(parent int, base string, hdr *tar.Header) error {
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	}
	if err := removeExisting(parent, base, false); err != nil {
		return err
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknodat(parent, base, mode, int(dev)); err != nil {
		return wrapOp("mknod", err)
	}
	return setNodeMeta(parent, base, hdr, true)
}

// setNodeMeta sets owner, mode (unless symlink), xattrs and times of a node
// that cannot be opened for writing: a symlink, device or fifo we just made.
func setNodeMeta(parent int, base string, hdr *tar.Header, chmod bool) error {
	if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return wrapOp("chown", err)
	}
	// fchmodat follows symlinks, but base is a device or fifo we just made.
	if chmod {
		if err := unix.Fchmodat(parent, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return wrapOp("chmod", err)
		}
	}
	if err := setLinkXattrs(parent, base, hdr); err != nil {
		return err
	}
	return setTimes(parent, base, hdr)
}

// whiteout records that target is deleted, as an overlayfs whiteout.
func (x *extractor) whiteout(target string, hdr *tar.Header) error {
	parent, err := x.rt.mkdirAll(path.Dir(target))
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	base := path.Base(target)
	var st unix.Stat_t
	if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return nil // made by this layer, which its own whiteouts never hide
	}
	if err := unix.Mknodat(parent, base, unix.S_IFCHR, 0); err != nil {
		return wrapOp("mknod whiteout", err)
	}
	return setTimes(parent, base, hdr)
}

// opaque marks dir opaque, as overlayfs does.
func (x *extractor) opaque(dir string) error {
	pathFd, err := x.rt.mkdirAll(dir)
	if err != nil {
		return err
	}
	defer unix.Close(pathFd)
	fd, err := unix.Openat(pathFd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapOp("open", err)
	}
	defer unix.Close(fd)
	return wrapOp("setxattr "+overlayOpaque, unix.Fsetxattr(fd, overlayOpaque, []byte("y"), 0))
}

func (x *extractor) setDirTimes() error {
	for _, d := range x.dirs {
		if x.c.seen[d.name] != tar.TypeDir {
			continue // replaced later in the layer
		}
		parent, err := x.rt.openDir(path.Dir(d.name))
		if err != nil {
			return fmt.Errorf("entry %q: %w", d.hdr.Name, err)
		}
		err = setTimes(parent, path.Base(d.name), d.hdr)
		unix.Close(parent)
		if err != nil {
			return fmt.Errorf("entry %q: %w", d.hdr.Name, err)
		}
	}
	return nil
}

// removeExisting makes room for a new entry base in parent: a later entry
// replaces an earlier one. A directory stays if keepDir.
func removeExisting(parent int, base string, keepDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil
	case err != nil:
		return wrapOp("stat", err)
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return wrapOp("remove", unix.Unlinkat(parent, base, 0))
	case keepDir:
		return nil
	}
	return removeAll(parent, base)
}

// removeAll removes the directory name in parent and everything in it,
// never following a symlink.
func removeAll(parent int, name string) error {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapOp("open", err)
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeExisting(fd, n, false); err != nil {
			return err
		}
	}
	return wrapOp("remove", unix.Unlinkat(parent, name, unix.AT_REMOVEDIR))
}

// setOwnerMode sets owner, then mode: chown clears setuid and setgid.
func setOwnerMode(fd int, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return wrapOp("chown", err)
	}
	return wrapOp("chmod", unix.Fchmod(fd, uint32(hdr.Mode&0o7777)))
}

func setXattrs(fd int, hdr *tar.Header) error {
	return eachXattr(hdr, func(name string, value []byte) error {
		return unix.Fsetxattr(fd, name, value, 0)
	})
}

// setLinkXattrs sets xattrs on a node we cannot open: through the directory
// handle's /proc path, which pins the directory, with an l*xattr call that
// does not follow base.
func setLinkXattrs(parent int, base string, hdr *tar.Header) error {
	p := fmt.Sprintf("/proc/self/fd/%d/%s", parent, base)
	return eachXattr(hdr, func(name string, value []byte) error {
		return unix.Lsetxattr(p, name, value, 0)
	})
}

// eachXattr calls set for every SCHILY.xattr PAX record of hdr, except the
// overlay's own attributes.
func eachXattr(hdr *tar.Header, set func(name string, value []byte) error) error {
	for key, value := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(key, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		if err := set(name, []byte(value)); err != nil {
			return wrapOp("setxattr "+name, err)
		}
	}
	return nil
}

func setTimes(parent int, base string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(atime), timespec(hdr.ModTime)}
	return wrapOp("set times", unix.UtimesNanoAt(parent, base, ts, unix.AT_SYMLINK_NOFOLLOW))
}

func timespec(t time.Time) unix.Timespec {
	return unix.NsecToTimespec(t.UnixNano())
}

// ctxReader stops a long copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
