package runspec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The mountpoints of every container's default mounts and network files, relative to its root.
// kiln lays them under the container's upper directory in one layer shared by all containers
// (store.Mountpoints), so mounting there writes nothing in the container's own directory.
var (
	MountpointDirs  = []string{"dev", "proc", "sys", "etc"}
	MountpointFiles = []string{"etc/hosts", "etc/hostname", "etc/resolv.conf"}
)

// MountpointsFit reports whether the mountpoints layer can go over an image's layers (top layer
// first): each of MountpointDirs must be a directory or absent in the image. A directory of the
// layer over a symlink of the image (an /etc pointing elsewhere, say) would hide the image's.
func MountpointsFit(layers []string) bool {
	for _, name := range MountpointDirs {
		if !dirOrAbsent(layers, name) {
			return false
		}
	}
	return true
}

// dirOrAbsent looks name up as overlayfs would: the topmost layer that has it decides, and a
// whiteout there means it is absent.
func dirOrAbsent(layers []string, name string) bool {
	for _, l := range layers {
		fi, err := os.Lstat(filepath.Join(l, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false
		}
		if fi.IsDir() {
			return true
		}
		st, ok := fi.Sys().(*syscall.Stat_t) // a whiteout is a 0/0 character device
		return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
	}
	return true
}
