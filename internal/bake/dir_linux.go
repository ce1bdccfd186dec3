package bake

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// writeDir writes t as files under dir, owners, modes, devices and times included (the owners
// and device nodes need root).
func writeDir(dir string, t tree) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	paths := make([]string, 0, len(t))
	for p := range t {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	first := map[*node]string{}
	for _, p := range paths {
		if err := writeNode(dir, p, t[p], first); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	// Times last, children before parents: creating a child changes its directory's mtime.
	for _, p := range slices.Backward(paths) {
		n := t[p]
		ts := []unix.Timespec{{Sec: n.mtime}, {Sec: n.mtime}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, p), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func writeNode(dir, p string, n *node, first map[*node]string) error {
	full := filepath.Join(dir, p)
	if f, ok := first[n]; ok {
		return os.Link(filepath.Join(dir, f), full)
	}
	first[n] = p
	var err error
	switch n.mode & 0o170000 {
	case modeDir:
		err = os.Mkdir(full, 0o700)
	case modeReg:
		err = os.WriteFile(full, n.data, 0o600)
	case modeLink:
		err = os.Symlink(n.target, full)
	default:
		err = unix.Mknod(full, n.mode, int(unix.Mkdev(n.devMajor, n.devMinor)))
	}
	if err != nil {
		return err
	}
	if err := os.Lchown(full, n.uid, n.gid); err != nil {
		return err
	}
	if n.mode&0o170000 == modeLink {
		return nil
	}
	// After chown, which clears set-id bits.
	return unix.Fchmodat(unix.AT_FDCWD, full, n.mode&0o7777, 0)
}

// exchange swaps the directories a and b in one step.
func exchange(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}
