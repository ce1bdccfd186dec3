package archive

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Load reads the images in an OCI archive, a docker archive (either a plain or gzip-compressed
// tar) or an OCI layout directory at path.
//
// The images are lazy: their blobs are read when used, from path itself (an OCI layout, a plain
// docker archive) or from a copy in a temporary directory (os.TempDir, so $TMPDIR) that cleanup
// removes. cleanup is never nil; call it once the images have been used. On error Load returns
// no images and has already cleaned up.
//
// In a multi-platform index Load picks the linux/runtime.GOARCH image. Images named by several
// entries of an OCI index are returned once, with all their tags.
func Load(path string) ([]Loaded, func(), error) {
	noop := func() {}
	kind, err := Sniff(path)
	if err != nil {
		return nil, noop, err
	}
	if kind == KindOCILayout {
		images, err := loadLayout(path, path)
		if err != nil {
			return nil, noop, err
		}
		return images, noop, nil
	}
	tmp, err := os.MkdirTemp("", "kiln-archive-")
	if err != nil {
		return nil, noop, fmt.Errorf("archive %s: %w", path, err)
	}
	cleanup := func() { os.RemoveAll(tmp) }
	var images []Loaded
	switch kind {
	case KindOCIArchive:
		dir := filepath.Join(tmp, "layout")
		if err = extractOCIArchive(path, dir); err == nil {
			images, err = loadLayout(path, dir)
		}
	case KindDockerArchive:
		images, err = loadDockerArchive(path, tmp)
	}
	if err != nil {
		cleanup()
		return nil, noop, err
	}
	return images, cleanup, nil
}

// maxIndexDepth bounds how deeply indexes may nest.
const maxIndexDepth = 4

// loadLayout reads the images listed in the OCI layout at dir; errors name archive,
// which is where the layout came from.
func loadLayout(archive, dir string) ([]Loaded, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", archive, err)
	}
	index, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", archive, err)
	}
	im, err := index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("archive %s: index.json: %w", archive, err)
	}
	if len(im.Manifests) == 0 {
		return nil, fmt.Errorf("archive %s: index.json lists no images", archive)
	}
	var images []Loaded
	seen := map[v1.Hash]int{} // manifest digest -> position in images
	for _, desc := range im.Manifests {
		img, err := pickImage(p, index, desc, 0)
		if err == nil {
			err = checkImage(p, img)
		}
		if err != nil {
			return nil, fmt.Errorf("archive %s: image %s: %w", archive, desc.Digest, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return nil, fmt.Errorf("archive %s: image %s: %w", archive, desc.Digest, err)
		}
		i, ok := seen[digest]
		if !ok {
			i = len(images)
			seen[digest] = i
			images = append(images, Loaded{Image: img})
		}
		for _, tag := range annotationTags(desc.Annotations) {
			if !slices.Contains(images[i].Tags, tag) {
				images[i].Tags = append(images[i].Tags, tag)
			}
		}
	}
	return images, nil
}

// pickImage returns the image desc points at in index; for an index, the one for this
// machine's platform.
func pickImage(p layout.Path, index v1.ImageIndex, desc v1.Descriptor, depth int) (v1.Image, error) {
	if err := checkBlob(p, desc, maxJSONSize); err != nil {
		return nil, err
	}
	switch {
	case desc.MediaType.IsImage():
		return index.Image(desc.Digest)
	case !desc.MediaType.IsIndex():
		return nil, fmt.Errorf("unsupported media type %q", desc.MediaType)
	case depth >= maxIndexDepth:
		return nil, fmt.Errorf("indexes nested more than %d deep", maxIndexDepth)
	}
	child, err := index.ImageIndex(desc.Digest)
	if err != nil {
		return nil, err
	}
	im, err := child.IndexManifest()
	if err != nil {
		return nil, err
	}
	want := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	var unnamed []v1.Descriptor // images and indexes that give no platform
	var platforms []string
	for _, d := range im.Manifests {
		switch {
		case d.Platform == nil:
			unnamed = append(unnamed, d)
		case d.MediaType.IsImage() && d.Platform.OS == want.OS && d.Platform.Architecture == want.Architecture:
			return pickImage(p, child, d, depth+1)
		default:
			platforms = append(platforms, d.Platform.String())
		}
	}
	// A single-platform index may not say which platform it is for (or nest one that does).
	if len(unnamed) == 1 {
		return pickImage(p, child, unnamed[0], depth+1)
	}
	return nil, fmt.Errorf("index %s has no %s image (it has %s)", desc.Digest, want.String(), strings.Join(platforms, ", "))
}

// checkImage makes sure every blob of img is in the layout, so that a broken archive fails
// here rather than when the image is used. The manifest and config are small and read whole
// (the config checked against its digest); layers are checked for presence and size only: the
// store verifies their content when it takes them in.
func checkImage(p layout.Path, img v1.Image) error {
	manifest, err := img.Manifest()
	if err != nil {
		return err
	}
	if err := checkBlob(p, manifest.Config, maxJSONSize); err != nil {
		return err
	}
	for _, desc := range manifest.Layers {
		if err := checkBlob(p, desc, 0); err != nil {
			return err
		}
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if got, err := hashOf(manifest.Config.Digest.Algorithm, rawConfig); err != nil || got != manifest.Config.Digest {
		return fmt.Errorf("config %s: content hashes to %s", manifest.Config.Digest, got)
	}
	config, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("config %s: %w", manifest.Config.Digest, err)
	}
	if n, m := len(config.RootFS.DiffIDs), len(manifest.Layers); n != m {
		return fmt.Errorf("config %s lists %d layers, manifest %d", manifest.Config.Digest, n, m)
	}
	return nil
}

// checkBlob checks that the blob desc describes is in the layout, with the right size, and
// no larger than limit unless that is 0.
func checkBlob(p layout.Path, desc v1.Descriptor, limit int64) error {
	if limit > 0 && desc.Size > limit {
		return fmt.Errorf("blob %s (%s) is %d bytes, more than the %d allowed", desc.Digest, desc.MediaType, desc.Size, limit)
	}
	fi, err := os.Stat(filepath.Join(string(p), "blobs", desc.Digest.Algorithm, desc.Digest.Hex))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s (%s) is missing", desc.Digest, desc.MediaType)
	}
	if err != nil {
		return err
	}
	if fi.Size() != desc.Size {
		return fmt.Errorf("blob %s (%s) is %d bytes, its descriptor says %d", desc.Digest, desc.MediaType, fi.Size(), desc.Size)
	}
	return nil
}

func hashOf(algorithm string, data []byte) (v1.Hash, error) {
	h, err := v1.Hasher(algorithm)
	if err != nil {
		return v1.Hash{}, err
	}
	h.Write(data)
	return v1.Hash{Algorithm: algorithm, Hex: hex.EncodeToString(h.Sum(nil))}, nil
}

// annotationTags names an image by its index.json annotations (see the package doc).
func annotationTags(a map[string]string) []string {
	ref := a[annotationImageName]
	if ref == "" {
		ref = a[annotationRefName]
	}
	if tag, ok := normalizeTag(ref); ok {
		return []string{tag}
	}
	return nil
}

// normalizeTag drops Docker Hub's implicit prefixes from ref, and rejects what does not parse
// as an image name with an optional tag.
func normalizeTag(ref string) (string, bool) {
	if ref == "" {
		return "", false
	}
	if _, err := name.NewTag(ref); err != nil {
		return "", false
	}
	for _, prefix := range []string{"docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"} {
		if rest, ok := strings.CutPrefix(ref, prefix); ok {
			return rest, true
		}
	}
	return ref, true
}
