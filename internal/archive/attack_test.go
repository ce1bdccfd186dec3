package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type tarEntry struct {
	hdr  *tar.Header
	body []byte
}

func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.hdr.Typeflag == tar.TypeReg {
			e.hdr.Size = int64(len(e.body))
		}
		if e.hdr.Mode == 0 {
			e.hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readTar(t *testing.T, data []byte) []tarEntry {
	t.Helper()
	var entries []tarEntry
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, tarEntry{hdr: hdr, body: body})
	}
}

// rewriteTar passes each entry of data through edit, which changes it in place and says
// whether to keep it.
func rewriteTar(t *testing.T, data []byte, edit func(e *tarEntry) bool) []byte {
	t.Helper()
	var kept []tarEntry
	for _, e := range readTar(t, data) {
		if edit(&e) {
			kept = append(kept, e)
		}
	}
	return makeTar(t, kept...)
}

func prependDir(t *testing.T, data []byte, dir string) []byte {
	t.Helper()
	entries := append([]tarEntry{{hdr: &tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755}}}, readTar(t, data)...)
	return makeTar(t, entries...)
}

func appendEntries(t *testing.T, data []byte, extra ...tarEntry) []byte {
	t.Helper()
	return makeTar(t, append(readTar(t, data), extra...)...)
}

func jsonFromTar(data []byte, name string, v any) error {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if hdr.Name == name {
			return json.NewDecoder(tr).Decode(v)
		}
	}
}

// loadFails loads data as an archive in a fresh TMPDIR and checks that Load fails with an
// error naming the file and containing want, returns no images, and leaves no files behind
// (neither in TMPDIR nor next to the archive).
func loadFails(t *testing.T, data []byte, want string) error {
	t.Helper()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "evil.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	images, cleanup, err := Load(p)
	if cleanup == nil {
		t.Fatal("cleanup is nil")
	}
	cleanup()
	t.Log(err)
	if err == nil {
		t.Fatalf("Load succeeded with %d images; want an error containing %q", len(images), want)
	}
	if images != nil {
		t.Errorf("Load returned %d images with its error", len(images))
	}
	if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q: want it to name %s and contain %q", err, p, want)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("Load left %v in TMPDIR", left)
	}
	filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err == nil && path != p && !d.IsDir() {
			t.Errorf("Load wrote %s", path)
		}
		return nil
	})
	return err
}

func TestLoadRejectsUnsafeEntries(t *testing.T) {
	good := save(t, ociImage(t, 1, 2), "curl:latest", FormatOCI)
	var blobName string
	for _, e := range readTar(t, good) {
		if strings.HasPrefix(e.hdr.Name, "blobs/sha256/") && e.hdr.Typeflag == tar.TypeReg {
			blobName = e.hdr.Name
		}
	}
	reg := func(name string) tarEntry {
		return tarEntry{hdr: &tar.Header{Name: name, Typeflag: tar.TypeReg}, body: []byte("evil")}
	}
	link := func(name, target string, typ byte) tarEntry {
		return tarEntry{hdr: &tar.Header{Name: name, Typeflag: typ, Linkname: target}}
	}
	for what, tc := range map[string]struct {
		data  []byte
		entry string
	}{
		"dotdot":         {appendEntries(t, good, reg("../evil")), `"../evil"`},
		"deep dotdot":    {appendEntries(t, good, reg("blobs/sha256/../../../evil")), `"blobs/sha256/../../../evil"`},
		"absolute":       {appendEntries(t, good, reg("/tmp/evil")), `"/tmp/evil"`},
		"stray file":     {appendEntries(t, good, reg("evil")), `"evil"`},
		"symlink":        {appendEntries(t, good, link("evil", "/etc/passwd", tar.TypeSymlink)), `"evil"`},
		"hardlink":       {appendEntries(t, good, link("evil", "oci-layout", tar.TypeLink)), `"evil"`},
		"dotdot dir":     {appendEntries(t, good, tarEntry{hdr: &tar.Header{Name: "../evil/", Typeflag: tar.TypeDir}}), `"../evil/"`},
		"device":         {appendEntries(t, good, tarEntry{hdr: &tar.Header{Name: "blobs/sha256/" + strings.Repeat("0", 64), Typeflag: tar.TypeChar}}), `"blobs/sha256/000`},
		"duplicate blob": {appendEntries(t, good, reg(blobName)), `"` + blobName + `"`},
		"symlink blob": {rewriteTar(t, good, func(e *tarEntry) bool {
			if e.hdr.Name == blobName {
				*e = link(blobName, "/etc/passwd", tar.TypeSymlink)
			}
			return true
		}), `"` + blobName + `"`},
		"symlinked blobs dir": {makeTar(t, append([]tarEntry{link("blobs", "/tmp", tar.TypeSymlink)}, readTar(t, good)...)...), `"blobs"`},
	} {
		t.Run(what, func(t *testing.T) {
			err := loadFails(t, tc.data, "unsafe entry "+tc.entry)
			if !errors.Is(err, ErrUnsafeEntry) {
				t.Errorf("error %v is not ErrUnsafeEntry", err)
			}
		})
	}
}

func TestLoadRejectsCorruptOCIArchive(t *testing.T) {
	img := ociImage(t, 1, 2)
	good := save(t, img, "curl:latest", FormatOCI)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layerBlob := "blobs/sha256/" + m.Layers[1].Digest.Hex
	configBlob := "blobs/sha256/" + m.Config.Digest.Hex

	t.Run("blob content does not match its name", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool {
			if e.hdr.Name == layerBlob {
				e.body = bytes.Clone(e.body)
				e.body[len(e.body)/2] ^= 0xff
			}
			return true
		}), "blob "+m.Layers[1].Digest.String()+": content hashes to")
	})
	t.Run("index points at a missing blob", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool { return e.hdr.Name != layerBlob }), "blob "+m.Layers[1].Digest.String()+" (application/vnd.oci.image.layer.v1.tar+gzip) is missing")
	})
	t.Run("missing config", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool { return e.hdr.Name != configBlob }), m.Config.Digest.String())
	})
	t.Run("missing manifest", func(t *testing.T) {
		d := digest(t, img)
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool { return e.hdr.Name != "blobs/sha256/"+d.Hex }), "blob "+d.String()+" (application/vnd.oci.image.manifest.v1+json) is missing")
	})
	t.Run("missing index.json", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool { return e.hdr.Name != "index.json" }), "no index.json")
	})
	t.Run("index.json not JSON", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool {
			if e.hdr.Name == "index.json" {
				e.body = []byte("{not json")
			}
			return true
		}), "index.json")
	})
	t.Run("index.json with a path for a digest", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool {
			if e.hdr.Name == "index.json" {
				e.body = bytes.ReplaceAll(e.body, []byte(digest(t, img).String()), []byte("sha256:../../../../etc/passwd"))
			}
			return true
		}), "index.json")
	})
}

func TestLoadRejectsTruncated(t *testing.T) {
	for _, format := range []Format{FormatOCI, FormatDocker} {
		data := save(t, ociImage(t, 1, 3), "curl:latest", format)
		t.Run(format.String()+" cut in half", func(t *testing.T) {
			loadFails(t, data[:len(data)/2], "truncated")
		})
		t.Run(format.String()+" gzip cut in half", func(t *testing.T) {
			gz := gzipBytes(t, data)
			loadFails(t, gz[:len(gz)/2], "truncated")
		})
		// Cut at every 512-byte block: some cuts fall between entries, where a tar reader
		// sees a clean end; the missing files must still be noticed.
		t.Run(format.String()+" cut anywhere", func(t *testing.T) {
			for n := 512; n < len(data)-1024; n += 512 {
				p := writeTemp(t, "cut.tar", data[:n])
				if images, cleanup, err := Load(p); err == nil {
					cleanup()
					t.Errorf("cut at %d of %d: loaded %d images", n, len(data), len(images))
				}
			}
		})
	}
}

func TestLoadRejectsCorruptDockerArchive(t *testing.T) {
	img := ociImage(t, 1, 2)
	good := save(t, img, "curl:latest", FormatDocker)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layerFile := m.Layers[1].Digest.Hex + ".tar.gz"
	t.Run("manifest.json names a missing layer", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool { return e.hdr.Name != layerFile }), `"`+layerFile+`": not in the archive`)
	})
	t.Run("manifest.json names a missing config", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool { return e.hdr.Name != m.Config.Digest.String() }), "not in the archive")
	})
	t.Run("layer is a link cycle", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool {
			if e.hdr.Name == layerFile {
				*e = tarEntry{hdr: &tar.Header{Name: layerFile, Typeflag: tar.TypeSymlink, Linkname: layerFile}}
			}
			return true
		}), "links")
	})
	t.Run("manifest.json not JSON", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool {
			if e.hdr.Name == "manifest.json" {
				e.body = []byte("[{")
			}
			return true
		}), "manifest.json")
	})
	t.Run("config does not match the layers", func(t *testing.T) {
		loadFails(t, rewriteTar(t, good, func(e *tarEntry) bool {
			if e.hdr.Name == "manifest.json" {
				var mf []map[string]any
				if err := json.Unmarshal(e.body, &mf); err != nil {
					t.Fatal(err)
				}
				mf[0]["Layers"] = mf[0]["Layers"].([]any)[:1]
				e.body, _ = json.Marshal(mf)
			}
			return true
		}), "config lists 2 layers, manifest.json 1")
	})
}
