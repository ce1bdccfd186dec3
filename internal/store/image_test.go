package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kiln-project/kiln/internal/layer"
)

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestWriteImageRoundTrip(t *testing.T) {
	s := newStore(t)
	src := randomImage(t)
	h := commitImage(t, s, src, "app")

	img, err := s.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, img); got != h {
		t.Errorf("Image(%s).Digest() = %s", h, got)
	}
	srcLayers, _ := src.Layers()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(srcLayers) {
		t.Fatalf("%d layers, want %d", len(layers), len(srcLayers))
	}
	for i, l := range layers {
		wantDiff, _ := srcLayers[i].DiffID()
		gotDiff, err := l.DiffID()
		if err != nil || gotDiff != wantDiff {
			t.Errorf("layer %d DiffID = %s, %v; want %s", i, gotDiff, err, wantDiff)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || got != wantDiff {
			t.Errorf("layer %d uncompressed hashes to %s, %v; want %s", i, got, err, wantDiff)
		}
	}

	// Into an OCI layout and back.
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	back, err := p.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	if got := digestOf(t, back); got != h {
		t.Errorf("layout image digest %s, want %s", got, h)
	}

	// Into a docker archive and back: same config and layers.
	tarPath := filepath.Join(t.TempDir(), "img.tar")
	tag, _ := name.NewTag("app:latest")
	if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
		t.Fatal(err)
	}
	fromTar, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg, _ := img.ConfigName()
	if got, _ := fromTar.ConfigName(); got != wantCfg {
		t.Errorf("docker archive config %s, want %s", got, wantCfg)
	}

	// Store to store keeps the digest.
	if got := commitImage(t, newStore(t), img, "copy"); got != h {
		t.Errorf("copy into another store: %s, want %s", got, h)
	}
}

func TestWriteImageConvertsDocker(t *testing.T) {
	src, err := random.Image(256, 2) // Docker schema 2 media types
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	h := commitImage(t, s, src, "docker")
	if h == digestOf(t, src) {
		t.Fatal("Docker manifest stored unchanged")
	}
	img, err := s.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	srcM, _ := src.Manifest()
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("stored manifest %s with config %s", m.MediaType, m.Config.MediaType)
	}
	if m.Config.Digest != srcM.Config.Digest {
		t.Errorf("config digest changed: %s, want %s", m.Config.Digest, srcM.Config.Digest)
	}
	for i, l := range m.Layers {
		if l.MediaType != types.OCILayer || l.Digest != srcM.Layers[i].Digest || l.Size != srcM.Layers[i].Size {
			t.Errorf("layer %d stored as %+v, source %+v", i, l, srcM.Layers[i])
		}
	}
	// Idempotent: writing the stored image again keeps its digest.
	if again := commitImage(t, s, img); again != h {
		t.Errorf("rewriting the stored image: %s, want %s", again, h)
	}
}

func TestImageNotFound(t *testing.T) {
	s := newStore(t)
	_, err := s.Image(sha([]byte("nothing")))
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("Image(missing) = %v, want ErrNotFound", err)
	}
}

func TestWriteImageCompressesPlainLayers(t *testing.T) {
	tb := tarOf(t, map[string]string{"etc/hostname": "kiln\n"})
	src := newMemImage(t, layerOf(tb, tb, types.OCIUncompressedLayer)).image(t)

	s := newStore(t)
	h := commitImage(t, s, src, "plain")
	if h == digestOf(t, src) {
		t.Fatal("manifest not rewritten for a plain layer")
	}
	img, err := s.Image(h)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	l := m.Layers[0]
	if l.MediaType != types.OCILayer {
		t.Errorf("stored media type %s, want %s", l.MediaType, types.OCILayer)
	}
	f, err := s.Blob(l.Digest)
	if err != nil {
		t.Fatal(err)
	}
	magic := make([]byte, 2)
	io.ReadFull(f, magic)
	f.Close()
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		t.Errorf("stored layer starts with %x, want gzip", magic)
	}
	layers, _ := img.Layers()
	rc, _ := layers[0].Uncompressed()
	got, _, _ := v1.SHA256(rc)
	rc.Close()
	if got != sha(tb) {
		t.Errorf("uncompressed layer hashes to %s, want %s", got, sha(tb))
	}
	// Deterministic: another store gets the same manifest.
	if again := commitImage(t, newStore(t), src); again != h {
		t.Errorf("second store: %s, want %s", again, h)
	}
}

func TestWriteImageZstdAndMislabelledLayers(t *testing.T) {
	tb := tarOf(t, map[string]string{"a": "zstd"})
	z := zstdOf(t, tb)
	s := newStore(t)
	h := commitImage(t, s, newMemImage(t, layerOf(tb, z, types.OCILayerZStd)).image(t), "z")
	img, _ := s.Image(h)
	m, _ := img.Manifest()
	if m.Layers[0].MediaType != types.OCILayerZStd || m.Layers[0].Digest != sha(z) {
		t.Errorf("zstd layer stored as %+v", m.Layers[0])
	}

	// go-containerregistry gzips layers whatever their media type says.
	l, err := random.Layer(100, types.OCIUncompressedLayer)
	if err != nil {
		t.Fatal(err)
	}
	src, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	h = commitImage(t, s, src, "quirk")
	img, _ = s.Image(h)
	m, _ = img.Manifest()
	want, _ := l.Digest()
	if m.Layers[0].MediaType != types.OCILayer || m.Layers[0].Digest != want {
		t.Errorf("mislabelled layer stored as %+v, want %s with gzip media type", m.Layers[0], want)
	}
}

// failNothingCommitted runs WriteImage on img, expects an error containing
// every string in want, and checks that the store did not change.
func failNothingCommitted(t *testing.T, s *Store, img v1.Image, want ...string) {
	t.Helper()
	before := snapshot(t, s)
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, err = tx.WriteImage(img)
	if err == nil {
		t.Fatal("WriteImage accepted a bad image")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if err := tx.Commit(); err == nil {
		t.Error("Commit after a failed WriteImage succeeded")
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("store changed:\n%s\n---\n%s", before, after)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
}

func TestWriteImageRejectsTamperedLayer(t *testing.T) {
	s := newStore(t)
	commitImage(t, s, randomImage(t), "base")

	good := tarOf(t, map[string]string{"bin/app": "good"})
	evil := gzipOf(t, tarOf(t, map[string]string{"bin/app": "evil"}))
	l := layerOf(good, gzipOf(t, good), types.OCILayer)
	l.blob = evil // served bytes differ from the declared digest
	failNothingCommitted(t, s, newMemImage(t, l).image(t), l.digest.String(), "content hashes to "+sha(evil).String())
}

func TestWriteImageRejectsWrongDiffID(t *testing.T) {
	s := newStore(t)
	tb := tarOf(t, map[string]string{"a": "1"})
	l := layerOf(tb, gzipOf(t, tb), types.OCILayer)
	l.diffID = sha([]byte("something else"))
	failNothingCommitted(t, s, newMemImage(t, l).image(t), l.digest.String(), "diff_id "+l.diffID.String(), sha(tb).String())
}

func TestWriteImageRejectsWrongSize(t *testing.T) {
	s := newStore(t)
	tb := tarOf(t, map[string]string{"a": "1"})
	l := layerOf(tb, gzipOf(t, tb), types.OCILayer)
	img := newMemImage(t, l)
	img.layers[l.digest] = testLayer{blob: append(l.blob, 0), mediaType: l.mediaType, digest: l.digest, diffID: l.diffID}
	failNothingCommitted(t, s, img.image(t), l.digest.String())
}

func TestWriteImageRejectsUnknownMediaType(t *testing.T) {
	s := newStore(t)
	tb := []byte("not a tar at all")
	failNothingCommitted(t, s, newMemImage(t, layerOf(tb, tb, "application/vnd.cncf.helm.chart.content.v1.tar+gzip")).image(t), "unsupported layer media type")
}

func TestWriteImageChecksTar(t *testing.T) {
	s := newStore(t)
	bad := tarOf(t, map[string]string{"../../etc/passwd": "root::0:0::/:/bin/sh\n"})
	failNothingCommitted(t, s, newMemImage(t, layerOf(bad, zstdOf(t, bad), types.OCILayerZStd)).image(t), "unsafe layer entry", "../../etc/passwd")

	tx, _ := s.Begin(context.Background())
	_, err := tx.WriteImage(newMemImage(t, layerOf(bad, gzipOf(t, bad), types.OCILayer)).image(t))
	tx.Abort()
	var unsafe *layer.UnsafeError
	if !errors.As(err, &unsafe) {
		t.Errorf("WriteImage(unsafe tar) = %v, want a *layer.UnsafeError", err)
	}

	truncated := tarOf(t, map[string]string{"a": strings.Repeat("x", 2000)})[:1024]
	failNothingCommitted(t, s, newMemImage(t, layerOf(truncated, gzipOf(t, truncated), types.OCILayer)).image(t), "unexpected EOF")
}

func TestWriteImageVerifiesDiffIDOfStoredBlob(t *testing.T) {
	s := newStore(t)
	tb := tarOf(t, map[string]string{"a": "shared"})
	l := layerOf(tb, gzipOf(t, tb), types.OCILayer)
	commitImage(t, s, newMemImage(t, l).image(t), "first")

	// A second image reuses the stored blob but lies about its diff_id.
	liar := l
	liar.diffID = sha([]byte("lie"))
	failNothingCommitted(t, s, newMemImage(t, liar).image(t), "diff_id")

	// An image whose stored layers are not fetched again.
	src := randomImage(t)
	h := commitImage(t, s, src, "r")
	tx, _ := s.Begin(context.Background())
	defer tx.Abort()
	got, err := tx.WriteImage(noLayers{src})
	if err != nil || got != h {
		t.Errorf("rewriting a stored image = %s, %v; want %s without fetching layers", got, err, h)
	}
}

// noLayers is an image whose layers cannot be read.
type noLayers struct{ v1.Image }

func (noLayers) LayerByDigest(v1.Hash) (v1.Layer, error) { return nil, errors.New("layer fetched") }
func (noLayers) Layers() ([]v1.Layer, error)             { return nil, errors.New("layer fetched") }

func TestWriteImageDedupes(t *testing.T) {
	s := newStore(t)
	base, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	var imgs []v1.Image
	for range 2 {
		l, _ := random.Layer(256, types.DockerLayer)
		img, err := mutate.AppendLayers(base, l)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	commitImage(t, s, imgs[0], "a")
	commitImage(t, s, imgs[1], "b")
	// 3 distinct layers + 2 configs + 2 manifests.
	if n := len(blobNames(t, s)); n != 7 {
		t.Errorf("%d blobs stored, want 7", n)
	}
}
