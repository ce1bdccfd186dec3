package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kiln-project/kiln/internal/layer"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// verifiedLayer is what WriteImage learnt about a stored layer blob.
type verifiedLayer struct {
	diffID    v1.Hash
	mediaType types.MediaType
}

// WriteImage stages img, which may come from untrusted hands, and returns the
// digest of its stored manifest.
//
// The config and each layer not yet stored are copied and verified in one
// streaming pass: the bytes must hash to the manifest's digest and size, the
// uncompressed tar (gzip, zstd or plain, sniffed from the content) to the
// config's diff_id, and the tar must pass layer.Check (safe to extract).
//
// The store holds OCI images only, because other tools reading the layout
// (skopeo, podman: containers/image) ignore index.json entries of other media
// types. So the manifest is rewritten when img is not already in that form:
// Docker schema 2 media types become their OCI equivalents (the config bytes,
// and so the config digest, stay the same); a plain tar layer is gzipped
// deterministically on the way in; a layer media type that disagrees with the
// content's compression is corrected. The returned digest then differs from
// img.Digest(); otherwise the manifest is stored byte for byte.
//
// A layer already stored is not copied again. Its diff_id is trusted if a
// tagged image already pairs that blob with that diff_id; otherwise the stored
// blob is read to verify it, so that a config cannot attach a false diff_id
// to a blob someone else stored.
func (tx *Tx) WriteImage(img v1.Image) (v1.Hash, error) {
	if err := tx.usable(); err != nil {
		return v1.Hash{}, err
	}
	h, err := tx.writeImage(img)
	if err != nil {
		return v1.Hash{}, tx.fail(fmt.Errorf("write image: %w", err))
	}
	return h, nil
}

func (tx *Tx) writeImage(img v1.Image) (v1.Hash, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("parse manifest: %w", err)
	}
	changed, err := toOCI(raw, m)
	if err != nil {
		return v1.Hash{}, err
	}
	cfg, err := tx.writeConfig(img, m.Config, len(m.Layers))
	if err != nil {
		return v1.Hash{}, err
	}
	for i, desc := range m.Layers {
		if err := tx.ctx.Err(); err != nil {
			return v1.Hash{}, err
		}
		nd, err := tx.writeLayer(img, desc, cfg.RootFS.DiffIDs[i])
		if err != nil {
			return v1.Hash{}, fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		if nd.Digest != desc.Digest || nd.MediaType != desc.MediaType {
			m.Layers[i], changed = nd, true
		}
	}
	if changed {
		if raw, err = json.Marshal(m); err != nil {
			return v1.Hash{}, err
		}
	}
	h, _, err := tx.WriteBlob(bytes.NewReader(raw))
	return h, err
}

// toOCI checks the manifest m parsed from raw and gives it OCI manifest and
// config media types, reporting whether that changed anything.
func toOCI(raw []byte, m *v1.Manifest) (changed bool, err error) {
	if err := checkManifest(raw, m); err != nil {
		return false, err
	}
	if mt, _ := manifestMediaType(raw); mt != types.OCIManifestSchema1 {
		changed = true
	}
	m.MediaType = types.OCIManifestSchema1
	switch m.Config.MediaType {
	case types.OCIConfigJSON:
	case types.DockerConfigJSON:
		m.Config.MediaType, changed = types.OCIConfigJSON, true
	default:
		return false, fmt.Errorf("config media type %q: not an image config", m.Config.MediaType)
	}
	return changed, nil
}

func checkManifest(raw []byte, m *v1.Manifest) error {
	mt, err := manifestMediaType(raw)
	if err != nil {
		return err
	}
	if !mt.IsImage() {
		return fmt.Errorf("manifest media type %q: not an image manifest", mt)
	}
	if m.SchemaVersion != 2 {
		return fmt.Errorf("manifest schemaVersion %d: want 2", m.SchemaVersion)
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if err := checkDigest(d.Digest); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
	}
	return nil
}

// writeConfig verifies and stages the config blob.
func (tx *Tx) writeConfig(img v1.Image, desc v1.Descriptor, layers int) (*v1.ConfigFile, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if got := sha256Of(raw); got != desc.Digest {
		return nil, fmt.Errorf("config %s: content hashes to %s", desc.Digest, got)
	}
	if int64(len(raw)) != desc.Size {
		return nil, fmt.Errorf("config %s: size %d, manifest says %d", desc.Digest, len(raw), desc.Size)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", desc.Digest, err)
	}
	if n := len(cfg.RootFS.DiffIDs); n != layers {
		return nil, fmt.Errorf("config %s: %d diff_ids for %d layers", desc.Digest, n, layers)
	}
	if _, _, err := tx.WriteBlob(bytes.NewReader(raw)); err != nil {
		return nil, err
	}
	return cfg, nil
}

// writeLayer makes sure the layer desc describes is stored and verified, and
// returns the descriptor of the stored blob.
func (tx *Tx) writeLayer(img v1.Image, desc v1.Descriptor, diffID v1.Hash) (v1.Descriptor, error) {
	if _, err := layerMediaType(desc.MediaType, compGzip); err != nil {
		return desc, err
	}
	if v, ok := tx.verifiedAs(desc.Digest); ok && v.diffID == diffID {
		desc.MediaType = v.mediaType
		return desc, nil
	}
	var (
		rc    io.ReadCloser
		err   error
		stage = true
	)
	if tx.has(desc.Digest) {
		rc, err = tx.open(desc.Digest)
		stage = false
	} else {
		var l v1.Layer
		if l, err = img.LayerByDigest(desc.Digest); err == nil {
			rc, err = l.Compressed()
		}
	}
	if err != nil {
		return desc, err
	}
	defer rc.Close()
	nd, err := tx.copyLayer(rc, desc, diffID, stage)
	if err != nil {
		return desc, err
	}
	tx.mu.Lock()
	tx.verified[nd.Digest] = verifiedLayer{diffID, nd.MediaType}
	tx.mu.Unlock()
	return nd, nil
}

// verifiedAs returns what is known about a stored or staged layer blob: from
// this transaction, or from the tagged images (loaded on first need).
func (tx *Tx) verifiedAs(h v1.Hash) (verifiedLayer, bool) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if v, ok := tx.verified[h]; ok {
		return v, true
	}
	if _, staged := tx.staged[h]; !staged && !tx.s.HasBlob(h) {
		return verifiedLayer{}, false
	}
	if tx.known == nil {
		tx.known = tx.s.taggedLayers()
	}
	v, ok := tx.known[h]
	return v, ok
}

// taggedLayers maps the layers of tagged images to their diff_ids. Images it
// cannot read are skipped: their layers are then simply verified again.
func (s *Store) taggedLayers() map[v1.Hash]verifiedLayer {
	known := map[v1.Hash]verifiedLayer{}
	idx, err := s.readIndex()
	if err != nil {
		return known
	}
	s.walkManifests(idx.Manifests, func(m *v1.Manifest) {
		raw, err := s.readBlob(m.Config.Digest, maxMetaSize)
		if err != nil {
			return
		}
		cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
		if err != nil || len(cfg.RootFS.DiffIDs) != len(m.Layers) {
			return
		}
		for i, l := range m.Layers {
			if isStoredLayerType(l.MediaType) {
				known[l.Digest] = verifiedLayer{cfg.RootFS.DiffIDs[i], l.MediaType}
			}
		}
	})
	return known
}

// walkManifests calls fn for every readable image manifest that descs, or
// the indexes among them, refer to.
func (s *Store) walkManifests(descs []v1.Descriptor, fn func(*v1.Manifest)) {
	for _, d := range descs {
		raw, err := s.readBlob(d.Digest, maxMetaSize)
		if err != nil {
			continue
		}
		if d.MediaType.IsIndex() {
			if idx, err := v1.ParseIndexManifest(bytes.NewReader(raw)); err == nil {
				s.walkManifests(idx.Manifests, fn)
			}
			continue
		}
		if m, err := v1.ParseManifest(bytes.NewReader(raw)); err == nil {
			fn(m)
		}
	}
}

type compression int

const (
	compNone compression = iota
	compGzip
	compZstd
)

func (c compression) String() string {
	return [...]string{"plain", "gzip", "zstd"}[c]
}

// sniff tells the compression from the first bytes of br.
func sniff(br *bufio.Reader) compression {
	b, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return compGzip
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return compZstd
	}
	return compNone
}

// layerMediaType returns the OCI media type of a layer declared as declared
// once stored with compression c. Only tar layers are accepted.
func layerMediaType(declared types.MediaType, c compression) (types.MediaType, error) {
	const (
		oci            = "application/vnd.oci.image.layer.v1.tar"
		nonDistributed = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	)
	base := strings.TrimSuffix(strings.TrimSuffix(string(declared), "+gzip"), "+zstd")
	switch {
	case base == oci, declared == types.DockerLayer, declared == types.DockerUncompressedLayer:
		base = oci
	case base == nonDistributed, declared == types.DockerForeignLayer:
		base = nonDistributed
	default:
		return "", fmt.Errorf("unsupported layer media type %q", declared)
	}
	return types.MediaType(base + "+" + c.String()), nil
}

// isStoredLayerType reports whether WriteImage stores layers with media type
// mt: only then can a tagged image vouch for a layer.
func isStoredLayerType(mt types.MediaType) bool {
	for _, c := range []compression{compGzip, compZstd} {
		if t, err := layerMediaType(mt, c); err == nil && t == mt {
			return true
		}
	}
	return false
}

// copyLayer reads a layer blob r once: it hashes it, decompresses it, hashes
// and checks the tar, and stages it (when stage is set; a plain tar is always
// staged, gzipped). It returns the descriptor of what is stored.
func (tx *Tx) copyLayer(r io.Reader, desc v1.Descriptor, diffID v1.Hash, stage bool) (_ v1.Descriptor, err error) {
	// An untrusted stream longer than declared is read just far enough to
	// tell it is too long.
	br := bufio.NewReaderSize(ctxReader{tx.ctx, io.LimitReader(r, desc.Size+1)}, 1<<16)
	comp := sniff(br)

	var sf *staging
	var gz *kgzip.Writer
	sink := io.Discard
	if comp == compNone || stage {
		if sf, err = tx.newStaging(); err != nil {
			return desc, err
		}
		defer func() {
			if err != nil {
				sf.discard()
			}
		}()
		sink = sf
		if comp == compNone {
			gz, _ = kgzip.NewWriterLevel(sf, kgzip.DefaultCompression)
			gz.ModTime = time.Unix(0, 0)
			sink = gz
		}
	}
	in := counter{h: sha256.New()}
	// A failure to read the source or to write the staging file (a full disk) is the error to
	// report, not the mismatch of a digest taken over part of the content.
	src, staged := &firstErr{r: br}, &firstErr{w: sink}
	tee := io.TeeReader(src, io.MultiWriter(&in, staged))
	diff := sha256.New()
	streamErr := checkStream(tee, comp, diff)
	// Read what the decompressor left, so that a mismatch is reported as one.
	if _, err := io.Copy(io.Discard, tee); err != nil && streamErr == nil {
		streamErr = err
	}
	if err := tx.ctx.Err(); err != nil {
		return desc, err
	}
	if src.err != nil {
		return desc, fmt.Errorf("read: %w", src.err)
	}
	if staged.err != nil {
		return desc, fmt.Errorf("stage in %s: %w", tx.dir, staged.err)
	}
	if got := in.digest(); got != desc.Digest {
		return desc, fmt.Errorf("content hashes to %s", got)
	}
	if in.n != desc.Size {
		return desc, fmt.Errorf("size %d, manifest says %d", in.n, desc.Size)
	}
	if streamErr != nil {
		return desc, streamErr
	}
	if got := hashOf(diff); got != diffID {
		return desc, fmt.Errorf("uncompressed (%s) content hashes to %s, config says diff_id %s", comp, got, diffID)
	}

	if gz != nil {
		if err := gz.Close(); err != nil {
			return desc, err
		}
		comp = compGzip
		desc.URLs = nil // they name the uncompressed blob
	}
	if desc.MediaType, err = layerMediaType(desc.MediaType, comp); err != nil {
		return desc, err
	}
	if sf != nil {
		if desc.Digest, desc.Size, err = tx.keep(sf); err != nil {
			return desc, err
		}
	}
	return desc, nil
}

// checkStream decompresses r as comp says, hashing the tar into diff and
// running the tar checker over it.
func checkStream(r io.Reader, comp compression, diff hash.Hash) error {
	var tr io.Reader = r
	switch comp {
	case compGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("gunzip: %w", err)
		}
		defer zr.Close()
		tr = zr
	case compZstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return fmt.Errorf("unzstd: %w", err)
		}
		defer zr.Close()
		tr = zr
	}
	tr = io.TeeReader(tr, diff)
	if err := layer.Check(tr); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return fmt.Errorf("decompress %s: %w", comp, err)
	}
	return nil
}

// counter hashes and counts what is written to it.
type counter struct {
	h hash.Hash
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *counter) digest() v1.Hash { return hashOf(c.h) }

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

func sha256Of(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// firstErr is a reader or a writer that keeps the first error it returned other than io.EOF.
type firstErr struct {
	r   io.Reader
	w   io.Writer
	err error
}

func (f *firstErr) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && f.err == nil {
		f.err = err
	}
	return n, err
}

func (f *firstErr) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil && f.err == nil {
		f.err = err
	}
	return n, err
}
