package bake

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// entry is a tar entry for a test layer.
type entry struct {
	name     string
	typ      byte
	body     string // content, or link target
	mode     int64
	uid, gid int
	major    int64
}

func layerOf(t *testing.T, entries ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: time.Unix(1700000000, 0), Devmajor: e.major, Devminor: 3}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		switch e.typ {
		case tar.TypeReg:
			h.Size = int64(len(e.body))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = e.body
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testImage has two layers: the second hides a file, empties a directory, replaces a
// directory by a file, and links to a file of the first.
func testImage(t *testing.T) v1.Image {
	return imageOf(t,
		layerOf(t,
			entry{name: "a/", typ: tar.TypeDir, mode: 0o750, uid: 7, gid: 8},
			entry{name: "a/x", typ: tar.TypeReg, body: "x1"},
			entry{name: "a/y", typ: tar.TypeReg, body: "y1", mode: 0o4755},
			entry{name: "b/old", typ: tar.TypeReg, body: "old"},
			entry{name: "c/under", typ: tar.TypeReg, body: "gone"},
			entry{name: "dev/tty3", typ: tar.TypeChar, mode: 0o620, major: 4},
			entry{name: "s", typ: tar.TypeSymlink, body: "a/y"},
		),
		layerOf(t,
			entry{name: "b/new", typ: tar.TypeReg, body: "new"},
			entry{name: "b/.wh..wh..opq", typ: tar.TypeReg},
			entry{name: "a/.wh.x", typ: tar.TypeReg},
			entry{name: "c", typ: tar.TypeReg, body: "now a file"},
			entry{name: "h", typ: tar.TypeLink, body: "a/y"},
		),
	)
}

func TestFlattenAppliesWhiteouts(t *testing.T) {
	tr, err := flatten(context.Background(), testImage(t))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for p := range tr {
		got = append(got, p)
	}
	slices.Sort(got)
	want := []string{"a", "a/y", "b", "b/new", "c", "dev", "dev/tty3", "h", "s"}
	if !slices.Equal(got, want) {
		t.Fatalf("paths %q, want %q", got, want)
	}
	if tr["h"] != tr["a/y"] {
		t.Error("the hard link h is not the inode of a/y")
	}
	if a := tr["a"]; a.mode != modeDir|0o750 || a.uid != 7 || a.gid != 8 {
		t.Errorf("a: mode %o uid %d gid %d", a.mode, a.uid, a.gid)
	}
	if y := tr["a/y"]; y.mode != modeReg|0o4755 {
		t.Errorf("a/y: mode %o, want setuid 0755", y.mode)
	}
	if d := tr["dev/tty3"]; d.mode != modeChar|0o620 || d.devMajor != 4 || d.devMinor != 3 {
		t.Errorf("dev/tty3: %+v", d)
	}
	if data, ok := tr.readFile("s"); !ok || string(data) != "y1" {
		t.Errorf("readFile through the symlink s: %q %v", data, ok)
	}
}

func TestFlattenRefusesEscapes(t *testing.T) {
	for _, l := range []v1.Layer{
		layerOf(t, entry{name: "../etc/passwd", typ: tar.TypeReg, body: "x"}),
		layerOf(t, entry{name: "l", typ: tar.TypeSymlink, body: "/etc"}, entry{name: "l/passwd", typ: tar.TypeReg, body: "x"}),
		layerOf(t, entry{name: "h", typ: tar.TypeLink, body: "missing"}),
	} {
		if _, err := flatten(context.Background(), imageOf(t, l)); err == nil {
			t.Error("flatten accepted a layer that escapes or links to nothing")
		}
	}
}

func TestCPIODeterministic(t *testing.T) {
	var outs [][]byte
	for range 3 {
		tr, err := flatten(context.Background(), testImage(t))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := writeCPIO(&buf, tr); err != nil {
			t.Fatal(err)
		}
		outs = append(outs, buf.Bytes())
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[1], outs[2]) {
		t.Fatal("the same tree gave different cpio bytes")
	}
}

// TestCPIOReadByGNUCpio extracts the archive with GNU cpio, as root, and checks what it made:
// the kernel's unpacker and cpio read the same newc format.
func TestCPIOReadByGNUCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("SKIP: GNU cpio is not installed (apt-get install cpio)")
	}
	if os.Geteuid() != 0 {
		t.Skip("SKIP: extracting owners and device nodes needs root")
	}
	tr, err := flatten(context.Background(), testImage(t))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := writeCPIO(&buf, tr); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir, cmd.Stdin = dir, &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -idm: %v\n%s", err, out)
	}
	y, _ := os.Stat(filepath.Join(dir, "a/y"))
	h, _ := os.Stat(filepath.Join(dir, "h"))
	if y == nil || h == nil || !os.SameFile(y, h) {
		t.Error("h and a/y are not one file")
	} else if y.Mode() != 0o755|os.ModeSetuid {
		t.Errorf("a/y mode %v", y.Mode())
	}
	if b, err := os.ReadFile(filepath.Join(dir, "h")); err != nil || string(b) != "y1" {
		t.Errorf("h: %q %v", b, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "s")); err != nil || target != "a/y" {
		t.Errorf("s: %q %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "dev/tty3")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("dev/tty3: %v %v", fi, err)
	}
	if y != nil && y.ModTime().Unix() != 1700000000 {
		t.Errorf("a/y: mtime %v, want the layer's", y.ModTime())
	}
	if _, err := os.Stat(filepath.Join(dir, "a/x")); err == nil {
		t.Error("a/x, whited out, was extracted")
	}
}

func TestOpenKernelRefusesOtherFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(p, bytes.Repeat([]byte{0x7f}, 4096), 0o644)
	if _, err := OpenKernel(p); err == nil || !strings.Contains(err.Error(), "not a Linux kernel image") {
		t.Errorf("OpenKernel(junk) = %v", err)
	}
}

func TestOpenKernelOfHost(t *testing.T) {
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		t.Skip("SKIP: no kernel in /boot")
	}
	k, err := OpenKernel(ks[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(filepath.Base(ks[0]), "vmlinuz-"); k.Release != want {
		t.Errorf("release %q, want %q from the file name", k.Release, want)
	}
}

func TestModuleOrder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(
		"kernel/a/virtio_mmio.ko: kernel/a/virtio.ko kernel/a/virtio_ring.ko\n"+
			"kernel/a/virtio.ko:\nkernel/a/virtio_ring.ko:\n"+
			"kernel/c/virtio_console.ko.zst: kernel/a/virtio.ko kernel/a/virtio_ring.ko\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/net/9p/9pnet.ko\n"), 0o644)
	idx, err := readModuleIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := idx.resolve("virtio_mmio", "virtio-console", "9pnet")
	want := []string{"kernel/a/virtio.ko", "kernel/a/virtio_ring.ko", "kernel/a/virtio_mmio.ko", "kernel/c/virtio_console.ko.zst"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("resolve = %q, %v; want %q", got, err, want)
	}
	if _, err := idx.resolve("9p"); err == nil {
		t.Error("resolve of a module the kernel lacks succeeded")
	}
}

func TestCompareVersions(t *testing.T) {
	names := []string{"vmlinuz-6.10.0-1-amd64", "vmlinuz-6.1.0-56-cloud-amd64", "vmlinuz-6.9.2-amd64", "vmlinuz-6.1.0-9-amd64"}
	slices.SortFunc(names, compareVersions)
	if names[len(names)-1] != "vmlinuz-6.10.0-1-amd64" || names[0] != "vmlinuz-6.1.0-9-amd64" {
		t.Errorf("sorted %q", names)
	}
}

// TestCopyModulesOnceAndNotTheImages: a module two sets share is copied once, and a file the
// image has where a module goes is replaced by the kernel's module, never loaded in its place.
func TestCopyModulesOnceAndNotTheImages(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "kernel/a"), 0o755)
	for _, m := range []string{"virtio_mmio", "virtio_net"} {
		os.WriteFile(filepath.Join(dir, "kernel/a", m+".ko"), []byte("module "+m), 0o644)
	}
	idx := &moduleIndex{dir: dir}
	tr := tree{"kiln/modules/virtio_mmio.ko": &node{mode: modeReg | 0o644, data: []byte("the image's"), fromLayers: true}}
	res := &Result{}
	first, err := res.copyModules(tr, idx, []string{"kernel/a/virtio_mmio.ko", "kernel/a/virtio_net.ko"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := res.copyModules(tr, idx, []string{"kernel/a/virtio_mmio.ko"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/kiln/modules/virtio_mmio.ko", "/kiln/modules/virtio_net.ko"}; !slices.Equal(first, want) || !slices.Equal(second, want[:1]) {
		t.Errorf("copyModules = %q then %q", first, second)
	}
	if got := string(tr["kiln/modules/virtio_mmio.ko"].data); got != "module virtio_mmio" {
		t.Errorf("kiln/modules/virtio_mmio.ko holds %q, want the kernel's module", got)
	}
	if want := int64(len("module virtio_mmio") + len("module virtio_net")); res.ModuleBytes != want {
		t.Errorf("ModuleBytes = %d, want %d (each module once)", res.ModuleBytes, want)
	}
}

// TestSerialPortsChecked: a kernel built with fewer than the four serial ports boot uses is
// refused, naming the option; the bake's command line registers all four.
func TestSerialPortsChecked(t *testing.T) {
	k := &Kernel{Path: "vmlinuz", ConfigPath: "config", Config: map[string]string{
		"CONFIG_SERIAL_8250": "y", "CONFIG_SERIAL_8250_NR_UARTS": "1"}}
	err := (&Result{}).addModules(tree{}, k)
	if err == nil || !strings.Contains(err.Error(), "CONFIG_SERIAL_8250_NR_UARTS is 1") {
		t.Errorf("addModules with 1 UART: %v", err)
	}
	k.Config["CONFIG_SERIAL_8250_NR_UARTS"] = "32"
	if err := (&Result{}).addModules(tree{}, k); err != nil {
		t.Errorf("addModules with 32 UARTs: %v", err)
	}
	if !slices.Contains(strings.Fields(Cmdline), bootconfig.UARTsParam) {
		t.Errorf("Cmdline %q lacks %s", Cmdline, bootconfig.UARTsParam)
	}
}
