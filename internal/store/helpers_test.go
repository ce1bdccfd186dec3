package store

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomImage returns a random OCI image of two gzipped layers.
func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img := empty.Image
	for range 2 {
		l, err := random.Layer(512, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

// commitImage writes img in its own transaction and tags it with refs.
func commitImage(t *testing.T, s *Store, img v1.Image, refs ...string) v1.Hash {
	t.Helper()
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	h, err := tx.WriteImage(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if err := tx.Tag(r, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	return h
}

// snapshot lists everything under store/ but tmp/: path, mode and content hash.
func snapshot(t *testing.T, s *Store) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, path)
		if rel == "tmp" {
			return fs.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := rel + " " + fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			line += " " + sha256Of(b).String()
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func tmpEntries(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func blobNames(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.blobsDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := kgzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func zstdOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := zstd.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func sha(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// testLayer is a layer of a memImage: the bytes it serves and what its
// manifest and config claim about them.
type testLayer struct {
	blob      []byte
	mediaType types.MediaType
	digest    v1.Hash // declared in the manifest
	diffID    v1.Hash // declared in the config
}

func layerOf(tarball []byte, blob []byte, mt types.MediaType) testLayer {
	return testLayer{blob: blob, mediaType: mt, digest: sha(blob), diffID: sha(tarball)}
}

// memImage is an image from untrusted hands: it serves whatever bytes it was
// given, whether or not they match its manifest.
type memImage struct {
	manifest []byte
	config   []byte
	layers   map[v1.Hash]testLayer
}

func newMemImage(t *testing.T, layers ...testLayer) *memImage {
	t.Helper()
	cfg := v1.ConfigFile{Architecture: "amd64", OS: "linux", RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{}}}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Layers: []v1.Descriptor{}}
	img := &memImage{layers: map[v1.Hash]testLayer{}}
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mediaType, Size: int64(len(l.blob)), Digest: l.digest})
		img.layers[l.digest] = l
	}
	var err error
	if img.config, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	m.Config = v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(img.config)), Digest: sha(img.config)}
	if img.manifest, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return img
}

func (m *memImage) image(t *testing.T) v1.Image {
	img, err := partial.CompressedToImage(m)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func (m *memImage) RawManifest() ([]byte, error)        { return m.manifest, nil }
func (m *memImage) RawConfigFile() ([]byte, error)      { return m.config, nil }
func (m *memImage) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (m *memImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, ok := m.layers[h]
	if !ok {
		return nil, os.ErrNotExist
	}
	return memLayer(l), nil
}

type memLayer testLayer

func (l memLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l memLayer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l memLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
