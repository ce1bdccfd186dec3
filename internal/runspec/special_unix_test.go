//go:build unix

package runspec

import "golang.org/x/sys/unix"

func setOpaqueXattr(dir string) error {
	return unix.Setxattr(dir, overlayOpaque, []byte("y"), 0)
}

func mknodWhiteout(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o000, 0) }

func mkfifo(p string) error { return unix.Mkfifo(p, 0o644) }
