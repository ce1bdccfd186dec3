package archive

import (
	"archive/tar"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotation keys Save writes into an OCI archive's index.json and Load reads back.
const (
	annotationRefName   = "org.opencontainers.image.ref.name"
	annotationImageName = "io.containerd.image.name"
)

// Save writes img to w as an archive of the given format, named ref ("curl:latest"; a missing
// tag means "latest"; "" writes an untagged archive). The same image and ref always give the
// same bytes: entries come in a fixed order with mtime 0, uid/gid 0 and fixed modes.
//
// An OCI archive is streamed: blobs go from img straight into the tar, each checked against
// its digest and size on the way. A docker archive is written by go-containerregistry's tarball
// package; its layers keep their compression, which docker and podman load accept.
func Save(w io.Writer, img v1.Image, ref string, format Format) error {
	var tag *name.Tag
	if ref != "" {
		t, err := name.NewTag(ref)
		if err != nil {
			return fmt.Errorf("save %s: %w", ref, err)
		}
		tag = &t
	}
	var err error
	switch format {
	case FormatOCI:
		err = saveOCI(w, img, tag)
	case FormatDocker:
		err = saveDocker(w, img, tag)
	default:
		err = fmt.Errorf("unknown format %v", format)
	}
	if err != nil {
		if ref == "" {
			ref = "image"
		}
		return fmt.Errorf("save %s as %v archive: %w", ref, format, err)
	}
	return nil
}

func saveDocker(w io.Writer, img v1.Image, tag *name.Tag) error {
	if tag != nil {
		return tarball.Write(*tag, img, w)
	}
	// tarball writes RepoTags only for name.Tag references; a digest reference gives an
	// untagged entry, which `docker load` reports by image ID.
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	ref, err := name.NewDigest("untagged@" + digest.String())
	if err != nil {
		return err
	}
	return tarball.Write(ref, img, w)
}

// blob is one file under blobs/ in an OCI archive.
type blob struct {
	desc v1.Descriptor
	open func() (io.ReadCloser, error)
}

func saveOCI(w io.Writer, img v1.Image, tag *name.Tag) error {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	mediaType, err := img.MediaType()
	if err != nil {
		return err
	}
	manifestDigest, _, err := v1.SHA256(bytes.NewReader(rawManifest))
	if err != nil {
		return err
	}
	indexJSON, err := json.Marshal(v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType:   mediaType,
			Size:        int64(len(rawManifest)),
			Digest:      manifestDigest,
			Annotations: nameAnnotations(tag),
		}},
	})
	if err != nil {
		return err
	}
	blobs, err := imageBlobs(img, rawManifest, manifestDigest)
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	if err := writeFile(tw, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := writeFile(tw, "index.json", indexJSON); err != nil {
		return err
	}
	if err := writeDir(tw, "blobs/"); err != nil {
		return err
	}
	dirs := map[string]bool{}
	for _, b := range blobs {
		dir := "blobs/" + b.desc.Digest.Algorithm + "/"
		if !dirs[dir] {
			dirs[dir] = true
			if err := writeDir(tw, dir); err != nil {
				return err
			}
		}
		if err := writeBlob(tw, b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// nameAnnotations names the image in index.json as docker save and BuildKit do
// (see the package doc).
func nameAnnotations(tag *name.Tag) map[string]string {
	if tag == nil {
		return nil
	}
	registry := tag.RegistryStr()
	if registry == name.DefaultRegistry {
		registry = "docker.io"
	}
	return map[string]string{
		annotationImageName: registry + "/" + tag.RepositoryStr() + ":" + tag.TagStr(),
		annotationRefName:   tag.TagStr(),
	}
}

// imageBlobs lists the manifest, config and layer blobs of img, sorted by digest, each once.
func imageBlobs(img v1.Image, rawManifest []byte, manifestDigest v1.Hash) ([]blob, error) {
	// Parsed from the bytes written, so that the blobs match the manifest in the archive.
	manifest, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, err
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	blobs := []blob{
		{desc: v1.Descriptor{Digest: manifestDigest, Size: int64(len(rawManifest))}, open: bytesOpener(rawManifest)},
		{desc: manifest.Config, open: bytesOpener(rawConfig)},
	}
	for _, desc := range manifest.Layers {
		layer, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		blobs = append(blobs, blob{desc: desc, open: layer.Compressed})
	}
	slices.SortFunc(blobs, func(a, b blob) int { return compareHash(a.desc.Digest, b.desc.Digest) })
	return slices.CompactFunc(blobs, func(a, b blob) bool { return a.desc.Digest == b.desc.Digest }), nil
}

func compareHash(a, b v1.Hash) int {
	if c := strings.Compare(a.Algorithm, b.Algorithm); c != 0 {
		return c
	}
	return strings.Compare(a.Hex, b.Hex)
}

func bytesOpener(b []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// epoch is every entry's mtime, so that archives do not depend on when they were written.
var epoch = time.Unix(0, 0)

func writeFile(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

func writeDir(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch})
}

// writeBlob streams b into the tar, checking that its content matches its descriptor.
func writeBlob(tw *tar.Writer, b blob) error {
	d := b.desc.Digest
	hasher, err := v1.Hasher(d.Algorithm)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	r, err := b.open()
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer r.Close()
	name := path.Join("blobs", d.Algorithm, d.Hex)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: b.desc.Size, Mode: 0o644, ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(io.MultiWriter(tw, hasher), r)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if n != b.desc.Size {
		return fmt.Errorf("blob %s: read %d bytes, descriptor says %d", d, n, b.desc.Size)
	}
	if got := hex.EncodeToString(hasher.Sum(nil)); got != d.Hex {
		return fmt.Errorf("blob %s: content hashes to %s:%s", d, d.Algorithm, got)
	}
	return nil
}
