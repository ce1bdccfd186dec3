package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// staticImage builds a small image from a generated file, quick enough for every archive test.
func staticImage(t *testing.T, root, name string) string {
	t.Helper()
	return lastLine(mustKiln(t, root, "build", staticProject(t, name)).stdout)
}

// staticProject is the build directory of staticImage.
func staticProject(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hello.txt"), "hello from "+name+"\n", 0o644)
	writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: "+name+"\ncontents:\n  files:\n    - {src: ./hello.txt, dst: /hello.txt}\n  dirs: [/data]\nconfig:\n  cmd: [/bin/cat, /hello.txt]\n", 0o644)
	return dir
}

func TestSaveIsReadBySkopeo(t *testing.T) {
	need(t, "skopeo")
	root := t.TempDir()
	digest := staticImage(t, root, "hello")
	img := inspect(t, root, "hello")
	out := t.TempDir()
	for _, format := range []string{"oci", "docker"} {
		t.Run(format, func(t *testing.T) {
			file := filepath.Join(out, format+".tar")
			mustKiln(t, root, "save", "hello", "-o", file, "--format", format)
			again := filepath.Join(out, format+"-again.tar")
			mustKiln(t, root, "save", "hello:latest", "-o", again, "--format", format)
			a, _ := os.ReadFile(file)
			b, _ := os.ReadFile(again)
			if !bytes.Equal(a, b) {
				t.Errorf("two saves of one image differ")
			}
			transport := map[string]string{"oci": "oci-archive:", "docker": "docker-archive:"}[format]
			var info struct {
				Digest string
				Layers []string
			}
			js := run(t, "skopeo", "inspect", transport+file)
			if err := json.Unmarshal([]byte(js), &info); err != nil {
				t.Fatalf("skopeo inspect: %v\n%s", err, js)
			}
			if format == "oci" && info.Digest != digest {
				t.Errorf("skopeo sees digest %s, kiln built %s", info.Digest, digest)
			}
			if len(info.Layers) != len(img.Layers) {
				t.Errorf("skopeo sees %d layers, kiln %d", len(info.Layers), len(img.Layers))
			}
			run(t, "skopeo", "copy", "-q", transport+file, "dir:"+filepath.Join(out, format+"-dir"))
			cfg := run(t, "skopeo", "inspect", "--config", transport+file)
			if !strings.Contains(cfg, img.Layers[0].DiffID) {
				t.Errorf("skopeo's config lacks our diffID %s:\n%s", img.Layers[0].DiffID, cfg)
			}
		})
	}
}

func TestLoadWhatSkopeoWrote(t *testing.T) {
	need(t, "skopeo")
	src := t.TempDir()
	staticImage(t, src, "hello")
	tmp := t.TempDir()
	ours := filepath.Join(tmp, "ours.tar")
	mustKiln(t, src, "save", "hello", "-o", ours)
	want := inspect(t, src, "hello").Layers[0].DiffID
	dests := map[string]string{
		"oci-archive":    "oci-archive:" + filepath.Join(tmp, "theirs-oci.tar") + ":copied:v1",
		"docker-archive": "docker-archive:" + filepath.Join(tmp, "theirs-docker.tar") + ":copied:v1",
		"oci-layout":     "oci:" + filepath.Join(tmp, "layout") + ":copied:v1",
	}
	for name, dest := range dests {
		t.Run(name, func(t *testing.T) {
			run(t, "skopeo", "copy", "-q", "oci-archive:"+ours, dest)
			path := strings.TrimSuffix(strings.SplitN(dest, ":", 2)[1], ":copied:v1")
			root := t.TempDir()
			r := mustKiln(t, root, "load", "-i", path)
			if !strings.Contains(r.stdout, "sha256:") {
				t.Errorf("load printed no digest: %q", r.stdout)
			}
			got := inspect(t, root, "copied:v1")
			if len(got.Layers) != 1 || got.Layers[0].DiffID != want {
				t.Errorf("loaded layers %+v, want diffID %s", got.Layers, want)
			}
			if r := kilnIn(t, root, "check"); r.code != 0 {
				t.Errorf("check after load: %s %s", r.stdout, r.stderr)
			}
		})
	}
}

// Loading is untrusted input: a hostile or broken archive is refused and the store is unchanged.
func TestLoadRejectsBadArchives(t *testing.T) {
	src := t.TempDir()
	staticImage(t, src, "hello")
	tmp := t.TempDir()
	good := filepath.Join(tmp, "good.tar")
	mustKiln(t, src, "save", "hello", "-o", good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"truncated":      data[:len(data)/2],
		"traversal":      tarWith(t, "../evil", "x"),
		"absolute":       tarWith(t, "/etc/evil", "x"),
		"blob mismatch":  tarWith(t, "oci-layout", `{"imageLayoutVersion":"1.0.0"}`, "index.json", `{"schemaVersion":2,"manifests":[]}`, "blobs/sha256/"+strings.Repeat("a", 64), "not that"),
		"not an archive": []byte("hello"),
	}
	for name, content := range bad {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			staticImage(t, root, "keep")
			before := snapshot(t, root)
			file := filepath.Join(t.TempDir(), "bad.tar")
			if err := os.WriteFile(file, content, 0o644); err != nil {
				t.Fatal(err)
			}
			r := kilnIn(t, root, "load", "-i", file)
			if r.code == 0 {
				t.Fatalf("load of a %s archive succeeded: %s", name, r.stdout)
			}
			if !strings.Contains(r.stderr, "kiln: ") {
				t.Errorf("no error line: %q", r.stderr)
			}
			if after := snapshot(t, root); after != before {
				t.Errorf("store changed:\n%s\n---\n%s", before, after)
			}
			if _, err := os.Stat("/etc/evil"); err == nil {
				t.Fatalf("/etc/evil written")
			}
		})
	}
}

// A layer whose entries climb out of the root is refused on load.
func TestLoadRejectsEscapingLayer(t *testing.T) {
	need(t, "skopeo")
	tmp := t.TempDir()
	layout := filepath.Join(tmp, "layout")
	// An OCI layout whose only layer holds ../../escaped, built with skopeo from a docker-archive we write.
	layerTar := tarWith(t, "../../escaped", "pwned")
	cfg := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + sha256hex(layerTar) + `"]},"config":{}}`
	manifest := `[{"Config":"config.json","RepoTags":["evil:latest"],"Layers":["layer.tar"]}]`
	archive := tarWith(t, "config.json", cfg, "layer.tar", string(layerTar), "manifest.json", manifest)
	file := filepath.Join(tmp, "evil.tar")
	if err := os.WriteFile(file, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "skopeo", "copy", "-q", "docker-archive:"+file, "oci:"+layout+":evil:latest")
	for _, in := range []string{file, layout} {
		root := t.TempDir()
		r := kilnIn(t, root, "load", "-i", in)
		if r.code == 0 || !strings.Contains(r.stderr, "escaped") {
			t.Errorf("load %s: exit %d, want an error naming the entry:\n%s", in, r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escaped")); err == nil {
			t.Fatalf("a file escaped the store")
		}
		if l := mustKiln(t, root, "images", "--format", "json").stdout; strings.Contains(l, "evil") {
			t.Errorf("the rejected image was tagged: %s", l)
		}
	}
}

// tarWith makes a tar of name/content pairs.
func tarWith(t *testing.T, pairs ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := tw.WriteHeader(&tar.Header{Name: pairs[i], Mode: 0o644, Size: int64(len(pairs[i+1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(pairs[i+1]))
	}
	tw.Close()
	return b.Bytes()
}
