package archive

import (
	"archive/tar"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxJSONSize bounds the JSON documents read into memory whole: oci-layout, index.json,
// manifest.json, image manifests, indexes and configs.
const maxJSONSize = 16 << 20

// extractOCIArchive copies the OCI layout in the archive at path into dir, which must be empty.
// It reads the tar once and accepts only what a layout consists of: regular files named
// "oci-layout", "index.json" or "blobs/<alg>/<hex>", and the directories above them.
// Docker 25+ archives add "manifest.json" and "repositories", which are skipped.
// Every blob is hashed on its way to disk and must match its name.
func extractOCIArchive(path, dir string) error {
	t, err := openTar(path)
	if err != nil {
		return err
	}
	defer t.Close()
	x := &ociExtractor{archive: path, dir: dir, seen: map[string]bool{}}
	tr := tar.NewReader(t.Reader())
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return tarError(path, err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	if err := t.Drain(); err != nil {
		return err
	}
	for _, required := range []string{"oci-layout", "index.json"} {
		if !x.seen[required] {
			return fmt.Errorf("archive %s: no %s: not an OCI archive", path, required)
		}
	}
	return nil
}

type ociExtractor struct {
	archive string
	dir     string
	seen    map[string]bool // regular files written (or skipped), to reject duplicates
}

func (x *ociExtractor) unsafe(name, why string) error {
	return fmt.Errorf("archive %s: %w %q (%s)", x.archive, ErrUnsafeEntry, name, why)
}

func (x *ociExtractor) entry(hdr *tar.Header, r io.Reader) error {
	name := entryName(hdr.Name)
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil // PAX defaults for later entries (git archive writes one); no file
	case tar.TypeDir:
		if name == "" || name == "blobs" || isAlgorithmDir(name) {
			return nil
		}
		return x.unsafe(hdr.Name, "not a directory of an OCI layout")
	case tar.TypeReg, tar.TypeRegA:
	case tar.TypeSymlink, tar.TypeLink:
		return x.unsafe(hdr.Name, fmt.Sprintf("link to %q", hdr.Linkname))
	default:
		return x.unsafe(hdr.Name, fmt.Sprintf("tar entry type %q", hdr.Typeflag))
	}
	if x.seen[name] {
		return x.unsafe(hdr.Name, "duplicate")
	}
	x.seen[name] = true
	switch name {
	case "oci-layout", "index.json":
		if hdr.Size > maxJSONSize {
			return fmt.Errorf("archive %s: %s is %d bytes, more than the %d allowed", x.archive, name, hdr.Size, maxJSONSize)
		}
		return x.write(name, r, nil)
	case "manifest.json", "repositories":
		return nil
	}
	digest, ok := blobDigest(name)
	if !ok {
		return x.unsafe(hdr.Name, "not part of an OCI layout")
	}
	return x.write(name, r, &digest)
}

// write copies r to name under the layout dir; for a blob, it checks the content's digest.
func (x *ociExtractor) write(name string, r io.Reader, digest *v1.Hash) error {
	target := filepath.Join(x.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	var w io.Writer = f
	var hasher hash.Hash
	if digest != nil {
		h, err := v1.Hasher(digest.Algorithm)
		if err != nil {
			return err
		}
		hasher, w = h, io.MultiWriter(f, h)
	}
	if _, err := io.Copy(w, r); err != nil {
		return tarError(x.archive, fmt.Errorf("%s: %w", name, err))
	}
	if digest != nil {
		if got := hex.EncodeToString(hasher.Sum(nil)); got != digest.Hex {
			return fmt.Errorf("archive %s: blob %s: content hashes to %s:%s", x.archive, digest, digest.Algorithm, got)
		}
	}
	return f.Close()
}

// blobDigest parses "blobs/<alg>/<hex>" for an algorithm v1.Hash knows (sha256, sha512).
func blobDigest(name string) (v1.Hash, bool) {
	rest, ok := strings.CutPrefix(name, "blobs/")
	if !ok {
		return v1.Hash{}, false
	}
	alg, encoded, ok := strings.Cut(rest, "/")
	if !ok {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(alg + ":" + encoded)
	return h, err == nil
}

func isAlgorithmDir(name string) bool {
	alg, ok := strings.CutPrefix(name, "blobs/")
	if !ok {
		return false
	}
	_, err := v1.Hasher(alg)
	return err == nil
}
