package build

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/flock"
)

// A step killed mid-run may leave its rootfs mounted: the mount goes, what it covers stays.
func TestRemoveStaleStepsDetachesMounts(t *testing.T) {
	work := t.TempDir()
	stale, lock, err := makeStepDir(work)
	if err != nil {
		t.Fatal(err)
	}
	flock.Unlock(lock)
	covered := t.TempDir()
	keep := filepath.Join(covered, "keep")
	writeTestFile(t, keep, 10)
	rootfs := filepath.Join(stale, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(covered, rootfs, "", unix.MS_BIND, ""); err != nil {
		t.Skipf("SKIP: bind mount: %v", err)
	}
	// Before the TempDirs go, so that a failure never deletes through the mount.
	t.Cleanup(func() { unix.Unmount(rootfs, unix.MNT_DETACH) })

	rep, err := RemoveStaleSteps(work)
	if err != nil || len(rep.Dirs) != 1 {
		t.Fatalf("removed %v: %v", rep.Dirs, err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("deleted through the mount: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale step %s: %v", stale, err)
	}
}
