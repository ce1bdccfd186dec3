//go:build !linux

package closure

import (
	"io/fs"
	"os"
	"path/filepath"
)

// rootDir joins paths to the root: walk's own resolution keeps them inside it.
type rootDir struct{ dir string }

func openRootDir(dir string) (*rootDir, error) { return &rootDir{dir: dir}, nil }

func (d *rootDir) open(p string) (*os.File, error) { return os.Open(filepath.Join(d.dir, p)) }

func (d *rootDir) lstat(p string) (fs.FileMode, string, error) {
	host := filepath.Join(d.dir, p)
	fi, err := os.Lstat(host)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return modeOf(fi), "", err
	}
	t, err := os.Readlink(host)
	return fi.Mode(), t, err
}

func modeOf(fi fs.FileInfo) fs.FileMode {
	if fi == nil {
		return 0
	}
	return fi.Mode()
}

func (d *rootDir) readDir(p string) ([]fs.DirEntry, error) {
	return os.ReadDir(filepath.Join(d.dir, p))
}
