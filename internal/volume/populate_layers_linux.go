package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// viewDir is where PopulateFromLayers mounts its overlay, briefly, inside
// ROOT/volumes/NAME: _populate.view/mnt over the layers and the empty
// _populate.view/bottom.
const viewDir = "_populate.view"

// PopulateFromLayers is PopulateIn on the image made of layers (unpacked
// layer dirs, top first, as store.Unpack returns them), seen as a container
// sees it: merged, whiteouts and opaque dirs applied. Copying from the
// topmost layer that has path instead would miss what lower layers add
// there and copy whiteouts as devices.
//
// It mounts a read-only overlay of the layers in a private mount namespace
// of its own OS thread, opens path in it, and detaches the mount at once (the
// open handle keeps it alive for the copy). The thread exits afterwards, so
// no mount is ever visible on the host and none can leak. Needs
// CAP_SYS_ADMIN. Like the runtime's overlay, it is bound by the kernel's
// one-page limit on mount options (about 40 layers at /var/lib/kiln).
func (v *Volume) PopulateFromLayers(layers []string, path string) error {
	if len(layers) == 0 {
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, and the namespace with it, ends with
		// this goroutine.
		runtime.LockOSThread()
		errc <- v.populateFromLayers(layers, path)
	}()
	return <-errc
}

func (v *Volume) populateFromLayers(layers []string, path string) error {
	from := path + " in the image's layers"
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("populate volume %s: unshare mount namespace: %w", v.Name, err)
	}
	// Nothing mounted here may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("populate volume %s: make / private: %w", v.Name, err)
	}
	return v.populate(from, func() (*os.File, error) {
		return mountView(filepath.Join(filepath.Dir(v.Dir), viewDir), layers, path)
	})
}

// mountView mounts the read-only overlay of layers in view (under the
// volume's flock), opens path in it, and takes it all down again but for
// the returned handle.
func mountView(view string, layers []string, path string) (*os.File, error) {
	mnt, bottom := filepath.Join(view, "mnt"), filepath.Join(view, "bottom")
	removeView(view) // left by a killed process: empty dirs
	for _, d := range []string{view, mnt, bottom} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	defer removeView(view)
	// The empty bottom layer: overlayfs wants two lower dirs without an
	// upper one, and it hides the whiteouts of the lowest real layer.
	lower := strings.Join(append(layers[:len(layers):len(layers)], bottom), ":")
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, "lowerdir="+lower); err != nil {
		return nil, &os.PathError{Op: "mount overlay lowerdir=" + lower, Path: mnt, Err: err}
	}
	f, err := openDirInRoot(mnt, path)
	if uerr := unix.Unmount(mnt, unix.MNT_DETACH); uerr != nil && err == nil {
		f.Close()
		return nil, &os.PathError{Op: "umount", Path: mnt, Err: uerr}
	}
	return f, err
}

// removeView removes the view's dirs, never recursively: they are empty
// unless something is mounted on them, and that must stay untouched.
func removeView(view string) {
	for _, d := range []string{filepath.Join(view, "mnt"), filepath.Join(view, "bottom"), view} {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return
		}
	}
}
