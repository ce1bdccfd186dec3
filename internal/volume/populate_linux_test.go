package volume

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("copying owners, devices and trusted xattrs needs root")
	}
}

var mtime = time.Date(2020, 2, 2, 2, 2, 2, 0, time.UTC)

// sourceTree makes a tree with every kind of entry Populate copies, and a
// secret next to it that symlinks in the tree point at.
func sourceTree(t *testing.T) (src, secret string) {
	t.Helper()
	base := t.TempDir()
	src = filepath.Join(base, "src")
	secret = filepath.Join(base, "outside", "secret")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Dir(secret), 0o755))
	must(os.WriteFile(secret, []byte("secret"), 0o600))
	must(os.Mkdir(src, 0o750))
	p := func(rel string) string { return filepath.Join(src, rel) }
	must(os.MkdirAll(p("dir/empty"), 0o700))
	must(os.WriteFile(p("dir/file"), []byte("hello"), 0o640))
	must(unix.Lsetxattr(p("dir/file"), "user.test", []byte("v"), 0))
	must(unix.Lsetxattr(p("dir/file"), "trusted.kiln", []byte("t"), 0))
	must(os.Lchown(p("dir/file"), 1000, 1001))
	must(os.Lchown(p("dir"), 1000, 1000))
	must(os.WriteFile(p("suid"), []byte("s"), 0o755))
	must(os.Chmod(p("suid"), 0o755|fs.ModeSetuid))
	must(os.Mkdir(p("sgid"), 0o775))
	must(os.Chmod(p("sgid"), 0o775|fs.ModeSetgid))
	must(os.Mkdir(p("sticky"), 0o777))
	must(os.Chmod(p("sticky"), 0o777|fs.ModeSticky))
	must(os.Symlink("dir/file", p("link-rel")))
	must(os.Symlink("/etc/shadow", p("link-abs")))
	must(os.Symlink("../outside/secret", p("link-escape")))
	must(os.Symlink("../outside", p("dir-escape")))
	must(os.Lchown(p("link-rel"), 7, 8))
	must(os.WriteFile(p("hard1"), []byte("linked"), 0o644))
	must(os.Link(p("hard1"), p("hard2")))
	must(unix.Mkfifo(p("fifo"), 0o600))
	must(unix.Mknod(p("null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Mkdir(p("ro"), 0o755))
	must(os.WriteFile(p("ro/inner"), []byte("in"), 0o444))
	must(os.Chmod(p("ro"), 0o555))
	must(os.Mkdir(p("opaque"), 0o755))
	must(unix.Lsetxattr(p("opaque"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.Chown(src, 999, 998))
	// Times last: creating children changes a directory's mtime.
	filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		must(err)
		must(unix.Lutimes(path, []unix.Timeval{unix.NsecToTimeval(mtime.UnixNano()), unix.NsecToTimeval(mtime.UnixNano())}))
		return nil
	})
	return src, secret
}

type node struct {
	mode     fs.FileMode
	uid, gid uint32
	rdev     uint64
	mtime    time.Time
	content  string // file content or link target
	xattr    string // user.test
	trusted  string // trusted.kiln
}

func describe(t *testing.T, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := node{mode: fi.Mode(), uid: st.Uid, gid: st.Gid, rdev: st.Rdev}
		if rel != "." {
			n.mtime = fi.ModTime().UTC() // the root's times are not kept
		}
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(path)
			n.content = string(b)
		case fi.Mode()&fs.ModeSymlink != 0:
			n.content, _ = os.Readlink(path)
		}
		buf := make([]byte, 64)
		if k, err := unix.Lgetxattr(path, "user.test", buf); err == nil {
			n.xattr = string(buf[:k])
		}
		if k, err := unix.Lgetxattr(path, "trusted.kiln", buf); err == nil {
			n.trusted = string(buf[:k])
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, src, dst string) {
	t.Helper()
	want, got := describe(t, src), describe(t, dst)
	for rel, w := range want {
		if g, ok := got[rel]; !ok {
			t.Errorf("%s: not copied", rel)
		} else if g != w {
			t.Errorf("%s: copied as %+v\nwant %+v", rel, g, w)
		}
	}
	for rel := range got {
		if _, ok := want[rel]; !ok {
			t.Errorf("%s: in the copy only", rel)
		}
	}
}

func populated(t *testing.T, vol *Volume) bool {
	t.Helper()
	rec, err := readRecord(filepath.Dir(vol.Dir))
	if err != nil {
		t.Fatal(err)
	}
	return rec.Populated
}

func TestPopulate(t *testing.T) {
	requireRoot(t)
	v, _ := openVolumes(t)
	src, secret := sourceTree(t)
	vol, err := v.Create("data", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := vol.Populate(src); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, vol.Dir)
	if !populated(t, vol) {
		t.Error("volume.json does not say populated")
	}

	a, _ := os.Stat(filepath.Join(vol.Dir, "hard1"))
	b, _ := os.Stat(filepath.Join(vol.Dir, "hard2"))
	if !os.SameFile(a, b) {
		t.Error("hardlinks copied as two files")
	}
	buf := make([]byte, 8)
	if _, err := unix.Lgetxattr(filepath.Join(vol.Dir, "opaque"), "trusted.overlay.opaque", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("overlay's opaque xattr was copied (%v)", err)
	}
	// Symlinks are copied as links, never followed out of src.
	filepath.WalkDir(vol.Dir, func(path string, d fs.DirEntry, err error) error {
		// Lstat, and never block: the copy holds a fifo, whose open would wait for a writer.
		if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		if b, _ := readNonblock(path); bytes.Equal(b, []byte("secret")) {
			t.Errorf("%s: the secret outside src was copied", path)
		}
		return nil
	})
	if b, err := os.ReadFile(secret); err != nil || string(b) != "secret" {
		t.Errorf("%s changed: %q, %v", secret, b, err)
	}
	for _, e := range []string{partialDir, doneDir} {
		if _, err := os.Lstat(filepath.Join(filepath.Dir(vol.Dir), e)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind", e)
		}
	}

	// Once populated, never again: not even when emptied.
	entries, _ := os.ReadDir(vol.Dir)
	for _, e := range entries {
		os.RemoveAll(filepath.Join(vol.Dir, e.Name()))
	}
	if err := vol.Populate(src); err != nil {
		t.Fatal(err)
	}
	if empty, _ := isEmpty(vol.Dir); !empty {
		t.Error("a populated volume was populated again")
	}
}

// Docker copies only into an empty volume.
func TestPopulateNotEmpty(t *testing.T) {
	requireRoot(t)
	v, _ := openVolumes(t)
	src, _ := sourceTree(t)
	vol, _ := v.Create("data", false)
	os.WriteFile(filepath.Join(vol.Dir, "mine"), []byte("mine"), 0o644)
	if err := vol.Populate(src); err != nil {
		t.Fatal(err)
	}
	if names, _ := readNames(vol.Dir); !slices.Equal(names, []string{"mine"}) {
		t.Errorf("_data holds %v", names)
	}
	if populated(t, vol) {
		t.Error("marked populated without a copy")
	}
}

// Nothing at the mount point, or not a directory: nothing to copy, and a
// later container may still populate the volume.
func TestPopulateNothing(t *testing.T) {
	requireRoot(t)
	v, _ := openVolumes(t)
	vol, _ := v.Create("data", false)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, src := range []string{filepath.Join(t.TempDir(), "missing"), file} {
		if err := vol.Populate(src); err != nil {
			t.Errorf("Populate(%s) = %v", src, err)
		}
	}
	if empty, _ := isEmpty(vol.Dir); !empty || populated(t, vol) {
		t.Error("populated from nothing")
	}
}

// PopulateIn resolves the mount point inside the root: symlinks climbing
// out of it, relative or absolute, land inside it.
func TestPopulateInRoot(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	rootfs := filepath.Join(base, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "outside"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "outside", "inroot"), []byte("in"), 0o644)
	os.MkdirAll(filepath.Join(base, "outside"), 0o755)
	os.WriteFile(filepath.Join(base, "outside", "secret"), []byte("secret"), 0o644)
	os.Symlink("../../outside", filepath.Join(rootfs, "rel"))
	os.Symlink("/outside", filepath.Join(rootfs, "abs"))
	os.WriteFile(filepath.Join(rootfs, "file"), nil, 0o644)

	v, _ := openVolumes(t)
	for _, p := range []string{"/rel", "abs", "/rel/../../../outside"} {
		vol, err := v.Create("", true)
		if err != nil {
			t.Fatal(err)
		}
		if err := vol.PopulateIn(rootfs, p); err != nil {
			t.Fatal(err)
		}
		if names, _ := readNames(vol.Dir); !slices.Equal(names, []string{"inroot"}) {
			t.Errorf("PopulateIn(%s) copied %v, want [inroot]", p, names)
		}
		f, err := openInRootUserspace(rootfs, p)
		if err != nil {
			t.Fatal(err)
		}
		names, _ := f.Readdirnames(-1)
		f.Close()
		if !slices.Equal(names, []string{"inroot"}) {
			t.Errorf("user-space resolution of %s reads %v, want [inroot]", p, names)
		}
	}
	vol, _ := v.Create("", true)
	for _, p := range []string{"/missing", "/file", "/file/x"} {
		if err := vol.PopulateIn(rootfs, p); err != nil {
			t.Errorf("PopulateIn(%s) = %v, want nil", p, err)
		}
	}
	if populated(t, vol) {
		t.Error("populated from nothing")
	}
}

// A kill during the copy leaves _populate.partial and an empty _data: the
// next Populate starts over. A kill during the renames leaves
// _populate.done: the next Populate finishes them.
func TestPopulateAfterKill(t *testing.T) {
	requireRoot(t)
	v, _ := openVolumes(t)
	src, _ := sourceTree(t)

	vol, _ := v.Create("copying", false)
	os.MkdirAll(filepath.Join(filepath.Dir(vol.Dir), partialDir, "junk"), 0o755)
	if err := vol.Populate(src); err != nil {
		t.Fatal(err)
	}
	compareTrees(t, src, vol.Dir)

	vol, _ = v.Create("renaming", false)
	done := filepath.Join(filepath.Dir(vol.Dir), doneDir)
	os.MkdirAll(done, 0o750)
	os.Chown(done, 5, 6)
	os.WriteFile(filepath.Join(done, "a"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(vol.Dir, "b"), []byte("b"), 0o644) // renamed before the kill
	if err := vol.Populate(src); err != nil {
		t.Fatal(err)
	}
	if names, _ := readNames(vol.Dir); !slices.Equal(sorted(names), []string{"a", "b"}) {
		t.Errorf("_data holds %v, want [a b]", names)
	}
	fi, _ := os.Stat(vol.Dir)
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o750 || st.Uid != 5 || st.Gid != 6 {
		t.Errorf("_data: %v %d:%d, want 0750 5:6", fi.Mode(), st.Uid, st.Gid)
	}
	if _, err := os.Lstat(done); !errors.Is(err, fs.ErrNotExist) || !populated(t, vol) {
		t.Errorf("resumed populate did not finish: %v, populated %v", err, populated(t, vol))
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// Containers starting at once with one new volume: one copy.
func TestPopulateConcurrent(t *testing.T) {
	requireRoot(t)
	v, _ := openVolumes(t)
	src, _ := sourceTree(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			vol, err := v.Create("shared", false)
			if err == nil {
				err = vol.Populate(src)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	vol, _ := v.Get("shared")
	compareTrees(t, src, vol.Dir)
}

// Remove waits for a Populate of the volume, and a Populate of a removed
// volume fails instead of writing into the deleted data.
func TestPopulateRemoved(t *testing.T) {
	requireRoot(t)
	v, _ := openVolumes(t)
	src, _ := sourceTree(t)
	vol, _ := v.Create("gone", false)
	if err := v.Remove("gone", nil); err != nil {
		t.Fatal(err)
	}
	if err := vol.Populate(src); err == nil {
		t.Error("Populate of a removed volume succeeded")
	}
}

// PopulateFromLayers copies the merged image: what lower layers add, minus
// what upper layers white out or hide behind an opaque dir.
func TestPopulateFromLayers(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	bottom, top := filepath.Join(base, "bottom"), filepath.Join(base, "top")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"bottom/data/a", "bottom/data/gone", "bottom/data/sub/x", "top/data/b", "top/data/sub/y", "bottom/other/o"} {
		must(os.MkdirAll(filepath.Dir(filepath.Join(base, f)), 0o755))
		must(os.WriteFile(filepath.Join(base, f), []byte(filepath.Base(f)), 0o644))
	}
	must(unix.Mknod(filepath.Join(top, "data/gone"), unix.S_IFCHR, 0))
	must(unix.Setxattr(filepath.Join(top, "data/sub"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.Chown(filepath.Join(top, "data"), 1000, 1000))
	must(os.Chmod(filepath.Join(top, "data"), 0o750))
	must(unix.Mknod(filepath.Join(bottom, "other/wh"), unix.S_IFCHR, 0)) // a whiteout over nothing

	v, _ := openVolumes(t)
	vol, _ := v.Create("merged", false)
	if err := vol.PopulateFromLayers([]string{top, bottom}, "/data"); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(vol.Dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(vol.Dir, p)
		got = append(got, rel)
		return err
	})
	if want := []string{".", "a", "b", "sub", "sub/y"}; !slices.Equal(got, want) {
		t.Errorf("volume holds %v, want %v", got, want)
	}
	fi, _ := os.Stat(vol.Dir)
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o750 || st.Uid != 1000 {
		t.Errorf("_data: %v uid %d, want the top layer's 0750 uid 1000", fi.Mode(), st.Uid)
	}

	// One layer: a whiteout over nothing is not copied.
	one, _ := v.Create("one", false)
	if err := one.PopulateFromLayers([]string{bottom}, "other"); err != nil {
		t.Fatal(err)
	}
	if names, _ := readNames(one.Dir); !slices.Equal(names, []string{"o"}) {
		t.Errorf("volume holds %v, want [o]", names)
	}

	// Nothing at the path; and nothing left behind, on disk or mounted.
	none, _ := v.Create("none", false)
	if err := none.PopulateFromLayers([]string{top, bottom}, "/missing"); err != nil {
		t.Fatal(err)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, vol := range []*Volume{vol, one, none} {
		dir := filepath.Dir(vol.Dir)
		if _, err := os.Lstat(filepath.Join(dir, viewDir)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left in %s", viewDir, dir)
		}
		if bytes.Contains(mounts, []byte(dir)) {
			t.Errorf("a mount under %s is visible on the host", dir)
		}
	}
}

func readNonblock(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
