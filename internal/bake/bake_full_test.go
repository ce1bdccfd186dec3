package bake

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-project/kiln/internal/bootconfig"
)

// fakeKernel writes a file with a bzImage header naming a release that has no modules.
func fakeKernel(t *testing.T) string {
	t.Helper()
	b := make([]byte, 0x1000)
	copy(b[hdrMagicOff:], "HdrS")
	binary.LittleEndian.PutUint16(b[hdrVersionOff:], 0x600-0x200)
	copy(b[0x600:], "0.0.0-kiln-test (test@kiln) #1\x00")
	p := filepath.Join(t.TempDir(), "vmlinuz-0.0.0-kiln-test")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func withConfig(t *testing.T, img v1.Image, c v1.Config) v1.Image {
	t.Helper()
	img, err := mutate.Config(img, c)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func accountsLayer(t *testing.T, extra ...entry) v1.Layer {
	return layerOf(t, append([]entry{
		{name: "etc/passwd", typ: tar.TypeReg, body: "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"},
		{name: "etc/group", typ: tar.TypeReg, body: "root:x:0:\napp:x:1001:\n"},
		{name: "app", typ: tar.TypeReg, body: "#!app", mode: 0o755},
	}, extra...)...)
}

func TestBakeWritesABake(t *testing.T) {
	img := withConfig(t, imageOf(t, accountsLayer(t)), v1.Config{Entrypoint: []string{"/app"}, Cmd: []string{"serve"},
		User: "app", Env: []string{"A=1"}, WorkingDir: "/srv"})
	out := filepath.Join(t.TempDir(), "app.vm")
	initBin := filepath.Join(t.TempDir(), "kiln-init")
	os.WriteFile(initBin, []byte("the init"), 0o755)
	res, err := Bake(context.Background(), img, Options{Out: out, Kernel: fakeKernel(t), Init: initBin, Image: "app"})
	if err != nil {
		t.Fatal(err)
	}
	want := bootconfig.Config{Args: []string{"/app", "serve"}, Entrypoint: []string{"/app"}, Workdir: "/srv", User: "1000:1001",
		Env: []string{"A=1", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/home/app"}}
	var got bootconfig.Config
	data, _ := os.ReadFile(filepath.Join(out, ConfigFile))
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Args, want.Args) || !slices.Equal(got.Env, want.Env) || got.User != want.User || got.Workdir != want.Workdir {
		t.Errorf("config.json = %+v, want %+v", got, want)
	}
	if res.Compression != "gzip" || res.InitBytes != 8 || res.OutputBytes == 0 {
		t.Errorf("result %+v: want gzip (no kernel config), an 8-byte init, a size", res)
	}
	for _, f := range []string{KernelFile, InitramfsFile, CmdlineFile} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	// The same bake, uncompressed, is a cpio holding /init, the config and the image's files.
	raw := filepath.Join(t.TempDir(), "raw.vm")
	if _, err := Bake(context.Background(), img, Options{Out: raw, Kernel: fakeKernel(t), Init: initBin, Uncompressed: true}); err != nil {
		t.Fatal(err)
	}
	cpio, _ := os.ReadFile(filepath.Join(raw, InitramfsFile))
	for _, name := range []string{"init\x00", "kiln/config.json\x00", "etc/passwd\x00", "app\x00", cpioTrailer} {
		if !bytes.Contains(cpio, []byte(name)) {
			t.Errorf("the uncompressed initramfs has no %q", name)
		}
	}
}

func TestBakeRefuses(t *testing.T) {
	initBin := filepath.Join(t.TempDir(), "kiln-init")
	os.WriteFile(initBin, []byte("the init"), 0o755)
	for _, c := range []struct {
		name string
		img  v1.Image
		want string
	}{
		{"no entrypoint", imageOf(t, accountsLayer(t)), "has no entrypoint and no cmd"},
		{"own /init", withConfig(t, imageOf(t, accountsLayer(t, entry{name: "init", typ: tar.TypeReg, body: "x"})), v1.Config{Cmd: []string{"/app"}}), "has an /init of its own"},
		{"unknown user", withConfig(t, imageOf(t, accountsLayer(t)), v1.Config{Cmd: []string{"/app"}, User: "ghost"}), "unable to find user ghost"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.vm")
			_, err := Bake(context.Background(), c.img, Options{Out: out, Kernel: fakeKernel(t), Init: initBin, Image: "x"})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Bake: %v, want %q", err, c.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a failed bake left its output")
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".bake-*")); len(left) > 0 {
				t.Errorf("a failed bake left %v", left)
			}
		})
	}
}

// The longest command line a kernel takes is read from its header: cmdline_size from boot
// protocol 2.06 on, 255 before.
func TestReadKernelCmdlineMax(t *testing.T) {
	p := fakeKernel(t)
	k, err := ReadKernel(p)
	if err != nil {
		t.Fatal(err)
	}
	if k.CmdlineMax != 255 {
		t.Errorf("protocol 0: CmdlineMax %d, want 255", k.CmdlineMax)
	}
	b, _ := os.ReadFile(p)
	binary.LittleEndian.PutUint16(b[hdrProtocolOff:], 0x20f)
	binary.LittleEndian.PutUint32(b[hdrCmdlineOff:], 2047)
	os.WriteFile(p, b, 0o644)
	if k, err = ReadKernel(p); err != nil {
		t.Fatal(err)
	}
	if k.CmdlineMax != 2047 {
		t.Errorf("protocol 2.15: CmdlineMax %d, want 2047", k.CmdlineMax)
	}
}
