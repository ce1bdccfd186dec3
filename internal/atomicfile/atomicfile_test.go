package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteReplaces(t *testing.T) {
	for _, d := range []Durability{NoSync, SyncFile, SyncAll} {
		dir := t.TempDir()
		p := filepath.Join(dir, "f.json")
		if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := Write(p, []byte("new"), 0o640, d, ""); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		fi, _ := os.Stat(p)
		if string(b) != "new" || fi.Mode().Perm() != 0o640 {
			t.Errorf("durability %d: content %q mode %v", d, b, fi.Mode())
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("durability %d: temporary files left: %v", d, entries)
		}
	}
}

func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("old"), 0o644)
	// A temporary directory on no filesystem at all: nothing may change.
	if err := Write(p, []byte("new"), 0o644, SyncAll, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Write into a missing tmpDir succeeded")
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("content %q after a failed write", b)
	}
}
