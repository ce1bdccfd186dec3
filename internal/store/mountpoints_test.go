package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMountpoints(t *testing.T) {
	s := newStore(t)
	old := syscall.Umask(0o077) // the modes must not follow the umask
	defer syscall.Umask(old)
	dirs, files := []string{"dev", "etc"}, []string{"etc/hosts"}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	attrs := map[string]fs.FileInfo{"etc": dirLike(t, 0o777|os.ModeSticky, 1000, 1001, mtime)}
	var wg sync.WaitGroup
	got := make([]string, 4)
	errs := make([]error, 4)
	for i := range got { // concurrent first users agree on one directory
		wg.Go(func() { got[i], errs[i] = s.Mountpoints(dirs, files, attrs) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("Mountpoints: %q, %v; first got %q", got[i], errs[i], got[0])
		}
	}
	for p, mode := range map[string]os.FileMode{"": 0o755 | os.ModeDir, "dev": 0o755 | os.ModeDir, "etc": 0o777 | os.ModeDir | os.ModeSticky, "etc/hosts": 0o644} {
		fi, err := os.Lstat(filepath.Join(got[0], p))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, mode %v; want %v", p, err, fi.Mode(), mode)
		}
	}
	fi, _ := os.Lstat(filepath.Join(got[0], "etc"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1000 || st.Gid != 1001 || !fi.ModTime().Equal(mtime) {
		t.Errorf("etc: owner %d:%d, time %v; want 1000:1001, %v", st.Uid, st.Gid, fi.ModTime(), mtime)
	}
	entries, _ := os.ReadDir(filepath.Dir(got[0]))
	if len(entries) != 1 {
		t.Errorf("%d entries beside the layer (a temporary one left?)", len(entries)-1)
	}
	other, err := s.Mountpoints(dirs, files, map[string]fs.FileInfo{"etc": dirLike(t, 0o755, 0, 0, mtime)})
	if err != nil || other == got[0] {
		t.Errorf("other attributes gave %q (%v), the same directory as %q", other, err, got[0])
	}
}

// dirLike is a directory with the given attributes, as an image's entry would be.
func dirLike(t *testing.T, mode os.FileMode, uid, gid int, mtime time.Time) fs.FileInfo {
	t.Helper()
	d := filepath.Join(t.TempDir(), "etc")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(d, uid, gid); err != nil {
		t.Skip("SKIP: cannot chown here:", err)
	}
	if err := os.Chtimes(d, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(d)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
