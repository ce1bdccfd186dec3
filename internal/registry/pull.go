package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-project/kiln/internal/store"
)

// Puller fetches images from registries into the store.
type Puller struct {
	Options
	// Platform picks the image of a multi-platform index; the zero value means linux/amd64.
	// An empty Variant matches any variant.
	Platform v1.Platform
}

// Pulled is what Pull stored.
type Pulled struct {
	Ref            string  // the reference pulled, in full: "index.docker.io/library/alpine:3"
	Tag            string  // the store tag the image is kept under (see LocalName)
	Digest         v1.Hash // the stored manifest (differs from RegistryDigest for Docker media types)
	RegistryDigest v1.Hash // the manifest, or multi-platform index, the registry served
	Platform       string  // the platform picked from an index; "" when the registry had an image
	Layers         int     // layers in the image
	Fetched        int     // layers that came over the network (the others were in the store)
	Bytes          int64   // bytes fetched
}

// Pull fetches ref ("host:port/repo:tag", "host/repo@sha256:...", "alpine") into st and tags it
// LocalName(ref). Layers are fetched in parallel and each is verified by the store (digest,
// size, diff_id, safe to extract) before it is kept; a layer the store has is not fetched.
//
// Each verified layer is published to the store as soon as it is complete, so a pull that is
// interrupted or killed keeps the layers it finished and the next pull of any image with those
// layers does not fetch them again; the image appears, tagged, only when all of it is there.
// Until then those layers are untagged blobs that `kiln gc` removes. A layer that fails
// verification is never kept.
func (p *Puller) Pull(ctx context.Context, st *store.Store, ref string) (*Pulled, error) {
	r, err := p.parseReference(ref)
	if err != nil {
		return nil, &Error{Op: "pull", Ref: ref, Err: err}
	}
	res, err := p.pull(ctx, st, r)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted (%w): the layers fetched so far are kept; pull again to finish", ctx.Err())
	}
	if err != nil {
		return nil, &Error{Op: "pull", Ref: ref, Err: p.explain(err, r.Context().RegistryStr())}
	}
	return res, nil
}

func (p *Puller) pull(ctx context.Context, st *store.Store, r name.Reference) (*Pulled, error) {
	// Cancelled when a layer fails, so that the other downloads stop.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts, err := p.remoteOptions(ctx, r.Context().Registry, nil)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, err
	}
	res := &Pulled{Ref: r.Name(), Tag: LocalNameOf(r), RegistryDigest: desc.Digest}
	img, err := p.resolve(r.Context(), desc, opts, res, 0)
	if err != nil {
		return nil, err
	}
	m, cfg, err := readImage(img)
	if err != nil {
		return nil, err
	}
	res.Layers = len(m.Layers)
	tx, err := st.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Abort()
	if err := p.fetchLayers(ctx, cancel, tx, img, m, cfg, res); err != nil {
		return nil, err
	}
	if res.Digest, err = tx.WriteImage(img); err != nil {
		return nil, err
	}
	if err := tx.Tag(res.Tag, res.Digest); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// resolve returns the image desc names: itself, or the child of an index for p's platform.
func (p *Puller) resolve(repo name.Repository, desc *remote.Descriptor, opts []remote.Option, res *Pulled, depth int) (v1.Image, error) {
	if !knownManifestType(desc.MediaType) {
		// Some registries send a generic Content-Type: trust the document's own mediaType
		// when it names a type kiln knows.
		var probe struct {
			MediaType types.MediaType `json:"mediaType"`
		}
		if json.Unmarshal(desc.Manifest, &probe) == nil && knownManifestType(probe.MediaType) {
			desc.MediaType = probe.MediaType
		}
	}
	switch desc.MediaType {
	case types.OCIManifestSchema1, types.DockerManifestSchema2:
		return desc.Image()
	case types.OCIImageIndex, types.DockerManifestList:
	default:
		return nil, fmt.Errorf("%w: media type %q is not an OCI or Docker image manifest or index", ErrUnsupported, desc.MediaType)
	}
	if depth > 3 {
		return nil, fmt.Errorf("%w: indexes nested deeper than %d", ErrUnsupported, depth)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	want := p.platform()
	child, err := pickPlatform(im.Manifests, want)
	if err != nil {
		return nil, err
	}
	res.Platform = want.String()
	if child.Platform != nil {
		res.Platform = child.Platform.String()
	}
	cd, err := remote.Get(repo.Digest(child.Digest.String()), opts...)
	if err != nil {
		return nil, err
	}
	return p.resolve(repo, cd, opts, res, depth+1)
}

func knownManifestType(mt types.MediaType) bool {
	switch mt {
	case types.OCIManifestSchema1, types.DockerManifestSchema2, types.OCIImageIndex, types.DockerManifestList:
		return true
	}
	return false
}

func (p *Puller) platform() v1.Platform {
	if p.Platform.OS == "" {
		return v1.Platform{OS: "linux", Architecture: "amd64"}
	}
	return p.Platform
}

// pickPlatform returns the first manifest in an index for want. A child without a platform is
// taken to be linux/amd64, as go-containerregistry and Docker do; attestations
// (unknown/unknown) never match.
func pickPlatform(children []v1.Descriptor, want v1.Platform) (v1.Descriptor, error) {
	var have []string
	for _, c := range children {
		if !c.MediaType.IsImage() && !c.MediaType.IsIndex() {
			continue
		}
		pl := v1.Platform{OS: "linux", Architecture: "amd64"}
		if c.Platform != nil {
			pl = *c.Platform
		}
		if pl.Satisfies(want) {
			return c, nil
		}
		if pl.OS != "unknown" {
			have = append(have, pl.String())
		}
	}
	slices.Sort(have)
	return v1.Descriptor{}, fmt.Errorf("%w: no image for %s in the index (it has %s)", ErrNotFound, want, strings.Join(slices.Compact(have), ", "))
}

// readImage reads and checks what the layer fetches need from the manifest and config. The
// store verifies both again when it writes the image.
func readImage(img v1.Image) (*v1.Manifest, *v1.ConfigFile, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	if mt := m.Config.MediaType; mt != types.OCIConfigJSON && mt != types.DockerConfigJSON {
		return nil, nil, fmt.Errorf("%w: config media type %q: an artifact, not a container image", ErrUnsupported, mt)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, nil, fmt.Errorf("config %s: %d diff_ids for %d layers", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	return m, cfg, nil
}

// fetchLayers fetches the layers the store lacks, Jobs at a time, publishing each as it
// completes. The first failure cancels the others.
func (p *Puller) fetchLayers(ctx context.Context, cancel context.CancelFunc, tx *store.Tx, img v1.Image, m *v1.Manifest, cfg *v1.ConfigFile, res *Pulled) error {
	for _, d := range m.Layers {
		p.report(Event{Layer: d.Digest, Size: d.Size, State: Waiting})
	}
	var fetched, bytes atomic.Int64
	var g errgroup.Group
	g.SetLimit(p.jobs())
	for i, d := range m.Layers {
		if isPlainTar(d.MediaType) {
			// Stored gzipped under another digest: WriteImage fetches it (once).
			continue
		}
		g.Go(func() error {
			n, err := p.fetchLayer(ctx, tx, img, d, cfg.RootFS.DiffIDs[i])
			if err != nil {
				cancel()
				return err
			}
			if n > 0 {
				fetched.Add(1)
				bytes.Add(n)
			}
			return nil
		})
	}
	err := g.Wait()
	res.Fetched, res.Bytes = int(fetched.Load()), bytes.Load()
	return err
}

func isPlainTar(mt types.MediaType) bool {
	return mt == types.DockerUncompressedLayer || mt == types.OCIUncompressedLayer ||
		mt == types.OCIUncompressedRestrictedLayer
}

// fetchLayer stores and publishes one layer, starting it over after a transient failure. It
// returns the bytes fetched: 0 when the store had the layer.
func (p *Puller) fetchLayer(ctx context.Context, tx *store.Tx, img v1.Image, d v1.Descriptor, diffID v1.Hash) (int64, error) {
	b := p.backoff()
	for attempt := 1; ; attempt++ {
		var src *counter
		nd, err := tx.WriteLayer(d, diffID, func() (io.ReadCloser, error) {
			l, err := img.LayerByDigest(d.Digest)
			if err != nil {
				return nil, err
			}
			rc, err := l.Compressed()
			if err != nil {
				return nil, err
			}
			p.report(Event{Layer: d.Digest, Size: d.Size, State: Moving})
			src = &counter{rc: rc, o: &p.Options, desc: d}
			return src, nil
		})
		if err == nil {
			if err := tx.Publish(nd.Digest); err != nil {
				return 0, err
			}
			if src == nil {
				p.report(Event{Layer: d.Digest, Size: d.Size, State: Skipped})
				return 0, nil
			}
			p.report(Event{Layer: d.Digest, Size: d.Size, Done: src.n, State: Finished})
			return src.n, nil
		}
		if src != nil && src.err != nil {
			// The store saw short or wrong content; the read error says why.
			err = fmt.Errorf("layer %s: %w", d.Digest, src.err)
		}
		if attempt >= b.Steps || ctx.Err() != nil || !isTransient(err) {
			p.report(Event{Layer: d.Digest, Size: d.Size, State: Failed, Err: err})
			return 0, err
		}
		p.report(Event{Layer: d.Digest, Size: d.Size, State: Retrying, Err: err})
		p.logger().Debug("retrying layer", "layer", d.Digest, "cause", err)
		if err := sleep(ctx, step(&b)); err != nil {
			return 0, err
		}
	}
}

// LocalName is the store tag a registry reference is kept under: Docker Hub images by their
// short name ("alpine:3", "user/app:1"), others in full ("127.0.0.1:5000/team/app:1"). A digest
// reference "host/repo@sha256:HEX" becomes the tag "host/repo:sha256-HEX": the registry's
// digest can differ from the stored one (the store keeps OCI media types), and an image needs a
// tag to be kept.
func LocalName(ref string) (string, error) {
	r, err := (&Options{}).parseReference(ref)
	if err != nil {
		return "", err
	}
	return LocalNameOf(r), nil
}

// LocalNameOf is LocalName of a parsed reference.
func LocalNameOf(r name.Reference) string {
	repo := r.Context()
	n := repo.RegistryStr() + "/" + repo.RepositoryStr()
	if repo.RegistryStr() == name.DefaultRegistry {
		n = strings.TrimPrefix(repo.RepositoryStr(), "library/")
	}
	if d, ok := r.(name.Digest); ok {
		return n + ":" + strings.Replace(d.DigestStr(), ":", "-", 1)
	}
	return n + ":" + r.Identifier()
}
