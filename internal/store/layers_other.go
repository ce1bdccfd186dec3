//go:build !linux

package store

import (
	"io/fs"
	"path/filepath"
)

// syncFS is never reached: layer.Extract fails first outside Linux.
func syncFS(dir string) error { return nil }

// diskUsage returns the size of the files in the tree at dir.
func diskUsage(dir string) int64 {
	var total int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil {
			if fi, err := d.Info(); err == nil && fi.Mode().IsRegular() {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}
