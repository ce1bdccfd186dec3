package runspec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mountpoints is what a container's mountpoints layer holds: the directories and empty files its
// mounts go on, relative to the root, so that mounting there writes nothing in the container's
// upper directory (see store.Mountpoints). A directory the container sees without a mount over
// it (/etc, holding the network files) takes its mode, owner and time from the image's entry of
// the same name in Like.
type Mountpoints struct {
	Dirs  []string
	Files []string
	Like  map[string]fs.FileInfo
}

// The places a layer can hold mountpoints for: the default mounts' directories, whose own
// attributes nobody sees, and the network files under /etc, which is seen.
var (
	mountedDirs  = []string{"dev", "proc", "sys"}
	networkFiles = []string{"etc/hosts", "etc/hostname", "etc/resolv.conf"}
)

// MountpointsFor returns the mountpoints layer for spec's mounts over an image's layers (top
// layer first). It says no when the image has something other than a directory where the
// layer would put one (an /etc symlink, say): the layer would hide it.
func MountpointsFor(layers []string, spec *specs.Spec) (Mountpoints, bool) {
	var mp Mountpoints
	for _, d := range mountedDirs {
		if mountedAt(spec, "/"+d) {
			mp.Dirs = append(mp.Dirs, d)
		}
	}
	for _, f := range networkFiles {
		if mountedAt(spec, "/"+f) {
			mp.Files = append(mp.Files, f)
		}
	}
	if len(mp.Files) > 0 {
		mp.Dirs = append(mp.Dirs, "etc")
	}
	for _, d := range mp.Dirs {
		if _, isDir, ok := lookup(layers, d); !ok || !isDir && !absent(layers, d) {
			return Mountpoints{}, false
		}
	}
	if fi, isDir, _ := lookup(layers, "etc"); isDir && slices.Contains(mp.Dirs, "etc") {
		mp.Like = map[string]fs.FileInfo{"etc": fi}
	}
	return mp, len(mp.Dirs) > 0
}

func mountedAt(spec *specs.Spec, dest string) bool {
	return slices.ContainsFunc(spec.Mounts, func(m specs.Mount) bool { return filepath.Clean(m.Destination) == dest })
}

// lookup finds name as overlayfs would: the topmost layer that has it decides. ok is false on an
// error other than "not there".
func lookup(layers []string, name string) (fi fs.FileInfo, isDir, ok bool) {
	for _, l := range layers {
		fi, err := os.Lstat(filepath.Join(l, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, false, false
		}
		return fi, fi.IsDir(), true
	}
	return nil, false, true
}

// absent reports whether name is in no layer, or whited out (a 0/0 character device) in the
// topmost that has it.
func absent(layers []string, name string) bool {
	fi, _, _ := lookup(layers, name)
	if fi == nil {
		return true
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
}
