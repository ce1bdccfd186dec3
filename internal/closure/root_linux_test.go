package closure

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Opening a path under the root resolves its symlinks inside the root, in the kernel: an absolute
// target and a ".." above the root both stay in it, even for a path walk never checked.
func TestRootDirResolvesInRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "inside.txt"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"abs": "/inside.txt", "up": "../../../../inside.txt"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := openRootDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if d.fd < 0 {
		t.Skip("SKIP: no openat2 (Linux 5.6+): paths are joined to the root")
	}
	for _, p := range []string{"/abs", "/up"} {
		f, err := d.open(p)
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != "in" {
			t.Errorf("%s read %q, want the root's inside.txt", p, b)
		}
	}
	mode, target, err := d.lstat("/abs")
	if err != nil || mode&fs.ModeSymlink == 0 || target != "/inside.txt" {
		t.Errorf("lstat /abs: %v %q %v", mode, target, err)
	}
	if mode, _, err := d.lstat("/"); err != nil || !mode.IsDir() {
		t.Errorf("lstat /: %v %v", mode, err)
	}
	if _, _, err := d.lstat("/missing"); !os.IsNotExist(err) {
		t.Errorf("lstat /missing: %v, want not exist", err)
	}
}

// A fifo where a program, a library or ld.so.cache is looked for (a stage's step can make one)
// is an error naming it, not a build blocked for good on its open or read.
func TestResolveRejectsFifo(t *testing.T) {
	for _, fifo := range []string{"/bin/app", "/etc/ld.so.cache"} {
		root := t.TempDir()
		if fifo != "/bin/app" {
			if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, "bin/app"), []byte("#!/bin/app\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, fifo)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(filepath.Join(root, fifo), 0o755); err != nil {
			t.Fatal(err)
		}
		r, err := NewResolver(root)
		if err == nil {
			_, err = r.Resolve("/bin/app")
		}
		if !errors.Is(err, errNotRegular) || !strings.Contains(err.Error(), fifo) {
			t.Errorf("%s a fifo: %v, want an error naming it, not a regular file", fifo, err)
		}
	}
}
