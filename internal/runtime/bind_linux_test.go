package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestBindMountAttributes binds, as kiln run -v SRC:DST:ro does (rbind, ro, rprivate), a
// directory with a nosuid tmpfs under it and a file, into a container root: with open_tree and
// mount_setattr (Linux 5.12+) and with the mount and remount kiln falls back to before, which,
// as Docker's, leaves the submounts as they were.
func TestBindMountAttributes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: bind mounts need root")
	}
	base := t.TempDir()
	done := make(chan error)
	go func() { // a thread of its own, in a mount namespace of its own, that dies with it
		goruntime.LockOSThread()
		done <- bindAttributes(base)
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func bindAttributes(base string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return err
	}
	src, root := filepath.Join(base, "src"), filepath.Join(base, "root")
	for _, d := range []string{filepath.Join(src, "sub"), root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(src, "file"), []byte("content"), 0o644); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", filepath.Join(src, "sub"), "tmpfs", unix.MS_NOSUID, "size=64k"); err != nil {
		return err
	}
	opts := []string{"rbind", "ro", "rprivate"}
	if err := mountAll(root, []specs.Mount{
		{Destination: "/new", Type: "bind", Source: src, Options: opts},
		{Destination: "/etc/file", Type: "bind", Source: filepath.Join(src, "file"), Options: opts},
	}); err != nil {
		return err
	}
	target, err := makeTarget(root, specs.Mount{Destination: "/old", Source: src}, true)
	if err != nil {
		return err
	}
	err = bindRemount(root, "/old", src, target, unix.MS_BIND|unix.MS_REC|unix.MS_RDONLY)
	target.Close()
	if err != nil {
		return fmt.Errorf("bindRemount: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/file")); err != nil || string(b) != "content" {
		return fmt.Errorf("the bound file reads %q, %v", b, err)
	}
	for _, p := range []string{"new", "new/sub", "old", "etc/file"} {
		if err := checkFlags(filepath.Join(root, p), unix.ST_RDONLY); err != nil {
			return err
		}
	}
	// The flags of the mount the source is on stay, whichever way the bind was made.
	for _, p := range []string{"new/sub", "old/sub"} {
		if err := checkFlags(filepath.Join(root, p), unix.ST_NOSUID); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(root, "new/sub/x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		return fmt.Errorf("write under a submount of a read-only bind: %v, want EROFS", err)
	}
	return nil
}

func checkFlags(p string, want int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return err
	}
	if int64(st.Flags)&want != want {
		return fmt.Errorf("%s: mount flags %#x lack %#x", p, st.Flags, want)
	}
	return nil
}
