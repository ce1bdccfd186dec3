package build

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// treeMount is a read-only overlay of unpacked layers that no mount namespace shows: it is
// reached through its file descriptor only, and goes away with it, so a killed build leaves no
// mount behind.
type treeMount struct {
	fd  int
	dir string // /proc/self/fd/<fd>
}

// mountLayers mounts dirs (top layer first, as store.Unpack lists them) read-only.
func mountLayers(dirs []string) (*treeMount, error) {
	if len(dirs) == 0 {
		return nil, errors.New("mount: an image without layers")
	}
	if len(dirs) == 1 {
		// Without an upper layer overlayfs wants two lower ones: an empty one goes under a lone
		// layer (a plain kiln image, a stage of contents only). The overlay keeps it alive.
		empty, err := emptyDir()
		if err != nil {
			return nil, err
		}
		defer unix.Close(empty)
		dirs = []string{dirs[0], fmt.Sprintf("/proc/self/fd/%d", empty)}
	}
	fs, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mount overlay: fsopen: %w", err)
	}
	defer unix.Close(fs)
	held, err := setLowerDirs(fs, dirs)
	defer closeAll(held)
	if err != nil {
		return nil, err
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return nil, fmt.Errorf("mount overlay of %s: %w", strings.Join(dirs, ":"), err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return nil, fmt.Errorf("mount overlay: fsmount: %w", err)
	}
	return &treeMount{fd: fd, dir: fmt.Sprintf("/proc/self/fd/%d", fd)}, nil
}

// emptyDir mounts an empty read-only tmpfs that no mount namespace shows, and returns its fd.
func emptyDir() (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("mount an empty tmpfs: fsopen: %w", err)
	}
	defer unix.Close(fs)
	if err := unix.FsconfigCreate(fs); err != nil {
		return -1, fmt.Errorf("mount an empty tmpfs: %w", err)
	}
	fd, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("mount an empty tmpfs: fsmount: %w", err)
	}
	return fd, nil
}

// setLowerDirs passes the layers one by one ("lowerdir+", Linux 6.8), else as one list: fsconfig
// takes strings of up to 256 bytes, so that list names each dir by a short /proc/self/fd path, the
// files of which must stay open until the mount is made (older kernels read the list then).
func setLowerDirs(fs int, dirs []string) (held []*os.File, err error) {
	if err := unix.FsconfigSetString(fs, "lowerdir+", dirs[0]); err == nil {
		for _, d := range dirs[1:] {
			if err := unix.FsconfigSetString(fs, "lowerdir+", d); err != nil {
				return nil, fmt.Errorf("mount overlay: lowerdir+ %s: %w", d, err)
			}
		}
		return nil, nil
	}
	var fds []string
	for _, d := range dirs {
		f, err := os.OpenFile(d, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return held, fmt.Errorf("mount overlay: %w", err)
		}
		held = append(held, f)
		fds = append(fds, fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	}
	if err := unix.FsconfigSetString(fs, "lowerdir", strings.Join(fds, ":")); err != nil {
		return held, fmt.Errorf("mount overlay: lowerdir of %d layers: %w", len(dirs), err)
	}
	return held, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func (m *treeMount) close() { unix.Close(m.fd) }
