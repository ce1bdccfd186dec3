package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("extracting owners, devices and trusted xattrs needs root")
	}
}

func extractTar(t *testing.T, data []byte) (string, error) {
	t.Helper()
	dir := t.TempDir()
	return dir, Extract(context.Background(), bytes.NewReader(data), dir)
}

func lstat(t *testing.T, p string) (fs.FileInfo, *syscall.Stat_t) {
	t.Helper()
	info, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return info, info.Sys().(*syscall.Stat_t)
}

func TestExtractWriteOutput(t *testing.T) {
	requireRoot(t)
	blob, _ := writeLayer(t, sampleEntries(t), epoch)
	rc, err := Decompress(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Extract(context.Background(), rc, dir); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		path     string
		mode     fs.FileMode
		uid, gid uint32
		data     string
	}{
		{"tmp", fs.ModeDir | fs.ModeSticky | 0o777, 0, 0, ""},
		{"usr", fs.ModeDir | 0o755, 0, 0, ""},
		{"home/app", fs.ModeDir | 0o750, 1000, 1001, ""},
		{"home/app/.profile", 0o644, 1000, 1001, "export A=1\n"},
		{"usr/bin/su", fs.ModeSetuid | 0o755, 0, 0, "setuid"},
		{"usr/lib/libx.so.1", 0o640, 0, 0, ""},
		{"etc/empty", 0o600, 0, 0, ""},
		{"lib", fs.ModeSymlink | 0o777, 0, 0, ""},
	} {
		info, st := lstat(t, filepath.Join(dir, w.path))
		if info.Mode() != w.mode || st.Uid != w.uid || st.Gid != w.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", w.path, info.Mode(), st.Uid, st.Gid, w.mode, w.uid, w.gid)
		}
		if !info.ModTime().Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", w.path, info.ModTime(), epoch)
		}
		if w.data != "" {
			if got, _ := os.ReadFile(filepath.Join(dir, w.path)); string(got) != w.data {
				t.Errorf("%s: content %q, want %q", w.path, got, w.data)
			}
		}
	}
	if target, _ := os.Readlink(filepath.Join(dir, "lib")); target != "usr/lib" {
		t.Errorf("lib -> %q, want usr/lib", target)
	}
}

func TestExtractSpecialEntries(t *testing.T) {
	requireRoot(t)
	old := time.Unix(1000000000, 0)
	layer := buildTar(t,
		tarFile{&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: old}, ""},
		tarFile{&tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o711, ModTime: old}, ""},
		tarFile{&tar.Header{Name: "a/f", Typeflag: tar.TypeReg, Mode: 0o2755, Uid: 7, Gid: 8,
			PAXRecords: map[string]string{
				"SCHILY.xattr.user.kiln":              "v",
				"SCHILY.xattr.security.capability":    "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
				"SCHILY.xattr.trusted.overlay.opaque": "y", // forged: not restored
			}}, "data"},
		hardlinkH("a/h", "a/f"),
		tarFile{&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, ""},
		tarFile{&tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o620, Uid: 5}, ""},
		fileH(".wh.gone", ""),
		fileH("d/.wh..wh..opq", ""),
		fileH("d/kept", "k"),
		fileH("x", "same layer"),
		fileH(".wh.x", ""), // a whiteout never hides its own layer
		fileH("y/.wh.z", ""),
	)
	dir, err := extractTar(t, layer)
	if err != nil {
		t.Fatal(err)
	}
	_, f := lstat(t, filepath.Join(dir, "a/f"))
	_, h := lstat(t, filepath.Join(dir, "a/h"))
	if f.Ino != h.Ino || f.Nlink != 2 {
		t.Errorf("a/h is not a hardlink of a/f: inodes %d %d, nlink %d", f.Ino, h.Ino, f.Nlink)
	}
	if f.Mode&0o7777 != 0o2755 || f.Uid != 7 || f.Gid != 8 {
		t.Errorf("a/f: mode %o owner %d:%d", f.Mode&0o7777, f.Uid, f.Gid)
	}
	assertXattr(t, filepath.Join(dir, "a/f"), "user.kiln", "v")
	assertXattr(t, filepath.Join(dir, "a/f"), "security.capability", "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	assertXattr(t, filepath.Join(dir, "a/f"), overlayOpaque, "")
	for name, want := range map[string]uint64{"dev/null": unix.Mkdev(1, 3), ".wh.gone": 0, "gone": 0, "y/z": 0} {
		if name == ".wh.gone" {
			if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the whiteout file itself was extracted: %v", err)
			}
			continue
		}
		info, st := lstat(t, filepath.Join(dir, name))
		if info.Mode().Type() != fs.ModeDevice|fs.ModeCharDevice || st.Rdev != want {
			t.Errorf("%s: %v rdev %#x, want char device %#x", name, info.Mode(), st.Rdev, want)
		}
	}
	if info, st := lstat(t, filepath.Join(dir, "run/fifo")); info.Mode() != fs.ModeNamedPipe|0o620 || st.Uid != 5 {
		t.Errorf("run/fifo: %v uid %d", info.Mode(), st.Uid)
	}
	if info, _ := lstat(t, filepath.Join(dir, "x")); !info.Mode().IsRegular() {
		t.Errorf("x: %v, want the regular file of this layer", info.Mode())
	}
	assertXattr(t, filepath.Join(dir, "d"), overlayOpaque, "y")
	for _, name := range []string{".", "a"} {
		if info, _ := lstat(t, filepath.Join(dir, name)); !info.ModTime().Equal(old) {
			t.Errorf("%s: mtime %v, want %v set after its children", name, info.ModTime(), old)
		}
	}
	if info, _ := lstat(t, dir); info.Mode().Perm() != 0o755 {
		t.Errorf("root mode %v", info.Mode())
	}
}

func assertXattr(t *testing.T, p, name, want string) {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if want == "" {
		if err == nil {
			t.Errorf("%s: xattr %s = %q, want none", p, name, buf[:n])
		}
		return
	}
	if err != nil || string(buf[:n]) != want {
		t.Errorf("%s: xattr %s = %q (%v), want %q", p, name, buf[:max(n, 0)], err, want)
	}
}

func TestExtractReplacesEarlierEntries(t *testing.T) {
	requireRoot(t)
	layer := buildTar(t,
		dirH("p/"), fileH("p/child", "c"),
		fileH("p", "now a file"), // a directory replaced by a file
		symlinkH("q", "/nowhere"),
		dirH("q/"), // a symlink replaced by a directory
		fileH("q/r", "r"),
	)
	dir, err := extractTar(t, layer)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "p")); string(data) != "now a file" {
		t.Errorf("p = %q", data)
	}
	if info, _ := lstat(t, filepath.Join(dir, "q")); !info.IsDir() {
		t.Errorf("q: %v, want a directory", info.Mode())
	}
}

// pwnedPath is a host path that an escaping layer would create.
func pwnedPath(t *testing.T) string {
	p := fmt.Sprintf("/tmp/kiln-pwned-%d", time.Now().UnixNano())
	t.Cleanup(func() { os.Remove(p); os.Remove(p + "-up") })
	return p
}

func TestExtractRefusesEscapes(t *testing.T) {
	requireRoot(t)
	pwned := pwnedPath(t)
	for _, files := range [][]tarFile{
		{symlinkH("evil", "/"), fileH("evil"+pwned, "pwned")},
		{symlinkH("evil", "/tmp"), fileH("x/../evil/"+filepath.Base(pwned), "pwned")},
		{fileH("../../../../../.."+pwned, "pwned")},
		{symlinkH("up", "../../../../../../tmp"), fileH("up/"+filepath.Base(pwned), "pwned")},
	} {
		_, err := extractTar(t, buildTar(t, files...))
		var unsafe *UnsafeError
		if !errors.As(err, &unsafe) {
			t.Errorf("Extract = %v, want *UnsafeError", err)
		}
		if _, err := os.Lstat(pwned); err == nil {
			t.Fatalf("%s was written on the host", pwned)
		}
	}
}

// TestRootConfinesUncheckedEntries skips the checker: even then, every
// parent is resolved inside dir.
func TestRootConfinesUncheckedEntries(t *testing.T) {
	requireRoot(t)
	for _, useOpenat2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("openat2=%v", useOpenat2), func(t *testing.T) {
			pwned := pwnedPath(t)
			dir := t.TempDir()
			rt, err := openRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer rt.close()
			if useOpenat2 && !rt.openat2 {
				t.Skip("no openat2 on this kernel")
			}
			rt.openat2 = useOpenat2
			x := &extractor{rt: rt}
			apply := func(f tarFile) error {
				return x.apply(filepath.Clean(f.hdr.Name), f.hdr, bytes.NewReader([]byte(f.data)))
			}
			for _, f := range []tarFile{
				symlinkH("evil", "/"),
				symlinkH("up", "../../../../../.."),
				fileH("evil"+pwned, "pwned"),
				fileH("up"+pwned+"-up", "pwned"),
			} {
				if err := apply(f); err != nil {
					t.Logf("%s: %v", f.hdr.Name, err)
				}
			}
			for _, p := range []string{pwned, pwned + "-up"} {
				if _, err := os.Lstat(p); err == nil {
					t.Fatalf("%s was written on the host", p)
				}
				if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
					t.Errorf("%s was not written inside dir: %v", p, err)
				}
			}
			// A hardlink through the symlink must not reach a host file.
			err = apply(hardlinkH("passwd", "evil/etc/passwd"))
			if err == nil {
				_, st := lstat(t, filepath.Join(dir, "passwd"))
				_, host := lstat(t, "/etc/passwd")
				if st.Ino == host.Ino && st.Dev == host.Dev {
					t.Fatal("hardlinked the host's /etc/passwd")
				}
			}
		})
	}
}

func TestExtractTruncated(t *testing.T) {
	requireRoot(t)
	full := buildTar(t, fileH("a", "aaaa"), fileH("b", "bbbb"))
	_, err := extractTar(t, full[:1024])
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Extract = %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestExtractCancelled(t *testing.T) {
	requireRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Extract(ctx, bytes.NewReader(buildTar(t, fileH("a", "a"))), t.TempDir())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Extract = %v, want context.Canceled", err)
	}
}
