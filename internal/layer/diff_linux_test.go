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
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// overlayStep is a container's root as kiln makes one: lower read-only, the
// container's writes in upper, seen through merged.
type overlayStep struct {
	lower, upper, work, merged string
}

func (s *overlayStep) options() string {
	return "lowerdir=" + s.lower + ",upperdir=" + s.upper + ",workdir=" + s.work
}

// mountOverlay mounts overlayfs on merged until the test ends, or skips the
// test where this kernel or these privileges have no overlayfs.
func mountOverlay(t testing.TB, merged string, flags uintptr, options string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting overlayfs needs root")
	}
	err := unix.Mount("overlay", merged, "overlay", flags, options)
	switch {
	case errors.Is(err, unix.ENODEV):
		t.Skip("this kernel has no overlayfs")
	case errors.Is(err, unix.EPERM):
		t.Skip("not allowed to mount overlayfs here")
	case err != nil:
		t.Fatalf("mount overlay %s on %s: %v", options, merged, err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
}

func unmountOverlay(t testing.TB, merged string) {
	t.Helper()
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatalf("unmount %s: %v", merged, err)
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// putFile makes the file rel under root, and its missing parents (0755).
func putFile(t testing.TB, root, rel, data string, mode fs.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	noErr(t, os.MkdirAll(filepath.Dir(p), 0o755))
	noErr(t, os.WriteFile(p, []byte(data), mode))
	noErr(t, os.Chmod(p, mode)) // umask
}

func mkdirMode(t testing.TB, root, rel string, mode fs.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	noErr(t, os.MkdirAll(p, mode))
	noErr(t, os.Chmod(p, mode))
}

// makeLower is the image a step starts from.
func makeLower(t testing.TB, dir string) {
	putFile(t, dir, "a", "a\n", 0o644)
	mkdirMode(t, dir, "dir", 0o755)
	putFile(t, dir, "dir/b", "b\n", 0o644)
	putFile(t, dir, "dir/c", "c\n", 0o644)
	mkdirMode(t, dir, "d", 0o755)
	putFile(t, dir, "d/x", "x\n", 0o644)
	putFile(t, dir, "d/sub/y", "y\n", 0o600)
	noErr(t, os.Symlink("a", filepath.Join(dir, "sym")))
	putFile(t, dir, "h1", "hard\n", 0o644)
	noErr(t, os.Link(filepath.Join(dir, "h1"), filepath.Join(dir, "h2")))
	putFile(t, dir, "gone", "gone\n", 0o644)
	putFile(t, dir, "owned", "owned\n", 0o644)
}

// fileCapability is a security.capability value (v2, cap_net_raw permitted).
const fileCapability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// stepChanges are what a step does, each through the merged dir m. They are
// independent: any order gives the same upper.
var stepChanges = []func(t testing.TB, m string){
	func(t testing.TB, m string) { putFile(t, m, "a", "modified\n", 0o644) },
	func(t testing.TB, m string) {
		putFile(t, m, "e", "e\n", 0o640)
		noErr(t, unix.Setxattr(filepath.Join(m, "e"), "user.kiln", []byte("v"), 0))
		noErr(t, unix.Setxattr(filepath.Join(m, "e"), "security.capability", []byte(fileCapability), 0))
	},
	func(t testing.TB, m string) { noErr(t, os.Remove(filepath.Join(m, "dir/b"))) },
	func(t testing.TB, m string) { noErr(t, os.Remove(filepath.Join(m, "gone"))) },
	func(t testing.TB, m string) { // replace d: overlay makes the new d opaque
		noErr(t, os.RemoveAll(filepath.Join(m, "d")))
		mkdirMode(t, m, "d", 0o700)
		putFile(t, m, "d/new", "", 0o644)
	},
	func(t testing.TB, m string) {
		p := filepath.Join(m, "owned")
		noErr(t, os.Chown(p, 1000, 1001)) // before chmod: chown clears setuid
		noErr(t, os.Chmod(p, fs.ModeSetuid|0o755))
	},
	func(t testing.TB, m string) { // made as lnk/b, written first as lnk/a
		putFile(t, m, "lnk/b", "link\n", 0o644)
		noErr(t, os.Link(filepath.Join(m, "lnk/b"), filepath.Join(m, "lnk/a")))
	},
	func(t testing.TB, m string) {
		noErr(t, unix.Mkfifo(filepath.Join(m, "fifo"), 0o640))
		noErr(t, os.Chmod(filepath.Join(m, "fifo"), fs.ModeNamedPipe|0o640))
	},
	func(t testing.TB, m string) {
		noErr(t, unix.Mknod(filepath.Join(m, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		noErr(t, os.Chmod(filepath.Join(m, "null"), 0o666))
	},
	func(t testing.TB, m string) { noErr(t, os.Symlink("/etc/hostname", filepath.Join(m, "newsym"))) },
	func(t testing.TB, m string) { putFile(t, m, "new/deep/f", "deep\n", 0o644) },
	func(t testing.TB, m string) { // mount points and the build directory
		putFile(t, m, "build/main.c", "int main;\n", 0o644)
		mkdirMode(t, m, "proc", 0o555)
	},
	func(t testing.TB, m string) { // a socket left behind: no tar type for it
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		noErr(t, err)
		defer unix.Close(fd)
		noErr(t, unix.Bind(fd, &unix.SockaddrUnix{Name: filepath.Join(m, "sock")}))
	},
}

// runStep makes a lower dir, mounts an overlay on it, applies stepChanges
// (in reverse order if asked) and unmounts.
func runStep(t testing.TB, reverse bool) *overlayStep {
	t.Helper()
	base := t.TempDir()
	s := &overlayStep{}
	for _, d := range []struct {
		p    *string
		name string
	}{{&s.lower, "lower"}, {&s.upper, "upper"}, {&s.work, "work"}, {&s.merged, "merged"}} {
		*d.p = filepath.Join(base, d.name)
		mkdirMode(t, base, d.name, 0o755)
	}
	makeLower(t, s.lower)
	mountOverlay(t, s.merged, 0, s.options())
	changes := slices.Clone(stepChanges)
	if reverse {
		slices.Reverse(changes)
	}
	for _, change := range changes {
		change(t, s.merged)
	}
	unmountOverlay(t, s.merged)
	return s
}

func diffUpper(t testing.TB, upper string, mtime time.Time, exclude ...string) ([]byte, Written) {
	t.Helper()
	var buf bytes.Buffer
	w, err := Diff(&buf, upper, mtime, exclude)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), w
}

// describeEntry is one tar entry as the tests compare it.
func describeEntry(f tarFile) string {
	h := f.hdr
	s := fmt.Sprintf("%s %c %#o %d:%d", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid)
	switch h.Typeflag {
	case tar.TypeReg:
		s += fmt.Sprintf(" %q", f.data)
	case tar.TypeLink, tar.TypeSymlink:
		s += " -> " + h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		s += fmt.Sprintf(" %d,%d", h.Devmajor, h.Devminor)
	}
	if len(h.PAXRecords) > 0 {
		s += fmt.Sprintf(" %q", h.PAXRecords) // fmt sorts map keys
	}
	return s
}

func TestDiffEntries(t *testing.T) {
	s := runStep(t, false)
	blob, w := diffUpper(t, s.upper, epoch, "/build", "/proc")
	uncompressed := gunzip(t, blob)
	if w.Digest.Hex != sha256Hex(blob) || w.DiffID.Hex != sha256Hex(uncompressed) ||
		w.Size != int64(len(blob)) || w.UncompressedSize != int64(len(uncompressed)) {
		t.Errorf("Written %+v does not describe the %d-byte blob", w, len(blob))
	}
	if err := Check(bytes.NewReader(uncompressed)); err != nil {
		t.Errorf("Check: %v", err)
	}
	files := readTar(t, uncompressed)
	var got []string
	for _, f := range files {
		got = append(got, describeEntry(f))
		h := f.hdr
		if !h.ModTime.Equal(epoch) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: mtime %v atime %v ctime %v names %q:%q: host details leaked",
				h.Name, h.ModTime, h.AccessTime, h.ChangeTime, h.Uname, h.Gname)
		}
	}
	want := []string{
		`.wh.gone 0 0600 0:0 ""`,
		`a 0 0644 0:0 "modified\n"`,
		`d/ 5 0700 0:0`,
		`d/.wh..wh..opq 0 0600 0:0 ""`,
		`d/new 0 0644 0:0 ""`,
		`dir/ 5 0755 0:0`,
		`dir/.wh.b 0 0600 0:0 ""`,
		fmt.Sprintf(`e 0 0640 0:0 "e\n" %q`, map[string]string{
			"SCHILY.xattr.security.capability": fileCapability, "SCHILY.xattr.user.kiln": "v"}),
		`fifo 6 0640 0:0`,
		`lnk/ 5 0755 0:0`,
		`lnk/a 0 0644 0:0 "link\n"`,
		`lnk/b 1 0644 0:0 -> lnk/a`,
		`new/ 5 0755 0:0`,
		`new/deep/ 5 0755 0:0`,
		`new/deep/f 0 0644 0:0 "deep\n"`,
		`newsym 2 0777 0:0 -> /etc/hostname`,
		`null 3 0666 0:0 1,3`,
		`owned 0 04755 1000:1001 "owned\n"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDiffMergedView checks the meaning of a diff: the lower dir as layer 1
// and the diff of upper as layer 2, each extracted and stacked, show exactly
// the container's root.
func TestDiffMergedView(t *testing.T) {
	s := runStep(t, false)
	mountOverlay(t, s.merged, unix.MS_RDONLY, s.options())
	want := describeTree(t, s.merged)
	if _, ok := want["sock"]; !ok {
		t.Fatal("the container's root has no socket: the fixture changed")
	}
	delete(want, "sock") // left out: tar cannot carry a socket

	layer1, _ := diffUpper(t, s.lower, epoch) // a plain tree is a whole layer
	layer2, _ := diffUpper(t, s.upper, epoch)
	l1, l2 := extractBlob(t, layer1), extractBlob(t, layer2)
	stacked := filepath.Join(t.TempDir(), "stacked")
	noErr(t, os.Mkdir(stacked, 0o755))
	mountOverlay(t, stacked, unix.MS_RDONLY, "lowerdir="+l2+":"+l1)
	got := describeTree(t, stacked)

	for _, p := range sortedKeys(want, got) {
		if want[p] != got[p] {
			t.Errorf("%s:\n  container: %s\n  layers:    %s", p, want[p], got[p])
		}
	}
	if len(want) < 15 {
		t.Errorf("only %d paths compared", len(want))
	}
}

func extractBlob(t testing.TB, blob []byte) string {
	t.Helper()
	rc, err := Decompress(bytes.NewReader(blob))
	noErr(t, err)
	dir := t.TempDir()
	noErr(t, Extract(context.Background(), rc, dir))
	return dir
}

// describeTree describes every path below root: type, mode, owner, size,
// content, link target, device, xattrs, and which earlier path is the same
// inode. Directory sizes and all times are left out.
func describeTree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	first := make(map[inode]string)
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode %#o owner %d:%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" size %d %q", st.Size, data)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" rdev %#x", st.Rdev)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			id := inode{st.Dev, st.Ino}
			if f, ok := first[id]; ok {
				desc += " same inode as " + f
			} else {
				first[id] = rel
			}
		}
		xattrs, err := linkXattrs(p)
		if err != nil {
			return err
		}
		if len(xattrs) > 0 {
			desc += fmt.Sprintf(" xattrs %q", xattrs)
		}
		out[rel] = desc
		return nil
	})
	noErr(t, err)
	return out
}

func sortedKeys(maps ...map[string]string) []string {
	var keys []string
	for _, m := range maps {
		for k := range m {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

func TestDiffIsDeterministic(t *testing.T) {
	s := runStep(t, false)
	_, w1 := diffUpper(t, s.upper, epoch)
	_, w2 := diffUpper(t, s.upper, epoch)
	if w1 != w2 {
		t.Errorf("two diffs of one upper: %v, %v", w1.Digest, w2.Digest)
	}
	// Elsewhere, later, other inodes, changes in the opposite order.
	other := runStep(t, true)
	if _, w3 := diffUpper(t, other.upper, epoch); w3 != w1 {
		t.Errorf("the same step in %s: %v, want %v", other.upper, w3.Digest, w1.Digest)
	}
	if _, w4 := diffUpper(t, s.upper, epoch.Add(time.Second)); w4.DiffID == w1.DiffID {
		t.Error("another epoch gave the same layer")
	}
	// Sub-second parts are dropped, as Write drops them.
	if _, w5 := diffUpper(t, s.upper, epoch.Add(time.Millisecond)); w5 != w1 {
		t.Errorf("epoch + 1ms: %v, want %v", w5.Digest, w1.Digest)
	}
}

func TestDiffExclude(t *testing.T) {
	s := runStep(t, false)
	names := func(exclude ...string) []string {
		blob, _ := diffUpper(t, s.upper, epoch, exclude...)
		var out []string
		for _, f := range readTar(t, gunzip(t, blob)) {
			out = append(out, f.hdr.Name)
		}
		return out
	}
	all := names()
	for _, p := range []string{"build/", "build/main.c", "proc/", "new/deep/f"} {
		if !slices.Contains(all, p) {
			t.Fatalf("%s not in the diff without exclusions: %q", p, all)
		}
	}
	some := names("/build", "/proc/", "/new/deep", "/gone", "/nothing/here")
	for _, p := range some {
		if strings.HasPrefix(p, "build") || strings.HasPrefix(p, "proc") || strings.HasPrefix(p, "new/deep") || p == ".wh.gone" {
			t.Errorf("%s is excluded but in the diff", p)
		}
	}
	if !slices.Contains(some, "new/") || !slices.Contains(some, "a") {
		t.Errorf("exclusions took more than asked: %q", some)
	}
	if got := names("/"); len(got) != 0 {
		t.Errorf("excluding / left %q", got)
	}
	var buf bytes.Buffer
	if _, err := Diff(&buf, s.upper, epoch, []string{"build"}); err == nil || !strings.Contains(err.Error(), `"build"`) {
		t.Errorf("relative exclusion: %v, want an error naming it", err)
	}
}

// TestDiffUpperEdgeCases covers what this kernel's overlay may not make
// itself, on a hand-made upper dir.
func TestDiffUpperEdgeCases(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	at := func(rel string) string { return filepath.Join(upper, rel) }
	// Whiteouts sharing one inode, as overlay makes them since Linux 5.8.
	noErr(t, unix.Mknod(at("w1"), unix.S_IFCHR, 0))
	mkdirMode(t, upper, "sub", 0o755)
	noErr(t, os.Link(at("w1"), at("sub/w2")))
	mkdirMode(t, upper, "uo", 0o755)
	noErr(t, unix.Setxattr(at("uo"), "user.overlay.opaque", []byte("y"), 0)) // a userxattr mount
	mkdirMode(t, upper, "xo", 0o755)
	noErr(t, unix.Setxattr(at("xo"), "trusted.overlay.opaque", []byte("x"), 0)) // not opaque
	noErr(t, unix.Mknod(at("blk"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))))
	noErr(t, os.Chmod(at("blk"), fs.ModeDevice|0o660))
	putFile(t, upper, "f", "f", 0o644)
	noErr(t, unix.Setxattr(at("f"), "trusted.overlay.origin", []byte("\x00fh"), 0))
	noErr(t, unix.Setxattr(at("f"), "trusted.kiln", []byte("t"), 0))
	selinux := unix.Setxattr(at("f"), "security.selinux", []byte("system_u:object_r:etc_t:s0"), 0)
	long := strings.Repeat("l", 120)
	putFile(t, upper, long, "", 0o644)
	noErr(t, os.Symlink("f", at("s1")))
	noErr(t, os.Link(at("s1"), at("s2")))
	// The first name by sort order is excluded: the next one carries the file.
	putFile(t, upper, "aa/second", "shared", 0o644)
	mkdirMode(t, upper, "z", 0o755)
	noErr(t, os.Link(at("aa/second"), at("z/first")))

	blob, _ := diffUpper(t, upper, epoch, "/aa")
	var got []string
	for _, f := range readTar(t, gunzip(t, blob)) {
		got = append(got, describeEntry(f))
	}
	want := []string{
		`.wh.w1 0 0600 0:0 ""`,
		`blk 4 0660 0:0 7,0`,
		`f 0 0644 0:0 "f" map["SCHILY.xattr.trusted.kiln":"t"]`,
		fmt.Sprintf(`%s 0 0644 0:0 "" %q`, long, map[string]string{"path": long}), // as Write does
		`s1 2 0777 0:0 -> f`,
		`s2 1 0777 0:0 -> s1`,
		`sub/ 5 0755 0:0`,
		`sub/.wh.w2 0 0600 0:0 ""`,
		`uo/ 5 0755 0:0`,
		`uo/.wh..wh..opq 0 0600 0:0 ""`,
		`xo/ 5 0755 0:0`,
		`z/ 5 0755 0:0`,
		`z/first 0 0644 0:0 "shared"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if selinux != nil {
		t.Logf("security.selinux not tested: %v", selinux)
	}
}

func TestDiffRefusesMetacopy(t *testing.T) {
	requireRoot(t)
	for _, attr := range []string{"trusted.overlay.metacopy", "trusted.overlay.redirect"} {
		upper := t.TempDir()
		putFile(t, upper, "usr/bin/app", "", 0o755)
		noErr(t, unix.Setxattr(filepath.Join(upper, "usr/bin/app"), attr, []byte{}, 0))
		_, err := Diff(&bytes.Buffer{}, upper, epoch, nil)
		if err == nil || !strings.Contains(err.Error(), "/usr/bin/app") || !strings.Contains(err.Error(), attr) {
			t.Errorf("%s: Diff = %v, want an error naming the file and the xattr", attr, err)
		}
	}
}

func TestDiffRefusesWhiteoutNames(t *testing.T) {
	upper := t.TempDir()
	putFile(t, upper, "etc/.wh.passwd", "", 0o644)
	_, err := Diff(&bytes.Buffer{}, upper, epoch, nil)
	if err == nil || !strings.Contains(err.Error(), "/etc/.wh.passwd") {
		t.Errorf("Diff = %v, want an error naming /etc/.wh.passwd", err)
	}
}

func TestDiffMissingUpper(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := Diff(&bytes.Buffer{}, missing, epoch, nil)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Diff = %v, want ErrNotExist naming %s", err, missing)
	}
}

// BenchmarkDiff diffs an upper dir of 2,000 small files in 40 directories,
// with a few whiteouts and an opaque directory.
func BenchmarkDiff(b *testing.B) {
	upper := b.TempDir()
	var size int64
	for i := range 2000 {
		data := strings.Repeat(fmt.Sprintf("line %d of a small file\n", i), 1+i%40)
		putFile(b, upper, fmt.Sprintf("usr/share/pkg%02d/file%04d", i%40, i), data, 0o644)
		size += int64(len(data))
	}
	if os.Geteuid() == 0 {
		for i := range 10 {
			noErr(b, unix.Mknod(filepath.Join(upper, fmt.Sprintf("usr/share/pkg00/gone%d", i)), unix.S_IFCHR, 0))
		}
		noErr(b, unix.Setxattr(filepath.Join(upper, "usr/share/pkg01"), overlayOpaque, []byte("y"), 0))
	}
	b.SetBytes(size)
	for b.Loop() {
		if _, err := Diff(io.Discard, upper, epoch, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/2000, "µs/file")
}
