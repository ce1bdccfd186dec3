// Package atomicfile replaces small files so that a reader, or a crash, sees the old content or
// the new, never a mix: write a temporary file, rename it over the target. It owns nothing else.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
)

// Durability says what must reach the disk before Write returns.
type Durability int

const (
	// NoSync: atomic for readers; after a power loss the file may be old, new or empty.
	NoSync Durability = iota
	// SyncFile: the content is on disk before the rename, so the file is old or new, never empty.
	SyncFile
	// SyncAll: SyncFile, and the rename itself is on disk when Write returns.
	SyncAll
)

// Write replaces path with data. The temporary file is made in tmpDir, or beside path when tmpDir
// is ""; it must be on the same filesystem.
func Write(path string, data []byte, perm fs.FileMode, d Durability, tmpDir string) error {
	dir := filepath.Dir(path)
	if tmpDir == "" {
		tmpDir = dir
	}
	f, err := os.CreateTemp(tmpDir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	err = fill(f, data, perm, d)
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	if d == SyncAll {
		return SyncDir(dir)
	}
	return nil
}

func fill(f *os.File, data []byte, perm fs.FileMode, d Durability) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && d >= SyncFile {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir makes the entries of dir (renames, creations) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}
