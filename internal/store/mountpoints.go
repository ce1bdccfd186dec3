package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// DirAttr is the mode, owner and modification time Mountpoints gives a directory.
type DirAttr struct {
	Mode     os.FileMode // permissions with setuid, setgid and sticky bits
	UID, GID int
	ModTime  time.Time
}

// Mountpoints returns a directory holding the empty directories dirs and the empty files files
// (slash-separated paths relative to it), directories named in attrs having those attributes,
// made once per kiln root for each such description and never changed:
//
//	ROOT/layers/mountpoints/<sha256 of the description>/
//
// Laid read-only over an image's layers, it gives a container's mounts (/proc, /dev, /sys,
// /etc/hosts...) their mountpoints without the runtime creating them in the container's upper
// directory: Docker's "init layer", shared by every container instead of made for each.
func (s *Store) Mountpoints(dirs, files []string, attrs map[string]DirAttr) (string, error) {
	parent := filepath.Join(filepath.Dir(s.layersDir()), "mountpoints")
	dir := filepath.Join(parent, mountpointsKey(dirs, files, attrs))
	if fi, err := os.Lstat(dir); err == nil && fi.IsDir() {
		return dir, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("mountpoints layer: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "tmp-")
	if err != nil {
		return "", fmt.Errorf("mountpoints layer: %w", err)
	}
	defer os.RemoveAll(tmp) // after the rename below: nothing
	if err := fillMountpoints(tmp, dirs, files, attrs); err != nil {
		return "", fmt.Errorf("mountpoints layer: %w", err)
	}
	// Appears whole, by rename; a concurrent maker that won leaves ours to be removed.
	if err := os.Rename(tmp, dir); err != nil {
		if fi, serr := os.Lstat(dir); serr != nil || !fi.IsDir() {
			return "", fmt.Errorf("mountpoints layer: %w", err)
		}
	}
	return dir, nil
}

func mountpointsKey(dirs, files []string, attrs map[string]DirAttr) string {
	h := sha256.New()
	fmt.Fprintf(h, "dirs %q\nfiles %q\n", dirs, files)
	for _, d := range slices.Sorted(maps.Keys(attrs)) {
		a := attrs[d]
		fmt.Fprintf(h, "attr %q %o %d %d %d\n", d, uint32(a.Mode), a.UID, a.GID, a.ModTime.UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fillMountpoints makes the directories (0755) and files (0644, empty) under root, with modes
// set explicitly (the umask must not decide what a container sees), then gives the directories
// of attrs theirs, last: making what is in them changes their times.
func fillMountpoints(root string, dirs, files []string, attrs map[string]DirAttr) error {
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	for _, d := range dirs {
		p := filepath.Join(root, filepath.FromSlash(d))
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o644); err != nil {
			return err
		}
	}
	for d, a := range attrs {
		p := filepath.Join(root, filepath.FromSlash(d))
		if err := os.Lchown(p, a.UID, a.GID); err != nil {
			return err
		}
		if err := os.Chmod(p, a.Mode); err != nil {
			return err
		}
		if err := os.Chtimes(p, a.ModTime, a.ModTime); err != nil {
			return err
		}
	}
	return nil
}
