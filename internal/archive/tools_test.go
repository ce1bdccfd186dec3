package archive

// Tests against the tools our archives are for: skopeo reads what we save and we load what
// it writes; podman and docker load what we save when they are installed.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func needTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s is not installed (apt-get install -y %s): cannot check interoperability", tool, tool)
	}
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// skopeo runs skopeo without depending on the machine's signature policy.
func skopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	return run(t, "skopeo", append([]string{"--insecure-policy"}, args...)...)
}

type skopeoInspect struct {
	Digest v1.Hash
	Layers []v1.Hash
}

func inspect(t *testing.T, transport string) skopeoInspect {
	t.Helper()
	var got skopeoInspect
	if err := json.Unmarshal(skopeo(t, "inspect", transport), &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func inspectDiffIDs(t *testing.T, transport string) []v1.Hash {
	t.Helper()
	var cfg v1.ConfigFile
	if err := json.Unmarshal(skopeo(t, "inspect", "--config", transport), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.RootFS.DiffIDs
}

// dirDiffIDs returns the diffIDs of the layers of the image that `skopeo copy … dir:DIR` wrote,
// hashing each layer blob after decompressing it, and the manifest's config digest.
func dirImage(t *testing.T, dir string) (manifestDigest, config v1.Hash, diffIDs []v1.Hash) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	manifestDigest, _, _ = v1.SHA256(bytes.NewReader(raw))
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		f, err := os.Open(filepath.Join(dir, l.Digest.Hex))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		br := bufio.NewReader(f)
		var r io.Reader = br
		if magic, _ := br.Peek(2); bytes.Equal(magic, gzipMagic) {
			if r, err = gzip.NewReader(br); err != nil {
				t.Fatal(err)
			}
		}
		h, _, err := v1.SHA256(r)
		if err != nil {
			t.Fatal(err)
		}
		diffIDs = append(diffIDs, h)
	}
	return manifestDigest, m.Config.Digest, diffIDs
}

func TestSkopeoReadsOCIArchive(t *testing.T) {
	needTool(t, "skopeo")
	img := ociImage(t, 5, 3)
	p := writeTemp(t, "ours.tar", save(t, img, "kiln/app:1", FormatOCI))
	want := digest(t, img)

	if got := inspect(t, "oci-archive:"+p); got.Digest != want {
		t.Errorf("skopeo inspect oci-archive: digest %s, want %s", got.Digest, want)
	}
	// skopeo matches an explicit reference against org.opencontainers.image.ref.name: the tag.
	if got := inspect(t, "oci-archive:"+p+":1"); got.Digest != want {
		t.Errorf("skopeo inspect oci-archive:…:1: digest %s, want %s", got.Digest, want)
	}
	if got := inspectDiffIDs(t, "oci-archive:"+p); !slices.Equal(got, diffIDs(t, img)) {
		t.Errorf("skopeo inspect --config: diffIDs %v, want %v", got, diffIDs(t, img))
	}
	dir := filepath.Join(t.TempDir(), "dir")
	skopeo(t, "copy", "oci-archive:"+p, "dir:"+dir)
	manifest, config, ids := dirImage(t, dir)
	if manifest != want || config != configName(t, img) || !slices.Equal(ids, diffIDs(t, img)) {
		t.Errorf("skopeo copy to dir: manifest %s config %s diffIDs %v; want %s %s %v",
			manifest, config, ids, want, configName(t, img), diffIDs(t, img))
	}
}

func TestSkopeoReadsDockerArchive(t *testing.T) {
	needTool(t, "skopeo")
	for what, img := range map[string]v1.Image{"oci": ociImage(t, 5, 3), "docker media types": dockerTypedImage(t, 6)} {
		t.Run(what, func(t *testing.T) {
			p := writeTemp(t, "ours.tar", save(t, img, "kiln/app:1", FormatDocker))
			if got := inspect(t, "docker-archive:"+p); len(got.Layers) != len(diffIDs(t, img)) {
				t.Errorf("skopeo inspect docker-archive: layers %v, want %d", got.Layers, len(diffIDs(t, img)))
			}
			if got := inspectDiffIDs(t, "docker-archive:"+p); !slices.Equal(got, diffIDs(t, img)) {
				t.Errorf("skopeo inspect --config: diffIDs %v, want %v", got, diffIDs(t, img))
			}
			// by name, as docker load would find it
			inspect(t, "docker-archive:"+p+":kiln/app:1")
			dir := filepath.Join(t.TempDir(), "dir")
			skopeo(t, "copy", "docker-archive:"+p, "dir:"+dir)
			_, config, ids := dirImage(t, dir)
			if config != configName(t, img) || !slices.Equal(ids, diffIDs(t, img)) {
				t.Errorf("skopeo copy to dir: config %s diffIDs %v; want %s %v", config, ids, configName(t, img), diffIDs(t, img))
			}
		})
	}
}

func TestLoadWhatSkopeoWrites(t *testing.T) {
	needTool(t, "skopeo")
	img := ociImage(t, 8, 2)
	for _, format := range []Format{FormatOCI, FormatDocker} {
		src := map[Format]string{FormatOCI: "oci-archive:", FormatDocker: "docker-archive:"}[format] +
			writeTemp(t, "ours.tar", save(t, img, "kiln/app:1", format))
		for _, dst := range []string{"oci-archive:theirs.tar", "docker-archive:theirs.tar", "oci:layout"} {
			t.Run(format.String()+" to "+dst, func(t *testing.T) {
				transport, file, _ := strings.Cut(dst, ":")
				p := filepath.Join(t.TempDir(), file)
				skopeo(t, "copy", src, transport+":"+p+":name:tag")
				got := loadOne(t, p)
				if !slices.Equal(got.Tags, []string{"name:tag"}) {
					t.Errorf("tags %q, want [name:tag]", got.Tags)
				}
				// Copying a docker archive into an OCI one, skopeo rewrites the config in OCI
				// terms; the layers stay the same.
				sameLayers(t, got.Image, img)
			})
		}
	}
}

// TestBuildahPulls stands in for `podman load` where podman is missing: buildah pulls
// archives through the same library (containers/common's libimage), which names an image from
// an OCI archive by its io.containerd.image.name annotation and from a docker archive by its
// RepoTags (unqualified ones under localhost/).
func TestBuildahPulls(t *testing.T) {
	needTool(t, "buildah")
	img := ociImage(t, 9, 2)
	root := t.TempDir()
	buildah := func(args ...string) []byte {
		t.Helper()
		return run(t, "buildah", append([]string{"--storage-driver", "vfs", "--root", filepath.Join(root, "root"), "--runroot", filepath.Join(root, "run")}, args...)...)
	}
	for format, want := range map[Format]string{
		FormatOCI:    "docker.io/library/kiln-archive-test:oci",
		FormatDocker: "localhost/kiln-archive-test:docker",
	} {
		transport := map[Format]string{FormatOCI: "oci-archive:", FormatDocker: "docker-archive:"}[format]
		p := writeTemp(t, "ours.tar", save(t, img, "kiln-archive-test:"+format.String(), format))
		buildah("pull", "-q", transport+p)
		images := string(buildah("images", "--no-trunc", "--format", "{{.Name}}:{{.Tag}} {{.ID}}"))
		line := []string{want, configName(t, img).String()}
		if !slices.ContainsFunc(strings.Split(images, "\n"), func(l string) bool { return slices.Equal(strings.Fields(l), line) }) {
			t.Errorf("buildah pull %s%s: images\n%s\nwant a line %q", transport, p, images, line)
		}
	}
}

// TestRuntimesLoad checks that podman and docker load both formats. Neither is installed
// just for this: a missing tool (or a docker without a daemon) skips, loudly.
func TestRuntimesLoad(t *testing.T) {
	img := ociImage(t, 9, 2)
	for _, tool := range []string{"podman", "docker"} {
		t.Run(tool, func(t *testing.T) {
			needTool(t, tool)
			if out, err := exec.Command(tool, "info").CombinedOutput(); err != nil {
				t.Skipf("%s info failed, so %s load cannot be checked: %v\n%s", tool, tool, err, out)
			}
			for _, format := range []Format{FormatOCI, FormatDocker} {
				ref := fmt.Sprintf("kiln-archive-test:%s-%d", format, time.Now().UnixNano())
				p := writeTemp(t, "ours.tar", save(t, img, ref, format))
				out := run(t, tool, "load", "-i", p)
				t.Cleanup(func() { exec.Command(tool, "rmi", ref).Run() })
				id := strings.TrimSpace(string(run(t, tool, "image", "inspect", "--format", "{{.Id}}", ref)))
				if want := configName(t, img); !strings.HasSuffix(id, want.Hex) {
					t.Errorf("%s load -i (%s archive): %s is %s, want image ID %s\n%s", tool, format, ref, id, want, out)
				}
			}
		})
	}
}

// TestLoadWhatUmociWrites: umoci names images by tag alone in ref.name; Load returns that
// name as written.
func TestLoadWhatUmociWrites(t *testing.T) {
	needTool(t, "umoci")
	dir := filepath.Join(t.TempDir(), "layout")
	run(t, "umoci", "init", "--layout", dir)
	run(t, "umoci", "new", "--image", dir+":v1")
	got := loadOne(t, dir)
	if !slices.Equal(got.Tags, []string{"v1"}) {
		t.Errorf("tags %q, want [v1]", got.Tags)
	}
	if ids := diffIDs(t, got.Image); len(ids) != 0 {
		t.Errorf("umoci new made %d layers, want 0", len(ids))
	}
}
