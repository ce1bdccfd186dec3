package closure

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
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
