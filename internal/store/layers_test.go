//go:build linux

package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking layers (owners, devices, trusted xattrs) needs root")
	}
}

func diffIDsOf(t testing.TB, img v1.Image) []v1.Hash {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.RootFS.DiffIDs
}

// layerDirs returns the dirs Unpack should return for diffIDs: top first.
func layerDirs(t testing.TB, s *Store, diffIDs []v1.Hash) []string {
	t.Helper()
	var dirs []string
	for _, h := range slices.Backward(diffIDs) {
		d, err := s.LayerDir(h)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// counter counts the layers an unpack call extracted itself.
type extractCounter struct {
	mu sync.Mutex
	n  map[v1.Hash]int
}

func (c *extractCounter) add(h v1.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[v1.Hash]int{}
	}
	c.n[h]++
}

func (c *extractCounter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.n {
		n += v
	}
	return n
}

// checkLayerContent compares every entry of l's tar with dir.
func checkLayerContent(t *testing.T, l v1.Layer, dir string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, hdr.Name)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", hdr.Name, err)
			continue
		}
		if hdr.Typeflag == tar.TypeReg {
			want, _ := io.ReadAll(tr)
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: content differs (%v)", hdr.Name, err)
			}
			if fi.Mode().Perm() != fs.FileMode(hdr.Mode).Perm() {
				t.Errorf("%s: mode %v, want %v", hdr.Name, fi.Mode(), fs.FileMode(hdr.Mode))
			}
		}
	}
}

func TestUnpackRandomImage(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	src, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.Image(commitImage(t, s, src, "rand"))
	if err != nil {
		t.Fatal(err)
	}
	diffIDs := diffIDsOf(t, stored)
	var c extractCounter
	dirs, err := s.unpack(context.Background(), stored, c.add)
	if err != nil {
		t.Fatal(err)
	}
	if want := layerDirs(t, s, diffIDs); !slices.Equal(dirs, want) {
		t.Fatalf("dirs = %v\nwant %v", dirs, want)
	}
	if c.total() != 3 {
		t.Errorf("%d layers extracted, want 3", c.total())
	}
	layers, _ := stored.Layers()
	for i, l := range layers {
		dir := dirs[len(dirs)-1-i]
		checkLayerContent(t, l, dir)
		if fi, err := os.Stat(dir); err != nil || fi.Mode() != fs.ModeDir|0o755 {
			t.Errorf("%s: %v, %v; want a 0755 dir", dir, fi.Mode(), err)
		}
		if _, err := os.Lstat(filepath.Join(filepath.Dir(dir), partialName)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("partial dir left next to %s: %v", dir, err)
		}
	}

	// Cached: nothing extracted again, same dirs, for the stored image and
	// for the same image from elsewhere.
	var again extractCounter
	for _, img := range []v1.Image{stored, src} {
		got, err := s.unpack(context.Background(), img, again.add)
		if err != nil || !slices.Equal(got, dirs) {
			t.Errorf("second Unpack = %v, %v; want %v", got, err, dirs)
		}
	}
	if again.total() != 0 {
		t.Errorf("a cached image was extracted again %d times", again.total())
	}
}

// tarWith builds a tar from headers; the content of a regular file is its
// Linkname field (cleared before writing), for brevity.
func tarWith(t testing.TB, hdrs ...tar.Header) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		content := ""
		if h.Typeflag == tar.TypeReg {
			content, h.Linkname = h.Linkname, ""
			h.Size = int64(len(content))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		h.ModTime = time.Unix(1700000000, 0)
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, content)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func file(name, content string) tar.Header {
	return tar.Header{Name: name, Typeflag: tar.TypeReg, Linkname: content}
}

func dir(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeDir} }

// whiteoutImage is a stored image of two layers: the top one deletes a/gone
// with a whiteout and makes d opaque.
func whiteoutImage(t *testing.T, s *Store) v1.Image {
	t.Helper()
	lower := tarWith(t, dir("a/"), file("a/keep", "keep"), file("a/gone", "gone"),
		dir("d/"), file("d/x", "x"), file("d/y", "y"), file("lower", "lower"))
	upper := tarWith(t, dir("a/"), file("a/.wh.gone", ""),
		dir("d/"), file("d/.wh..wh..opq", ""), file("d/z", "z"), file("top", "top"))
	img := newMemImage(t,
		layerOf(lower, gzipOf(t, lower), types.OCILayer),
		layerOf(upper, gzipOf(t, upper), types.OCILayer)).image(t)
	stored, err := s.Image(commitImage(t, s, img, "whiteouts"))
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

func TestUnpackWhiteouts(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	dirs, err := s.Unpack(context.Background(), whiteoutImage(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 {
		t.Fatalf("dirs = %v", dirs)
	}
	top, bottom := dirs[0], dirs[1]
	fi, err := os.Lstat(filepath.Join(top, "a/gone"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode()&fs.ModeCharDevice == 0 || st.Rdev != 0 {
		t.Errorf("a/gone in the top layer: %v rdev %d, want a 0:0 char device", fi.Mode(), st.Rdev)
	}
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(filepath.Join(top, "d"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("d in the top layer: trusted.overlay.opaque = %q, %v; want y", buf[:n], err)
	}
	for _, p := range []string{"a/.wh.gone", "d/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(top, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists in the unpacked layer", p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(bottom, "a/gone")); string(b) != "gone" {
		t.Errorf("lower layer a/gone = %q", b)
	}
}

// The layers Unpack returns, stacked by overlayfs: whiteouts and opaque dirs
// hide what the lower layer has.
func TestUnpackOverlayMount(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	dirs, err := s.Unpack(context.Background(), whiteoutImage(t, s))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	upper, work, merged := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work"), filepath.Join(tmp, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mount(t, merged, "lowerdir="+strings.Join(dirs, ":")+",upperdir="+upper+",workdir="+work)
	checkMerged(t, merged)

	if err := os.WriteFile(filepath.Join(merged, "a/new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(merged, "a/keep")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(upper, "a/new")); err != nil || string(b) != "new" {
		t.Errorf("write did not go to the upper dir: %q, %v", b, err)
	}
	for _, d := range dirs {
		if _, err := os.Lstat(filepath.Join(d, "a/new")); err == nil {
			t.Errorf("write reached lower dir %s", d)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dirs[1], "a/keep")); string(b) != "keep" {
		t.Errorf("removing through the overlay changed the lower dir: %q", b)
	}

	// Read-only (no upper dir): the root's mode is the top layer's.
	ro := filepath.Join(tmp, "ro")
	os.Mkdir(ro, 0o755)
	mount(t, ro, "lowerdir="+strings.Join(dirs, ":"))
	checkMerged(t, ro)
	if fi, err := os.Stat(ro); err != nil || fi.Mode() != fs.ModeDir|0o755 {
		t.Errorf("root of the read-only overlay: %v, %v; want 0755", fi.Mode(), err)
	}
}

func mount(t *testing.T, target, opts string) {
	t.Helper()
	err := unix.Mount("overlay", target, "overlay", 0, opts)
	if errors.Is(err, unix.ENODEV) {
		t.Skip("overlayfs is not available")
	}
	if err != nil {
		t.Fatalf("mount overlay on %s (%s): %v", target, opts, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			t.Errorf("umount %s: %v", target, err)
		}
	})
}

func checkMerged(t *testing.T, merged string) {
	t.Helper()
	for p, want := range map[string]string{"top": "top", "lower": "lower", "a/keep": "keep", "d/z": "z"} {
		if b, err := os.ReadFile(filepath.Join(merged, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", p, b, err, want)
		}
	}
	for _, p := range []string{"a/gone", "d/x", "d/y"} {
		if _, err := os.Lstat(filepath.Join(merged, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s visible through the overlay (%v)", p, err)
		}
	}
	if names, err := readNames(filepath.Join(merged, "d")); err != nil || !slices.Equal(names, []string{"z"}) {
		t.Errorf("opaque d lists %v, %v; want [z]", names, err)
	}
}

func readNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}

// A layer that appears twice is unpacked once and listed once, at its top
// place: overlayfs refuses a repeated lowerdir.
func TestUnpackRepeatedLayer(t *testing.T) {
	requireRoot(t)
	s := newStore(t)
	a, b := tarWith(t, file("a", "1")), tarWith(t, file("b", "2"))
	la, lb := layerOf(a, gzipOf(t, a), types.OCILayer), layerOf(b, gzipOf(t, b), types.OCILayer)
	img := newMemImage(t, la, lb, la).image(t)
	var c extractCounter
	dirs, err := s.unpack(context.Background(), img, c.add)
	if err != nil {
		t.Fatal(err)
	}
	if want := layerDirs(t, s, []v1.Hash{lb.diffID, la.diffID}); !slices.Equal(dirs, want) {
		t.Errorf("dirs = %v\nwant %v", dirs, want)
	}
	if c.total() != 2 {
		t.Errorf("%d extractions, want 2", c.total())
	}
}

// An image with no layers unpacks to no dirs.
func TestUnpackNoLayers(t *testing.T) {
	s := newStore(t)
	dirs, err := s.Unpack(context.Background(), newMemImage(t).image(t))
	if err != nil || len(dirs) != 0 {
		t.Errorf("Unpack = %v, %v", dirs, err)
	}
}

func TestUnpackBadLayer(t *testing.T) {
	requireRoot(t)
	good := tarWith(t, file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"))
	escape := tarWith(t, file("../../escaped", "x"))
	wrong := sha([]byte("not the content"))
	for _, tc := range []struct {
		name   string
		layer  testLayer
		errHas string
	}{
		{"diff_id mismatch", testLayer{blob: gzipOf(t, good), mediaType: types.OCILayer, digest: sha(gzipOf(t, good)), diffID: wrong},
			"layer " + wrong.String() + ": uncompressed content hashes to " + sha(good).String()},
		{"escaping entry", layerOf(escape, escape, types.OCIUncompressedLayer), "path escapes the root"},
		{"truncated", layerOf(good, good[:700], types.OCIUncompressedLayer), "truncated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s, err := Open(filepath.Join(root, "kiln"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Unpack(context.Background(), newMemImage(t, tc.layer).image(t))
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), tc.layer.diffID.String()) {
				t.Fatalf("Unpack error = %v; want one naming layer %s and saying %q", err, tc.layer.diffID, tc.errHas)
			}
			dir, _ := s.LayerDir(tc.layer.diffID)
			layerDir := filepath.Dir(dir)
			for _, p := range []string{dir, filepath.Join(layerDir, partialName),
				filepath.Join(layerDir, "escaped"), filepath.Join(filepath.Dir(layerDir), "escaped")} {
				if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s exists after a failed unpack", p)
				}
			}
		})
	}
}

// The helper process is the test binary run again as a second kiln process
// unpacking from the same store.
const (
	unpackRootEnv = "KILN_UNPACK_TEST_ROOT"
	unpackModeEnv = "KILN_UNPACK_TEST_MODE" // "unpack" or "stall"
)

func TestUnpackHelperProcess(t *testing.T) {
	root := os.Getenv(unpackRootEnv)
	if root == "" {
		t.Skip("helper process for the multi-process unpack tests")
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	switch os.Getenv(unpackModeEnv) {
	case "unpack": // unpack the image tagged "img" when root/go appears
		h, err := s.Resolve("img")
		if err != nil {
			t.Fatal(err)
		}
		img, err := s.Image(h)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, "ready"), nil, 0o644)
		waitFile(t, filepath.Join(root, "go"))
		dirs, err := s.unpack(context.Background(), img, logExtracted(t, root))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, "helper-dirs"), []byte(strings.Join(dirs, "\n")), 0o644)
	case "stall": // start unpacking a layer whose stream stalls, wait to be killed
		os.WriteFile(filepath.Join(root, "ready"), nil, 0o644)
		_, err := s.Unpack(context.Background(), stallingImage(t, true))
		t.Fatalf("unpacking a stalled layer returned: %v", err)
	}
}

// logExtracted appends the diff_id of each layer extracted to root/extracted.
func logExtracted(t *testing.T, root string) func(v1.Hash) {
	return func(h v1.Hash) {
		f, err := os.OpenFile(filepath.Join(root, "extracted"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, h)
	}
}

func startUnpackHelper(t *testing.T, root, mode string) (*exec.Cmd, chan error, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestUnpackHelperProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), unpackRootEnv+"="+root, unpackModeEnv+"="+mode)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFile(t, filepath.Join(root, "ready"))
	return cmd, done, out
}

// Another process and four goroutines unpack one image at once: every layer
// is extracted exactly once, and everyone gets the same dirs.
func TestUnpackConcurrentProcesses(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	src, err := random.Image(4<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.Image(commitImage(t, s, src, "img"))
	if err != nil {
		t.Fatal(err)
	}
	_, done, out := startUnpackHelper(t, root, "unpack")
	os.WriteFile(filepath.Join(root, "go"), nil, 0o644)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen [][]string
	)
	for range 4 {
		wg.Go(func() {
			dirs, err := s.unpack(context.Background(), img, logExtracted(t, root))
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			seen = append(seen, dirs)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(root, "helper-dirs"))
	seen = append(seen, strings.Split(string(b), "\n"))
	want := layerDirs(t, s, diffIDsOf(t, img))
	for _, dirs := range seen {
		if !slices.Equal(dirs, want) {
			t.Errorf("dirs = %v\nwant %v", dirs, want)
		}
	}
	log, _ := os.ReadFile(filepath.Join(root, "extracted"))
	lines := strings.Fields(string(log))
	slices.Sort(lines)
	var wantLines []string
	for _, h := range diffIDsOf(t, img) {
		wantLines = append(wantLines, h.String())
	}
	slices.Sort(wantLines)
	if !slices.Equal(lines, wantLines) {
		t.Errorf("extracted %v\nwant each layer once: %v", lines, wantLines)
	}
	layers, _ := img.Layers()
	for i, l := range layers {
		checkLayerContent(t, l, want[len(want)-1-i])
	}
}

// stallingImage is an image of one uncompressed layer holding a 1 MiB file;
// if stall, its stream stops in the middle of that file and never resumes.
func stallingImage(t *testing.T, stall bool) v1.Image {
	t.Helper()
	tarball := tarWith(t, file("big", strings.Repeat("k", 1<<20)), file("after", "after"))
	img := &stallImage{newMemImage(t, layerOf(tarball, tarball, types.OCIUncompressedLayer)), stall}
	out, err := partial.CompressedToImage(img)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type stallImage struct {
	*memImage
	stall bool
}

func (m *stallImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, err := m.memImage.LayerByDigest(h)
	if err != nil || !m.stall {
		return l, err
	}
	return stallLayer{l.(memLayer)}, nil
}

type stallLayer struct{ memLayer }

func (l stallLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.MultiReader(bytes.NewReader(l.blob[:len(l.blob)/2]), stallReader{})), nil
}

type stallReader struct{}

func (stallReader) Read([]byte) (int, error) {
	time.Sleep(helperTimeout)
	return 0, errors.New("not killed")
}

// A process killed while unpacking leaves a partial dir and no rootfs; the
// next Unpack of that layer removes the partial dir and unpacks it whole.
func TestUnpackKilled(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	img := stallingImage(t, false)
	diffID := diffIDsOf(t, img)[0]
	rootfs, _ := s.LayerDir(diffID)
	partialDir := filepath.Join(filepath.Dir(rootfs), partialName)

	cmd, done, _ := startUnpackHelper(t, root, "stall")
	waitFile(t, filepath.Join(partialDir, "big"))
	// GC waits for the unpack: it must not remove the dir under it.
	gcDone := make(chan error, 1)
	go func() {
		_, err := s.GC(context.Background(), KeepLayers(func() (map[v1.Hash]bool, error) { return nil, nil }))
		gcDone <- err
	}()
	select {
	case err := <-gcDone:
		t.Fatalf("GC ran during an unpack: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	cmd.Process.Kill()
	<-done
	if err := <-gcDone; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(rootfs); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rootfs of a killed unpack exists (%v)", err)
	}
	// Leave a partial dir as the kill did (GC above has removed that one).
	if err := os.MkdirAll(filepath.Join(partialDir, "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	dirs, err := s.Unpack(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dirs, []string{rootfs}) {
		t.Errorf("dirs = %v", dirs)
	}
	if names, _ := readNames(rootfs); !slices.Equal(names, []string{"after", "big"}) {
		t.Errorf("rootfs holds %v", names)
	}
	if _, err := os.Lstat(partialDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial dir survived the next unpack (%v)", err)
	}
}

func TestGCLayers(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := newStore(t)
	base := randomImage(t)
	extra, _ := random.Layer(512, types.OCILayer)
	derived, _ := mutate.AppendLayers(base, extra)
	used := randomImage(t)
	var imgs []v1.Image // stored: base, derived, used
	for i, img := range []v1.Image{base, derived, used} {
		stored, err := s.Image(commitImage(t, s, img, []string{"base", "derived", "used"}[i]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Unpack(ctx, stored); err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, stored)
	}
	for _, ref := range []string{"derived", "used"} {
		if _, err := s.Untag(ref); err != nil {
			t.Fatal(err)
		}
	}
	extraID, _ := extra.DiffID()
	baseIDs, usedIDs := diffIDsOf(t, base), diffIDsOf(t, used)

	// Leftovers: a partial dir next to a kept layer, a killed first unpack,
	// and a name GC does not own.
	keptDir, _ := s.LayerDir(baseIDs[0])
	stalePartial := filepath.Join(filepath.Dir(keptDir), partialName)
	os.MkdirAll(filepath.Join(stalePartial, "junk"), 0o755)
	killed := sha([]byte("killed"))
	killedDir, _ := s.LayerDir(killed)
	os.MkdirAll(filepath.Join(filepath.Dir(killedDir), partialName, "junk"), 0o755)
	foreign := filepath.Join(s.layersDir(), "not-a-digest")
	os.Mkdir(foreign, 0o755)

	// Without KeepLayers, no layer is removed; partial dirs are.
	rep, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RemovedLayers) != 0 {
		t.Errorf("GC without KeepLayers removed layers %v", rep.RemovedLayers)
	}
	for _, img := range imgs {
		for _, h := range diffIDsOf(t, img) {
			if ok, _ := s.unpacked(h); !ok {
				t.Errorf("layer %s removed", h)
			}
		}
	}
	if _, err := os.Lstat(stalePartial); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale partial dir survived GC")
	}

	// A KeepLayers that fails stops GC before it removes anything.
	commitImage(t, s, randomImage(t), "garbage")
	s.Untag("garbage")
	blobsBefore := blobNames(t, s)
	failing := KeepLayers(func() (map[v1.Hash]bool, error) { return nil, errors.New("containers unreadable") })
	if _, err := s.GC(ctx, failing); err == nil || !strings.Contains(err.Error(), "containers unreadable") {
		t.Errorf("GC with a failing KeepLayers: %v", err)
	}
	if !slices.Equal(blobNames(t, s), blobsBefore) {
		t.Error("GC with a failing KeepLayers removed blobs")
	}

	// With KeepLayers: what neither a tag nor a container uses goes.
	inUse := map[v1.Hash]bool{}
	for _, h := range usedIDs {
		inUse[h] = true
	}
	rep, err = s.GC(ctx, KeepLayers(func() (map[v1.Hash]bool, error) { return inUse, nil }))
	if err != nil {
		t.Fatal(err)
	}
	want := []v1.Hash{extraID, killed}
	slices.SortFunc(want, func(a, b v1.Hash) int { return strings.Compare(a.Hex, b.Hex) })
	if !slices.Equal(rep.RemovedLayers, want) || rep.LayersFreed <= 0 {
		t.Errorf("GC removed layers %v (%d bytes), want %v", rep.RemovedLayers, rep.LayersFreed, want)
	}
	for _, h := range append(baseIDs, usedIDs...) {
		if ok, _ := s.unpacked(h); !ok {
			t.Errorf("layer %s of a tagged image or a container was removed", h)
		}
	}
	for _, h := range want {
		if _, err := os.Lstat(filepath.Join(s.layersDir(), h.Hex)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("layer dir %s survived (%v)", h, err)
		}
	}
	if _, err := os.Lstat(foreign); err != nil {
		t.Errorf("GC removed %s, which it does not own", foreign)
	}
	var c extractCounter
	if _, err := s.unpack(ctx, imgs[0], c.add); err != nil || c.total() != 0 {
		t.Errorf("Unpack of the tagged image after GC: %v, %d layers extracted again", err, c.total())
	}
}

// Unpack of an image whose layers are all unpacked: a flock and a stat per
// layer.
func BenchmarkUnpackCached(b *testing.B) {
	requireRoot(b)
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	img, err := random.Image(1024, 5)
	if err != nil {
		b.Fatal(err)
	}
	tx, _ := s.Begin(context.Background())
	h, err := tx.WriteImage(img)
	if err == nil {
		err = tx.Commit()
	}
	if err != nil {
		b.Fatal(err)
	}
	stored, _ := s.Image(h)
	ctx := context.Background()
	if _, err := s.Unpack(ctx, stored); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Unpack(ctx, stored); err != nil {
			b.Fatal(err)
		}
	}
}
