package store

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image returns the stored image whose manifest is digest. Only the manifest
// is read now; the config is read on first use, and layers are opened from
// their blob files when read, so that tarball.Write, layout.Write or
// remote.Write stream them from disk.
func (s *Store) Image(digest v1.Hash) (v1.Image, error) {
	raw, err := s.readBlob(digest, maxMetaSize)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", digest, err)
	}
	mt, err := manifestMediaType(raw)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", digest, err)
	}
	if !mt.IsImage() {
		return nil, fmt.Errorf("image %s: %s is not an image manifest", digest, mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", digest, err)
	}
	return partial.CompressedToImage(&storedImage{s: s, raw: raw, manifest: m, mediaType: mt})
}

// storedImage is the partial.CompressedImageCore of a stored image.
type storedImage struct {
	s         *Store
	raw       []byte
	manifest  *v1.Manifest
	mediaType types.MediaType

	configOnce sync.Once
	config     []byte
	configErr  error
}

func (i *storedImage) RawManifest() ([]byte, error)        { return i.raw, nil }
func (i *storedImage) MediaType() (types.MediaType, error) { return i.mediaType, nil }

func (i *storedImage) RawConfigFile() ([]byte, error) {
	i.configOnce.Do(func() {
		d := i.manifest.Config
		i.config, i.configErr = i.s.readBlob(d.Digest, maxMetaSize)
		if i.configErr == nil && int64(len(i.config)) != d.Size {
			i.configErr = fmt.Errorf("config %s: size %d, manifest says %d", d.Digest, len(i.config), d.Size)
		}
	})
	return i.config, i.configErr
}

// LayerByDigest returns a layer or the config blob.
func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == i.manifest.Config.Digest {
		return &storedLayer{img: i, desc: i.manifest.Config, index: -1}, nil
	}
	for n, d := range i.manifest.Layers {
		if d.Digest == h {
			return &storedLayer{img: i, desc: d, index: n}, nil
		}
	}
	return nil, fmt.Errorf("image layer %s: %w", h, ErrNotFound)
}

// storedLayer is a partial.CompressedLayer read from its blob file.
type storedLayer struct {
	img   *storedImage
	desc  v1.Descriptor
	index int // in manifest.Layers; -1 for the config
}

func (l *storedLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storedLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Descriptor keeps the manifest's annotations and URLs when the image is
// written elsewhere.
func (l *storedLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	return &d, nil
}

func (l *storedLayer) Compressed() (io.ReadCloser, error) {
	return l.img.s.Blob(l.desc.Digest)
}

// DiffID comes from the config, which WriteImage checked against the
// content, instead of from decompressing the layer.
func (l *storedLayer) DiffID() (v1.Hash, error) {
	if l.index < 0 {
		return l.desc.Digest, nil
	}
	raw, err := l.img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("config %s: %w", l.img.manifest.Config.Digest, err)
	}
	if l.index >= len(cfg.RootFS.DiffIDs) {
		return v1.Hash{}, fmt.Errorf("config %s: no diff_id for layer %d", l.img.manifest.Config.Digest, l.index)
	}
	return cfg.RootFS.DiffIDs[l.index], nil
}
