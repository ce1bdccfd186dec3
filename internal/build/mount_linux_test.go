package build

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// mountLayers shows unpacked layers as one read-only tree, whiteouts applied, reachable only
// through its descriptor.
func TestMountLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: mounting overlayfs needs root")
	}
	lower, upper := t.TempDir(), t.TempDir()
	for p, data := range map[string]string{"lower/keep": "k", "lower/gone": "g", "upper/new": "n"} {
		dir := lower
		if filepath.Dir(p) == "upper" {
			dir = upper
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(p)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0); err != nil { // a whiteout
		t.Fatal(err)
	}
	m, err := mountLayers([]string{upper, lower})
	if err != nil {
		t.Skipf("SKIP: overlayfs through fsopen unavailable: %v", err)
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "keep" || names[1] != "new" {
		t.Errorf("merged tree has %v, want [keep new]", names)
	}
	if err := os.WriteFile(filepath.Join(m.dir, "x"), nil, 0o644); err == nil {
		t.Error("the tree is writable")
	}
	m.close()
	if _, err := os.Stat(m.dir); err == nil {
		t.Error("the tree is still reachable after close")
	}
}

// An image of one layer (a plain kiln image, a stage of contents only) mounts too: overlayfs
// refuses a lone lower layer without an upper one.
func TestMountOneLayer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: mounting overlayfs needs root")
	}
	only := t.TempDir()
	if err := os.WriteFile(filepath.Join(only, "f"), []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := mountLayers([]string{only})
	if err != nil {
		t.Fatalf("mount one layer: %v", err)
	}
	defer m.close()
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "f" {
		t.Errorf("tree of one layer has %v, want [f]", entries)
	}
	if b, err := os.ReadFile(filepath.Join(m.dir, "f")); err != nil || string(b) != "one" {
		t.Errorf("f: %q, %v", b, err)
	}
}
