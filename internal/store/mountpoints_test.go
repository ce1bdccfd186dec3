package store

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

func TestMountpoints(t *testing.T) {
	s := newStore(t)
	old := syscall.Umask(0o077) // the modes must not follow the umask
	defer syscall.Umask(old)
	dirs, files := []string{"dev", "etc"}, []string{"etc/hosts"}
	var wg sync.WaitGroup
	got := make([]string, 4)
	errs := make([]error, 4)
	for i := range got { // concurrent first users agree on one directory
		wg.Go(func() { got[i], errs[i] = s.Mountpoints(dirs, files) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("Mountpoints: %q, %v; first got %q", got[i], errs[i], got[0])
		}
	}
	for p, mode := range map[string]os.FileMode{"": 0o755 | os.ModeDir, "dev": 0o755 | os.ModeDir, "etc": 0o755 | os.ModeDir, "etc/hosts": 0o644} {
		fi, err := os.Lstat(filepath.Join(got[0], p))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, mode %v; want %v", p, err, fi.Mode(), mode)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(got[0]))
	if len(entries) != 1 {
		t.Errorf("%d entries beside the layer (a temporary one left?)", len(entries)-1)
	}
	other, err := s.Mountpoints([]string{"proc"}, nil)
	if err != nil || other == got[0] {
		t.Errorf("other lists gave %q (%v), the same directory as %q", other, err, got[0])
	}
}
