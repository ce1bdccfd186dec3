package build

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ent is one tar entry of a test layer: a regular file unless typ says otherwise.
type ent struct {
	name, body string
	typ        byte
	link       string
}

func reg(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg} }
func marker(name string) ent    { return reg(name, "") } // whiteouts and opaque markers
func dir(name string) ent       { return ent{name: name, typ: tar.TypeDir} }
func hardlink(name, target string) ent {
	return ent{name: name, typ: tar.TypeLink, link: target}
}

func testLayer(t *testing.T, entries ...ent) v1.Layer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage stacks layers, lowest first.
func testImage(t *testing.T, layers ...[]ent) v1.Image {
	t.Helper()
	img := empty.Image
	for _, l := range layers {
		var err error
		if img, err = mutate.AppendLayers(img, testLayer(t, l...)); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func TestReadFile(t *testing.T) {
	lower := []ent{dir("etc/"), reg("etc/passwd", "lower\n"), reg("etc/group", "g\n")}
	cases := []struct {
		name   string
		layers [][]ent
		want   string
	}{
		{"one layer", [][]ent{lower}, "lower\n"},
		{"names written ./ and /", [][]ent{{reg("./etc/passwd", "dot\n")}, {reg("/etc/group", "g\n")}}, "dot\n"},
		{"an upper layer without it", [][]ent{lower, {reg("etc/group", "other\n")}}, "lower\n"},
		{"an upper copy wins", [][]ent{lower, {reg("etc/passwd", "upper\n")}}, "upper\n"},
		{"whiteout", [][]ent{lower, {marker("etc/.wh.passwd")}}, ""},
		{"whiteout of /etc", [][]ent{lower, {marker(".wh.etc")}}, ""},
		{"opaque /etc", [][]ent{lower, {dir("etc/"), marker("etc/.wh..wh..opq"), reg("etc/group", "g\n")}}, ""},
		{"opaque root", [][]ent{lower, {marker(".wh..wh..opq")}}, ""},
		{"opaque hides lower layers, not its own", [][]ent{lower, {reg("etc/passwd", "own\n"), marker("etc/.wh..wh..opq")}}, "own\n"},
		{"a whiteout after the file in the same layer", [][]ent{lower, {marker(".wh.etc"), reg("etc/passwd", "own\n")}}, "own\n"},
		{"whiteout in a layer below the copy", [][]ent{lower, {marker("etc/.wh.passwd")}, {reg("etc/passwd", "top\n")}}, "top\n"},
		{"a file replaces the directory", [][]ent{lower, {reg("etc", "not a dir")}}, ""},
		{"a whiteout of a sibling", [][]ent{lower, {marker("etc/.wh.passwd-")}}, "lower\n"},
		{"hardlink", [][]ent{lower, {reg("usr/share/base-passwd/passwd.master", "linked\n"), hardlink("etc/passwd", "usr/share/base-passwd/passwd.master")}}, "linked\n"},
		{"absent", [][]ent{{reg("etc/group", "g\n")}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := readFile(testImage(t, c.layers...), "etc/passwd")
			if err != nil || got != c.want {
				t.Errorf("readFile = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

func TestReadFileErrors(t *testing.T) {
	cases := []struct {
		name   string
		layers [][]ent
		want   string
	}{
		{"larger than 1 MiB", [][]ent{{reg("etc/passwd", strings.Repeat("x", maxAccountFile+1))}}, "/etc/passwd is 1048577 bytes"},
		{"hardlink to nothing", [][]ent{{hardlink("etc/passwd", "etc/gone")}}, "hardlink to /etc/gone"},
		{"a symlink", [][]ent{{ent{name: "etc/passwd", typ: tar.TypeSymlink, link: "/x"}}}, "not a regular file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := testImage(t, c.layers...)
			_, err := readFile(img, "etc/passwd")
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "layer sha256:") {
				t.Errorf("readFile error %v, want one naming the layer and %q", err, c.want)
			}
		})
	}
}
