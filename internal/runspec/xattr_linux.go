package runspec

import "golang.org/x/sys/unix"

func hasOpaqueXattr(dir string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(dir, overlayOpaque, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}
