package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
)

// ociImage is a reproducible image with OCI media types (as kiln builds them), for this
// machine's platform.
func ociImage(t *testing.T, seed int64, layers int) v1.Image {
	t.Helper()
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	for i := range layers {
		l, err := random.Layer(2048, types.OCILayer, random.WithSource(rand.NewSource(seed+int64(i))))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Cmd = []string{"/bin/true"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// dockerTypedImage is a reproducible image with Docker media types, as random.Image makes them.
func dockerTypedImage(t *testing.T, seed int64) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2, random.WithSource(rand.NewSource(seed)))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func save(t *testing.T, img v1.Image, ref string, format Format) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Save(&buf, img, ref, format); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, path string) []Loaded {
	t.Helper()
	images, cleanup, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	t.Cleanup(cleanup)
	return images
}

func loadOne(t *testing.T, path string) Loaded {
	t.Helper()
	images := load(t, path)
	if len(images) != 1 {
		t.Fatalf("Load(%s): %d images, want 1", path, len(images))
	}
	return images[0]
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func configName(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func diffIDs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var ids []v1.Hash
	for _, l := range layers {
		id, err := l.DiffID()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// sameLayers checks that got's layers have want's diffIDs, reading got's layer content
// through to the end so that a broken blob would show.
func sameLayers(t *testing.T, got, want v1.Image) {
	t.Helper()
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := diffIDs(t, want)
	if len(layers) != len(wantIDs) {
		t.Fatalf("%d layers, want %d", len(layers), len(wantIDs))
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if h != wantIDs[i] {
			t.Errorf("layer %d: diffID %s, want %s", i, h, wantIDs[i])
		}
	}
}

func TestParseFormat(t *testing.T) {
	for s, want := range map[string]Format{"oci": FormatOCI, "docker": FormatDocker} {
		got, err := ParseFormat(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseFormat(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseFormat("tar"); err == nil {
		t.Error("ParseFormat(tar): no error")
	}
}

func TestSaveLoadOCI(t *testing.T) {
	for _, tc := range []struct {
		ref, tag string
	}{
		{"curl:latest", "curl:latest"},
		{"curl", "curl:latest"},
		{"kiln/app:1.0", "kiln/app:1.0"},
		{"ghcr.io/kiln/app:v2", "ghcr.io/kiln/app:v2"},
		{"localhost:5000/app:dev", "localhost:5000/app:dev"},
		{"", ""},
	} {
		for what, img := range map[string]v1.Image{"oci": ociImage(t, 1, 3), "docker media types": dockerTypedImage(t, 2)} {
			t.Run(what+" "+tc.ref, func(t *testing.T) {
				p := writeTemp(t, "out.tar", save(t, img, tc.ref, FormatOCI))
				if k, err := Sniff(p); err != nil || k != KindOCIArchive {
					t.Fatalf("Sniff = %v, %v", k, err)
				}
				got := loadOne(t, p)
				if d := digest(t, got.Image); d != digest(t, img) {
					t.Errorf("manifest digest %s, want %s", d, digest(t, img))
				}
				var want []string
				if tc.tag != "" {
					want = []string{tc.tag}
				}
				if !slices.Equal(got.Tags, want) {
					t.Errorf("tags %q, want %q", got.Tags, want)
				}
				sameLayers(t, got.Image, img)
			})
		}
	}
}

func TestSaveOCIIndexAnnotations(t *testing.T) {
	data := save(t, ociImage(t, 1, 1), "curl:8.5", FormatOCI)
	var index v1.IndexManifest
	if err := jsonFromTar(data, "index.json", &index); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{annotationImageName: "docker.io/library/curl:8.5", annotationRefName: "8.5"}
	if len(index.Manifests) != 1 || !mapsEqual(index.Manifests[0].Annotations, want) {
		t.Errorf("index.json manifests = %+v, want one with annotations %v", index.Manifests, want)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSaveLoadDocker(t *testing.T) {
	for what, img := range map[string]v1.Image{"oci": ociImage(t, 1, 3), "docker media types": dockerTypedImage(t, 2)} {
		t.Run(what, func(t *testing.T) {
			p := writeTemp(t, "out.tar", save(t, img, "docker.io/kiln/app:1", FormatDocker))
			if k, err := Sniff(p); err != nil || k != KindDockerArchive {
				t.Fatalf("Sniff = %v, %v", k, err)
			}
			got := loadOne(t, p)
			if c := configName(t, got.Image); c != configName(t, img) {
				t.Errorf("config %s, want %s", c, configName(t, img))
			}
			if !slices.Equal(diffIDs(t, got.Image), diffIDs(t, img)) {
				t.Errorf("diffIDs %v, want %v", diffIDs(t, got.Image), diffIDs(t, img))
			}
			if !slices.Equal(got.Tags, []string{"kiln/app:1"}) {
				t.Errorf("tags %q, want [kiln/app:1]", got.Tags)
			}
			sameLayers(t, got.Image, img)
		})
	}
}

func TestSaveUntaggedDocker(t *testing.T) {
	img := ociImage(t, 1, 1)
	got := loadOne(t, writeTemp(t, "out.tar", save(t, img, "", FormatDocker)))
	if len(got.Tags) != 0 {
		t.Errorf("tags %q, want none", got.Tags)
	}
	if configName(t, got.Image) != configName(t, img) {
		t.Error("config differs")
	}
}

func TestSaveDeterministic(t *testing.T) {
	for _, format := range []Format{FormatOCI, FormatDocker} {
		t.Run(format.String(), func(t *testing.T) {
			// Two separately built images with the same content: nothing may depend on the
			// value's identity or on time.
			a := save(t, ociImage(t, 7, 3), "curl:latest", format)
			b := save(t, ociImage(t, 7, 3), "curl:latest", format)
			if !bytes.Equal(a, b) {
				t.Fatal("two saves of the same image differ")
			}
			tr := tar.NewReader(bytes.NewReader(a))
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if hdr.ModTime.Unix() > 0 || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" || hdr.Gname != "" {
					t.Errorf("%s: mtime %v uid %d gid %d %q %q", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname)
				}
				if want := map[byte]int64{tar.TypeReg: 0o644, tar.TypeDir: 0o755}[hdr.Typeflag]; hdr.Mode != want {
					t.Errorf("%s: mode %o, want %o", hdr.Name, hdr.Mode, want)
				}
			}
		})
	}
}

func TestSaveRejectsBadRef(t *testing.T) {
	for _, ref := range []string{"Curl:latest", "curl@sha256:abc", "curl:la test"} {
		if err := Save(io.Discard, ociImage(t, 1, 1), ref, FormatOCI); err == nil {
			t.Errorf("Save(%q): no error", ref)
		}
	}
}

func gzipBytes(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadGzip(t *testing.T) {
	img := ociImage(t, 3, 2)
	for _, format := range []Format{FormatOCI, FormatDocker} {
		t.Run(format.String(), func(t *testing.T) {
			p := writeTemp(t, "out.tar.gz", gzipBytes(t, save(t, img, "curl:gz", format)))
			got := loadOne(t, p)
			if !slices.Equal(got.Tags, []string{"curl:gz"}) {
				t.Errorf("tags %q", got.Tags)
			}
			sameLayers(t, got.Image, img)
		})
	}
}

// TestLoadDotSlash: `tar -C layout -cf x.tar .` names entries "./index.json".
func TestLoadDotSlash(t *testing.T) {
	img := ociImage(t, 3, 2)
	data := rewriteTar(t, save(t, img, "curl:dot", FormatOCI), func(e *tarEntry) bool {
		e.hdr.Name = "./" + e.hdr.Name
		return true
	})
	data = prependDir(t, data, "./")
	got := loadOne(t, writeTemp(t, "out.tar", data))
	if digest(t, got.Image) != digest(t, img) {
		t.Error("digest differs")
	}
}

func writeLayout(t *testing.T, add func(p layout.Path)) string {
	t.Helper()
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	add(p)
	return dir
}

func refName(n string) layout.Option {
	return layout.WithAnnotations(map[string]string{annotationRefName: n})
}

func TestLoadLayoutDir(t *testing.T) {
	a, b := ociImage(t, 1, 2), ociImage(t, 10, 1)
	dir := writeLayout(t, func(p layout.Path) {
		for _, x := range []struct {
			img v1.Image
			ref string
		}{{a, "a:1"}, {b, "b:1"}, {a, "a:2"}} {
			if err := p.AppendImage(x.img, refName(x.ref)); err != nil {
				t.Fatal(err)
			}
		}
	})
	if k, err := Sniff(dir); err != nil || k != KindOCILayout {
		t.Fatalf("Sniff = %v, %v", k, err)
	}
	images := load(t, dir)
	if len(images) != 2 {
		t.Fatalf("%d images, want 2", len(images))
	}
	if digest(t, images[0].Image) != digest(t, a) || !slices.Equal(images[0].Tags, []string{"a:1", "a:2"}) {
		t.Errorf("first image %s %q, want %s [a:1 a:2]", digest(t, images[0].Image), images[0].Tags, digest(t, a))
	}
	if digest(t, images[1].Image) != digest(t, b) || !slices.Equal(images[1].Tags, []string{"b:1"}) {
		t.Errorf("second image %q", images[1].Tags)
	}
}

func platformIndex(t *testing.T, imgs map[string]v1.Image) v1.ImageIndex {
	t.Helper()
	var adds []mutate.IndexAddendum
	for _, p := range slices.Sorted(mapKeys(imgs)) {
		platform, err := v1.ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: imgs[p], Descriptor: v1.Descriptor{Platform: platform}})
	}
	return mutate.AppendManifests(empty.Index, adds...)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestLoadMultiPlatform(t *testing.T) {
	mine := ociImage(t, 1, 1)
	other := ociImage(t, 2, 1)
	otherArch := "s390x"
	if runtime.GOARCH == otherArch {
		otherArch = "ppc64le"
	}
	idx := platformIndex(t, map[string]v1.Image{
		"linux/" + otherArch:        other,
		"linux/" + runtime.GOARCH:   mine,
		"windows/" + runtime.GOARCH: other,
	})
	// The platform index nested in another, as docker save (containerd store) writes it.
	outer := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx})
	dir := writeLayout(t, func(p layout.Path) {
		if err := p.AppendIndex(idx, refName("multi:1")); err != nil {
			t.Fatal(err)
		}
		if err := p.AppendIndex(outer, refName("multi:nested")); err != nil {
			t.Fatal(err)
		}
	})
	got := loadOne(t, dir)
	if digest(t, got.Image) != digest(t, mine) {
		t.Errorf("picked %s, want the linux/%s image %s", digest(t, got.Image), runtime.GOARCH, digest(t, mine))
	}
	if !slices.Equal(got.Tags, []string{"multi:1", "multi:nested"}) {
		t.Errorf("tags %q", got.Tags)
	}

	dir = writeLayout(t, func(p layout.Path) {
		idx := platformIndex(t, map[string]v1.Image{"linux/" + otherArch: other, "windows/" + runtime.GOARCH: other})
		if err := p.AppendIndex(idx, refName("multi:1")); err != nil {
			t.Fatal(err)
		}
	})
	_, _, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), "linux/"+otherArch) || !strings.Contains(err.Error(), "no linux/"+runtime.GOARCH) {
		t.Errorf("Load of an index without linux/%s: %v", runtime.GOARCH, err)
	}
}

// TestLoadDockerMultiImage: a docker archive with two images, one of them untagged.
func TestLoadDockerMultiImage(t *testing.T) {
	a, b := ociImage(t, 1, 2), ociImage(t, 20, 1)
	tag, err := name.NewTag("docker.io/library/a:1")
	if err != nil {
		t.Fatal(err)
	}
	untagged, err := name.NewDigest("b@" + digest(t, b).String())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.MultiRefWrite(map[name.Reference]v1.Image{tag: a, untagged: b}, &buf); err != nil {
		t.Fatal(err)
	}
	images := load(t, writeTemp(t, "multi.tar", buf.Bytes()))
	if len(images) != 2 {
		t.Fatalf("%d images, want 2", len(images))
	}
	byConfig := map[v1.Hash]Loaded{}
	for _, l := range images {
		byConfig[configName(t, l.Image)] = l
	}
	la, lb := byConfig[configName(t, a)], byConfig[configName(t, b)]
	if la.Image == nil || lb.Image == nil {
		t.Fatalf("images %v: want configs of a and b", images)
	}
	if !slices.Equal(la.Tags, []string{"a:1"}) || len(lb.Tags) != 0 {
		t.Errorf("tags %q and %q, want [a:1] and none", la.Tags, lb.Tags)
	}
	sameLayers(t, la.Image, a)
	sameLayers(t, lb.Image, b)
}

func TestSniffErrors(t *testing.T) {
	for what, p := range map[string]string{
		"empty dir":  t.TempDir(),
		"not a tar":  writeTemp(t, "x.txt", bytes.Repeat([]byte("not a tar "), 100)),
		"empty file": writeTemp(t, "empty", nil),
		"other tar":  writeTemp(t, "other.tar", makeTar(t, tarEntry{hdr: &tar.Header{Name: "hello", Typeflag: tar.TypeReg}, body: []byte("hi")})),
		"missing":    filepath.Join(t.TempDir(), "nope.tar"),
	} {
		if k, err := Sniff(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Sniff(%s) = %v, %v; want an error naming the path", what, k, err)
		}
		if images, cleanup, err := Load(p); err == nil || images != nil || cleanup == nil {
			t.Errorf("Load(%s) = %v, %v", what, images, err)
		}
	}
}

// TestLoadDocker25Archive: since Docker 25, docker save writes an OCI layout plus the legacy
// manifest.json and repositories; it loads as an OCI archive, named by index.json.
func TestLoadDocker25Archive(t *testing.T) {
	img := ociImage(t, 4, 2)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	legacy, err := json.Marshal([]map[string]any{{
		"Config":   "blobs/sha256/" + m.Config.Digest.Hex,
		"RepoTags": []string{"curl:25"},
		"Layers":   []string{"blobs/sha256/" + m.Layers[0].Digest.Hex, "blobs/sha256/" + m.Layers[1].Digest.Hex},
	}})
	if err != nil {
		t.Fatal(err)
	}
	data := appendEntries(t, save(t, img, "curl:25", FormatOCI),
		tarEntry{hdr: &tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg}, body: legacy},
		tarEntry{hdr: &tar.Header{Name: "repositories", Typeflag: tar.TypeReg}, body: []byte(`{"curl":{"25":"x"}}`)},
	)
	p := writeTemp(t, "docker25.tar", data)
	if k, err := Sniff(p); err != nil || k != KindOCIArchive {
		t.Fatalf("Sniff = %v, %v", k, err)
	}
	got := loadOne(t, p)
	if digest(t, got.Image) != digest(t, img) || !slices.Equal(got.Tags, []string{"curl:25"}) {
		t.Errorf("loaded %s %q, want %s [curl:25]", digest(t, got.Image), got.Tags, digest(t, img))
	}
}
