package runspec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const hostPasswd = "evil:x:0:0::/host:/bin/sh\n"

// hostDir is a directory outside any test root holding a passwd with user
// evil: reading it from a root is an escape.
func hostDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	makeEntry(t, filepath.Join(dir, "passwd"), hostPasswd)
	makeEntry(t, filepath.Join(dir, "group"), "evil:x:0:\n")
	return dir
}

func TestResolveUserInRoot(t *testing.T) {
	root := makeLayers(t, baseLayer())[0]
	if u, home, err := ResolveUserInRoot("app", root); err != nil || u.UID != 1000 || len(u.AdditionalGids) != 4 || home != "/home/app" {
		t.Errorf("app = %+v %q %v", u, home, err)
	}
	self := fmt.Sprintf("/proc/%d/root", os.Getpid())
	if _, err := os.Stat(self + "/etc/passwd"); err != nil {
		t.Skipf("no /etc/passwd on this host: %v", err)
	}
	if u, home, err := ResolveUserInRoot("root", self); err != nil || u.UID != 0 || home == "/" {
		t.Errorf("root in the live root %s: %+v %q %v", self, u, home, err)
	}
}

// Symlinks resolve inside the root, whatever their target says.
func TestResolveUserInRootSymlinks(t *testing.T) {
	host := hostDir(t)
	inside := "inside:x:7:7::/in:/bin/sh\n"
	tests := []struct {
		name string
		root map[string]string
		spec string
		err  error
	}{
		{"absolute /etc to a host dir", map[string]string{"etc": symlinkTo + host}, "evil", ErrNoPasswdEntries},
		{"climbing out with ..", map[string]string{"etc/passwd": symlinkTo + "../../../../../.." + host + "/passwd"}, "evil", ErrNoPasswdEntries},
		{"the same path inside", map[string]string{"etc": symlinkTo + host, host[1:] + "/passwd": inside}, "inside", nil},
		{"file as a parent", map[string]string{"etc": "x"}, "1234", nil},
		{"no /etc", map[string]string{"bin/sh": "x"}, "evil", ErrNoPasswdEntries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := makeLayers(t, tt.root)[0]
			if _, _, err := ResolveUserInRoot(tt.spec, root); !errors.Is(err, tt.err) {
				t.Errorf("ResolveUserInRoot(%q) err = %v, want %v", tt.spec, err, tt.err)
			}
		})
	}
}

// A running container swaps /etc for a symlink to a host directory and back,
// as fast as it can, while kiln reads its passwd: the host's is never read.
// (Checking the path, then opening it, read the host's in ~20% of tries.)
func TestResolveUserInRootSwapped(t *testing.T) {
	root := makeLayers(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"})[0]
	if err := os.Symlink(hostDir(t), filepath.Join(root, "swap")); err != nil {
		t.Fatal(err)
	}
	etc, swap := filepath.Join(root, "etc"), filepath.Join(root, "swap")
	if err := unix.Renameat2(unix.AT_FDCWD, etc, unix.AT_FDCWD, swap, unix.RENAME_EXCHANGE); err != nil {
		t.Skipf("renameat2 RENAME_EXCHANGE: %v", err)
	}
	var swaps atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			unix.Renameat2(unix.AT_FDCWD, etc, unix.AT_FDCWD, swap, unix.RENAME_EXCHANGE)
			swaps.Add(1)
		}
	}()
	defer func() { close(stop); <-done }()
	end := time.Now().Add(2 * time.Second)
	for i := 0; i < 2000 && time.Now().Before(end); i++ {
		// Failing is fine (the root changes under the lookup); finding evil is not.
		if u, home, err := ResolveUserInRoot("evil", root); err == nil {
			t.Fatalf("try %d: the host's passwd was read: %+v home %q", i, u, home)
		}
	}
	if swaps.Load() < 100 {
		t.Skipf("only %d swaps happened: no race to test", swaps.Load())
	}
}

func TestResolveUserInRootOddFiles(t *testing.T) {
	tests := []struct {
		name  string
		entry string
		want  string
	}{
		{"fifo", mkFIFO, "not a regular file"},
		{"device", mkWhiteout, "not a regular file"}, // a character device, never opened
		{"directory", mkDir, "a directory"},
		{"symlink loop", symlinkTo + "passwd", "too many levels of symbolic links"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := makeLayers(t, map[string]string{"etc/passwd": tt.entry})[0]
			done := make(chan error, 1)
			go func() { _, _, err := ResolveUserInRoot("app", root); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want %q", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ResolveUserInRoot blocked")
			}
		})
	}
}

func TestResolveUserInRootMissing(t *testing.T) {
	_, _, err := ResolveUserInRoot("app", filepath.Join(t.TempDir(), "gone"))
	if err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("err = %v, want one naming the root", err)
	}
}
