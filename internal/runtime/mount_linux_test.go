package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestOverlayManyLayers mounts an overlay of more lower directories than fit in mount(2)'s
// one page of options when named by path.
func TestOverlayManyLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: mounting an overlay needs root")
	}
	base := t.TempDir()
	const n = 120
	var lowers []string
	for i := range n {
		d := filepath.Join(base, fmt.Sprintf("sha256-%064x", i), "fs")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("layer%d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, d)
	}
	for _, d := range []string{"upper", "work", "root"} {
		os.Mkdir(filepath.Join(base, d), 0o755)
	}
	opts := []string{"lowerdir=" + strings.Join(lowers, ":"), "upperdir=" + filepath.Join(base, "upper"), "workdir=" + filepath.Join(base, "work")}
	if len(strings.Join(opts, ",")) <= maxMountData {
		t.Fatalf("the test's options are only %d bytes: not enough layers", len(strings.Join(opts, ",")))
	}
	done := make(chan error)
	go func() { // a thread of its own, in a mount namespace of its own, that dies with it
		goruntime.LockOSThread()
		done <- mountAndList(base, opts, n)
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func mountAndList(base string, opts []string, n int) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return err
	}
	root := filepath.Join(base, "root")
	if err := mountRoot(root, &specs.Mount{Type: "overlay", Source: "overlay", Options: opts}); err != nil {
		return err
	}
	defer unix.Unmount(root, unix.MNT_DETACH)
	names, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	if len(names) != n {
		return fmt.Errorf("the overlay shows %d files, want one from each of %d layers", len(names), n)
	}
	return nil
}
