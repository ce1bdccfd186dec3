package runspec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Entries of a fake layer: file content, or one of these markers.
const (
	mkDir      = "<dir>"
	mkWhiteout = "<whiteout>" // overlayfs form: a 0:0 character device
	mkOpaque   = "<opaque>"   // overlayfs form: a directory with trusted.overlay.opaque=y
	mkFIFO     = "<fifo>"
	symlinkTo  = "-> " // prefix: a symlink to the rest
)

// makeLayers writes each map as a layer directory and returns them top first
// (the order given). It skips the test when the overlayfs forms cannot be
// made here (they need root).
func makeLayers(t *testing.T, layers ...map[string]string) []string {
	t.Helper()
	root := t.TempDir()
	var dirs []string
	for i, files := range layers {
		dir := filepath.Join(root, "layer", string(rune('a'+i)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		slices.Sort(names) // parents first
		for _, name := range names {
			makeEntry(t, filepath.Join(dir, name), files[name])
		}
		dirs = append(dirs, dir)
	}
	return dirs
}

func makeEntry(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	switch {
	case content == mkDir:
		err = os.MkdirAll(p, 0o755)
	case content == mkOpaque:
		if err = os.MkdirAll(p, 0o755); err == nil {
			if err = setOpaqueXattr(p); err != nil {
				t.Skipf("setxattr %s: %v (needs root and trusted xattrs)", overlayOpaque, err)
			}
		}
	case content == mkWhiteout:
		if err = mknodWhiteout(p); err != nil {
			t.Skipf("mknod whiteout: %v (needs root)", err)
		}
	case content == mkFIFO:
		if err = mkfifo(p); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	case strings.HasPrefix(content, symlinkTo):
		err = os.Symlink(strings.TrimPrefix(content, symlinkTo), p)
	default:
		err = os.WriteFile(p, []byte(content), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
+::::::
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
app2:x:1000:1001::/home/app2:/bin/sh
nohome:x:1002:1002:::/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`

const testGroup = `root:x:0:root
wheel:x:10:root,app
staff:x:50: app , daemon
app:x:1000:
users:x:100:app,app2
dup:x:10:app
`

func baseLayer() map[string]string {
	return map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup, "bin/sh": "#!"}
}

func TestResolveUser(t *testing.T) {
	dirs := makeLayers(t, baseLayer())
	tests := []struct {
		spec string
		uid  uint32
		gid  uint32
		add  []uint32
		home string
	}{
		{"", 0, 0, []uint32{0, 10}, "/root"},
		{"root", 0, 0, []uint32{0, 10}, "/root"},
		{"0", 0, 0, []uint32{0, 10}, "/root"},
		{"app", 1000, 1000, []uint32{1000, 10, 50, 100}, "/home/app"},
		{"1000", 1000, 1000, []uint32{1000, 10, 50, 100}, "/home/app"}, // first entry with the uid
		{"app2", 1000, 1001, []uint32{1001, 100}, "/home/app2"},
		{"app:staff", 1000, 50, []uint32{50}, "/home/app"},
		{"app:50", 1000, 50, []uint32{50}, "/home/app"},
		{"app:4242", 1000, 4242, []uint32{4242}, "/home/app"},
		{"1000:1000", 1000, 1000, []uint32{1000}, "/home/app"},
		{"4242", 4242, 0, []uint32{0}, "/"},
		{"4242:4242", 4242, 4242, []uint32{4242}, "/"},
		{"4242:staff", 4242, 50, []uint32{50}, "/"},
		{"nohome", 1002, 1002, []uint32{1002}, "/"},
		{"nobody", 65534, 65534, []uint32{65534}, "/nonexistent"},
		{"daemon", 1, 1, []uint32{1, 50}, "/usr/sbin"},
		{"app:staff:ignored", 1000, 50, []uint32{50}, "/home/app"},
	}
	for _, tt := range tests {
		u, home, err := ResolveUser(tt.spec, dirs)
		if err != nil {
			t.Errorf("ResolveUser(%q): %v", tt.spec, err)
			continue
		}
		want := specs.User{UID: tt.uid, GID: tt.gid, AdditionalGids: tt.add}
		if u.UID != want.UID || u.GID != want.GID || !slices.Equal(u.AdditionalGids, want.AdditionalGids) || home != tt.home {
			t.Errorf("ResolveUser(%q) = %+v, %q; want %+v, %q", tt.spec, u, home, want, tt.home)
		}
	}
}

func TestResolveUserErrors(t *testing.T) {
	dirs := makeLayers(t, baseLayer())
	tests := []struct {
		spec string
		want string
		is   error
	}{
		{"ghost", "unable to find user ghost: no matching entries in passwd file", ErrNoPasswdEntries},
		{"ghost:root", "unable to find user ghost: no matching entries in passwd file", ErrNoPasswdEntries},
		{"app:ghosts", "unable to find group ghosts: no matching entries in group file", ErrNoGroupEntries},
		{"-1", "uids and gids must be in range 0-2147483647", ErrIDRange},
		{"2147483648", "uids and gids must be in range 0-2147483647", ErrIDRange},
		{"app:-5", "uids and gids must be in range 0-2147483647", ErrIDRange},
	}
	for _, tt := range tests {
		_, _, err := ResolveUser(tt.spec, dirs)
		if err == nil || err.Error() != tt.want || !errors.Is(err, tt.is) {
			t.Errorf("ResolveUser(%q) err = %v, want %q", tt.spec, err, tt.want)
		}
	}
}

// whiteout: the top layer deletes /etc/passwd (tar form, then overlayfs
// form): the lower one is hidden, names no longer resolve, numbers do.
func TestResolveUserWhiteout(t *testing.T) {
	forms := map[string]map[string]string{
		"tar form":     {"etc/.wh.passwd": ""},
		"overlay form": {"etc/passwd": mkWhiteout},
		"parent":       {".wh.etc": ""},
		"parent dev":   {"etc": mkWhiteout},
	}
	for name, top := range forms {
		t.Run(name, func(t *testing.T) {
			dirs := makeLayers(t, top, baseLayer())
			if _, _, err := ResolveUser("app", dirs); !errors.Is(err, ErrNoPasswdEntries) {
				t.Errorf("app after whiteout: err = %v, want %v", err, ErrNoPasswdEntries)
			}
			u, home, err := ResolveUser("0", dirs)
			if err != nil || u.UID != 0 || u.GID != 0 || home != "/" {
				t.Errorf("0 after whiteout = %+v, %q, %v; want uid 0, home /", u, home, err)
			}
			// Without the whiteout layer the lower passwd is there.
			if _, _, err := ResolveUser("app", dirs[1:]); err != nil {
				t.Errorf("app without the top layer: %v", err)
			}
		})
	}
}

func TestResolveUserLayers(t *testing.T) {
	newPasswd := "root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n"
	tests := []struct {
		name   string
		layers []map[string]string
		spec   string
		uid    uint32
		home   string
		err    error
	}{
		{"upper file replaces lower", []map[string]string{{"etc/passwd": newPasswd}, baseLayer()}, "web", 33, "/var/www", nil},
		{"upper file hides lower entries", []map[string]string{{"etc/passwd": newPasswd}, baseLayer()}, "app", 0, "", ErrNoPasswdEntries},
		{"lower file seen through an upper dir", []map[string]string{{"etc/hostname": "x"}, baseLayer()}, "app", 1000, "/home/app", nil},
		{"a whiteout hides only lower layers", []map[string]string{{"etc/.wh.passwd": "", "etc/passwd": newPasswd}, baseLayer()}, "web", 33, "/var/www", nil},
		{"whiteout in the middle", []map[string]string{{"etc/hostname": "x"}, {"etc/.wh.passwd": ""}, baseLayer()}, "app", 0, "", ErrNoPasswdEntries},
		{"re-created above a whiteout", []map[string]string{{"etc/passwd": newPasswd}, {"etc/.wh.passwd": ""}, baseLayer()}, "web", 33, "/var/www", nil},
		{"opaque dir (tar form) hides lower", []map[string]string{{"etc/.wh..wh..opq": "", "etc/group": "g:x:1:\n"}, baseLayer()}, "app", 0, "", ErrNoPasswdEntries},
		{"opaque dir (overlay form) hides lower", []map[string]string{{"etc": mkOpaque, "etc/group": "g:x:1:\n"}, baseLayer()}, "app", 0, "", ErrNoPasswdEntries},
		{"opaque dir keeps its own files", []map[string]string{{"etc": mkOpaque, "etc/passwd": newPasswd}, baseLayer()}, "web", 33, "/var/www", nil},
		{"opaque in the middle hides only below", []map[string]string{{"etc/passwd": newPasswd}, {"etc": mkOpaque}, baseLayer()}, "web", 33, "/var/www", nil},
		{"a file over a dir hides it", []map[string]string{{"etc": "not a dir"}, baseLayer()}, "app", 0, "", ErrNoPasswdEntries},
		{"a dir over a file over a dir", []map[string]string{{"etc/group": ""}, {"etc": "file"}, baseLayer()}, "app", 0, "", ErrNoPasswdEntries},
		{"relative symlink to another layer", []map[string]string{{"etc/passwd": symlinkTo + "../usr/lib/passwd"}, {"usr/lib/passwd": newPasswd}, baseLayer()}, "web", 33, "/var/www", nil},
		{"absolute symlink", []map[string]string{{"etc/passwd": symlinkTo + "/usr/lib/passwd", "usr/lib/passwd": newPasswd}, baseLayer()}, "web", 33, "/var/www", nil},
		{"symlinked /etc", []map[string]string{{"etc": symlinkTo + "private/etc", "private/etc/passwd": newPasswd}}, "web", 33, "/var/www", nil},
		{"symlink chain with ..", []map[string]string{{"etc/passwd": symlinkTo + "../a/../b/p", "a": mkDir, "b/p": symlinkTo + "/c/./p", "c/p": newPasswd}}, "web", 33, "/var/www", nil},
		{"symlink through a missing dir", []map[string]string{{"etc/passwd": symlinkTo + "../nodir/../b/p", "b/p": newPasswd}}, "web", 0, "", ErrNoPasswdEntries},
		{"dangling symlink", []map[string]string{{"etc/passwd": symlinkTo + "/nowhere"}}, "app", 0, "", ErrNoPasswdEntries},
		{"no /etc at all", []map[string]string{{"bin/sh": "x"}}, "1234", 1234, "/", nil},
		{"no layers", nil, "", 0, "/", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dirs := makeLayers(t, tt.layers...)
			u, home, err := ResolveUser(tt.spec, dirs)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err == nil && (u.UID != tt.uid || home != tt.home) {
				t.Errorf("= uid %d home %q, want %d %q", u.UID, home, tt.uid, tt.home)
			}
		})
	}
}

// A symlink in the image never leads out of it: the host's file next to the
// layers is not read, however many ".." or absolute paths it takes.
func TestResolveUserSymlinkStaysInImage(t *testing.T) {
	dirs := makeLayers(t,
		map[string]string{"etc/passwd": symlinkTo + "../../../../../../host/passwd"},
		map[string]string{"etc/group": symlinkTo + "/../../../host/group"},
	)
	host := filepath.Join(filepath.Dir(filepath.Dir(dirs[0])), "host")
	makeEntry(t, filepath.Join(host, "passwd"), "evil:x:0:0::/:/bin/sh\n")
	makeEntry(t, filepath.Join(host, "group"), "evil:x:0:\n")
	// The host files are at /host/... relative to the layers' parent, and
	// also right above "..": neither is reachable.
	makeEntry(t, filepath.Join(dirs[0], "..", "host", "passwd"), "evil:x:0:0::/:/bin/sh\n")
	if _, _, err := ResolveUser("evil", dirs); !errors.Is(err, ErrNoPasswdEntries) {
		t.Errorf("evil resolved through a symlink out of the image: err = %v", err)
	}
	if _, _, err := ResolveUser("0:evil", dirs); !errors.Is(err, ErrNoGroupEntries) {
		t.Errorf("group evil resolved through a symlink out of the image: err = %v", err)
	}
	// Inside the image, the same target is /host/passwd.
	dirs = append(dirs, makeLayers(t, map[string]string{"host/passwd": "inside:x:7:7::/in:/bin/sh\n"})...)
	if u, home, err := ResolveUser("inside", dirs); err != nil || u.UID != 7 || home != "/in" {
		t.Errorf("inside = %+v %q %v", u, home, err)
	}
}

func TestResolveUserOddFiles(t *testing.T) {
	tests := []struct {
		name  string
		layer map[string]string
		want  string
	}{
		{"fifo", map[string]string{"etc/passwd": mkFIFO}, "not a regular file"},
		{"directory", map[string]string{"etc/passwd": mkDir}, "a directory"},
		{"symlink loop", map[string]string{"etc/passwd": symlinkTo + "passwd"}, "too many levels of symbolic links"},
		{"file as a parent", map[string]string{"etc": "x"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dirs := makeLayers(t, tt.layer)
			done := make(chan error, 1)
			go func() { _, _, err := ResolveUser("app", dirs); done <- err }()
			select {
			case err := <-done:
				if tt.want == "" {
					if !errors.Is(err, ErrNoPasswdEntries) {
						t.Errorf("err = %v, want %v", err, ErrNoPasswdEntries)
					}
				} else if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want %q", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ResolveUser blocked")
			}
		})
	}
}

func TestLayerViewTooLarge(t *testing.T) {
	dirs := makeLayers(t, map[string]string{"etc/passwd": "x"})
	if err := os.Truncate(filepath.Join(dirs[0], "etc/passwd"), maxImageFile+1); err != nil {
		t.Fatal(err)
	}
	_, err := layerView(dirs).readFile("/etc/passwd")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
}

// A layer directory may be given through a symlink (a magic link such as
// /proc/PID/root too; `kiln exec -u` reads a running container's root with
// ResolveUserInRoot instead).
func TestResolveUserLayerDirSymlink(t *testing.T) {
	dirs := makeLayers(t, baseLayer())
	link := filepath.Join(t.TempDir(), "root")
	if err := os.Symlink(dirs[0], link); err != nil {
		t.Fatal(err)
	}
	if u, home, err := ResolveUser("app", []string{link}); err != nil || u.UID != 1000 || home != "/home/app" {
		t.Errorf("through a symlinked layer dir: %+v %q %v", u, home, err)
	}
	self := fmt.Sprintf("/proc/%d/root", os.Getpid())
	if _, err := os.Stat(self + "/etc/passwd"); err != nil {
		t.Skipf("no /etc/passwd on this host: %v", err)
	}
	if u, home, err := ResolveUser("root", []string{self}); err != nil || u.UID != 0 || home == "/" {
		t.Errorf("root in the live root %s: %+v %q %v", self, u, home, err)
	}
}
