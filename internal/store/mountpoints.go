package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

// Mountpoints returns a directory holding the empty directories dirs and the empty files files
// (slash-separated paths relative to it), each directory named in like having the mode, owner
// and modification time of its entry there, made once per kiln root for each such description
// and never changed:
//
//	ROOT/layers/mountpoints/<sha256 of the description>/
//
// Laid read-only over an image's layers, it gives a container's mounts (/proc, /dev, /sys,
// /etc/hosts...) their mountpoints without the runtime creating them in the container's upper
// directory: Docker's "init layer", shared by every container instead of made for each.
func (s *Store) Mountpoints(dirs, files []string, like map[string]fs.FileInfo) (string, error) {
	parent := filepath.Join(filepath.Dir(s.layersDir()), "mountpoints")
	dir := filepath.Join(parent, mountpointsKey(dirs, files, like))
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
	if err := fillMountpoints(tmp, dirs, files, like); err != nil {
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

func mountpointsKey(dirs, files []string, like map[string]fs.FileInfo) string {
	h := sha256.New()
	fmt.Fprintf(h, "dirs %q\nfiles %q\n", dirs, files)
	for _, d := range slices.Sorted(maps.Keys(like)) {
		mode, uid, gid, mtime := attrs(like[d])
		fmt.Fprintf(h, "like %q %o %d %d %d\n", d, uint32(mode), uid, gid, mtime.UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// attrs are what Mountpoints copies of an entry: permissions with setuid, setgid and sticky
// bits, owner, modification time.
func attrs(fi fs.FileInfo) (mode fs.FileMode, uid, gid int, mtime time.Time) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky), uid, gid, fi.ModTime()
}

// fillMountpoints makes the directories (0755) and files (0644, empty) under root, with modes
// set explicitly (the umask must not decide what a container sees), then gives the directories
// of like theirs, last: making what is in them changes their times.
func fillMountpoints(root string, dirs, files []string, like map[string]fs.FileInfo) error {
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
	for d, fi := range like {
		p := filepath.Join(root, filepath.FromSlash(d))
		mode, uid, gid, mtime := attrs(fi)
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return err
		}
	}
	return nil
}
