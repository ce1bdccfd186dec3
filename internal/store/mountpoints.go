package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Mountpoints returns a directory holding the empty directories dirs and the empty files files
// (slash-separated paths relative to it), made once per kiln root and never changed:
//
//	ROOT/layers/mountpoints/<sha256 of the lists>/
//
// Laid read-only over an image's layers, it gives a container's mounts (/proc, /dev, /sys,
// /etc/hosts...) their mountpoints without the runtime creating them in the container's upper
// directory: Docker's "init layer", shared by every container instead of made for each.
func (s *Store) Mountpoints(dirs, files []string) (string, error) {
	sum := sha256.Sum256([]byte(strings.Join(dirs, "\n") + "\x00" + strings.Join(files, "\n")))
	parent := filepath.Join(filepath.Dir(s.layersDir()), "mountpoints")
	dir := filepath.Join(parent, hex.EncodeToString(sum[:]))
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
	if err := fillMountpoints(tmp, dirs, files); err != nil {
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

// fillMountpoints makes the directories (0755) and files (0644, empty) under root, with modes
// set explicitly: the umask must not decide what a container sees.
func fillMountpoints(root string, dirs, files []string) error {
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
	return nil
}
