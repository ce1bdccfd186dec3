package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-project/kiln/internal/store"
)

// Pusher sends images from the store to registries.
type Pusher struct {
	Options
}

// Pushed is what Push sent.
type Pushed struct {
	Ref      string  // the reference pushed, in full
	Digest   v1.Hash // the manifest digest, the same in the store and in the registry
	Layers   int     // layers in the image
	Uploaded int     // layers sent
	Mounted  int     // layers mounted from another repository of the registry
	Existing int     // layers the repository had
	Bytes    int64   // bytes sent
}

// Push sends the stored image (a store reference: "name:tag", a digest or a prefix) to ref, or
// to image itself when ref is empty. The manifest goes byte for byte, so the registry's digest
// is the store's. Layers the repository has are not sent (go-containerregistry asks first); a
// layer that a store tag says came from another repository of the same registry is mounted
// from there instead of uploaded, when the registry allows.
func (p *Pusher) Push(ctx context.Context, st *store.Store, image, ref string) (*Pushed, error) {
	if ref == "" {
		ref = image
	}
	r, err := p.parseReference(ref)
	if err != nil {
		return nil, &Error{Op: "push", Ref: ref, Err: err}
	}
	d, err := st.Resolve(image)
	if err != nil {
		return nil, &Error{Op: "push", Ref: image, Err: err}
	}
	if dr, ok := r.(name.Digest); ok && dr.DigestStr() != d.String() {
		return nil, &Error{Op: "push", Ref: ref, Err: fmt.Errorf("the image's digest is %s", d)}
	}
	img, err := st.Image(d)
	if err != nil {
		return nil, &Error{Op: "push", Ref: image, Err: err}
	}
	res, err := p.push(ctx, st, img, r)
	if err != nil {
		return nil, &Error{Op: "push", Ref: ref, Err: p.explain(err, r.Context().RegistryStr())}
	}
	res.Digest = d
	return res, nil
}

func (p *Pusher) push(ctx context.Context, st *store.Store, img v1.Image, r name.Reference) (*Pushed, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	t := newTally(&p.Options, m.Layers)
	opts, err := p.remoteOptions(ctx, r.Context().Registry, t.observe)
	if err != nil {
		return nil, err
	}
	sources := p.mountSources(st, r.Context(), m.Layers)
	wrapped := &pushImage{Image: img, wrap: func(l v1.Layer) (v1.Layer, error) {
		h, err := l.Digest()
		if err != nil {
			return nil, err
		}
		desc, ok := t.layers[h]
		if !ok {
			return l, nil // the config
		}
		var out v1.Layer = &countedLayer{Layer: l, o: &p.Options, desc: desc}
		if src, ok := sources[h]; ok {
			out = &remote.MountableLayer{Layer: out, Reference: src}
		}
		return out, nil
	}}
	if err := remote.Write(r, wrapped, opts...); err != nil {
		return nil, err
	}
	return t.result(r), nil
}

// mountSources maps the layers of m to a repository of dst's registry that, by a store tag,
// has them: images pulled from there, or tagged for it.
func (p *Pusher) mountSources(st *store.Store, dst name.Repository, layers []v1.Descriptor) map[v1.Hash]name.Reference {
	want := map[v1.Hash]bool{}
	for _, l := range layers {
		want[l.Digest] = true
	}
	sources := map[v1.Hash]name.Reference{}
	tags, err := st.List()
	if err != nil {
		return sources
	}
	for _, t := range tags {
		r, err := name.ParseReference(t.Ref, p.nameOptions()...)
		if err != nil || r.Context().RegistryStr() != dst.RegistryStr() || r.Context().RepositoryStr() == dst.RepositoryStr() {
			continue
		}
		img, err := st.Image(t.Digest)
		if err != nil {
			continue
		}
		m, err := img.Manifest()
		if err != nil {
			continue
		}
		for _, l := range m.Layers {
			if _, seen := sources[l.Digest]; want[l.Digest] && !seen {
				sources[l.Digest] = r
			}
		}
	}
	return sources
}

// pushImage is a stored image whose layers are wrapped for progress and mounting.
type pushImage struct {
	v1.Image
	wrap func(v1.Layer) (v1.Layer, error)
}

func (i *pushImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for n, l := range ls {
		if out[n], err = i.wrap(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (i *pushImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := i.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return i.wrap(l)
}

// countedLayer reports the bytes read from it as they are sent.
type countedLayer struct {
	v1.Layer
	o    *Options
	desc v1.Descriptor
}

func (l *countedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	l.o.report(Event{Layer: l.desc.Digest, Size: l.desc.Size, State: Moving})
	return &counter{rc: rc, o: l.o, desc: l.desc}, nil
}

// Descriptor keeps the stored descriptor (annotations, URLs) in what is pushed.
func (l *countedLayer) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(l.Layer) }

// tally learns from the registry's answers what happened to each layer.
type tally struct {
	o      *Options
	layers map[v1.Hash]v1.Descriptor
	mu     sync.Mutex
	state  map[v1.Hash]State
}

func newTally(o *Options, layers []v1.Descriptor) *tally {
	t := &tally{o: o, layers: map[v1.Hash]v1.Descriptor{}, state: map[v1.Hash]State{}}
	for _, l := range layers {
		t.layers[l.Digest] = l
		o.report(Event{Layer: l.Digest, Size: l.Size, State: Waiting})
	}
	return t
}

// observe reads the three answers that settle a blob: HEAD .../blobs/DIGEST 200 (the repository
// has it), POST .../blobs/uploads/?mount=DIGEST 201 (mounted), PUT ...?digest=DIGEST 201
// (uploaded).
func (t *tally) observe(req *http.Request, resp *http.Response) {
	var h v1.Hash
	var st State
	var err error
	switch {
	case req.Method == http.MethodHead && resp.StatusCode == http.StatusOK && strings.Contains(req.URL.Path, "/blobs/"):
		h, err = v1.NewHash(req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:])
		st = Skipped
	case req.Method == http.MethodPost && resp.StatusCode == http.StatusCreated && req.URL.Query().Get("mount") != "":
		h, err = v1.NewHash(req.URL.Query().Get("mount"))
		st = Mounted
	case req.Method == http.MethodPut && resp.StatusCode == http.StatusCreated && req.URL.Query().Get("digest") != "":
		h, err = v1.NewHash(req.URL.Query().Get("digest"))
		st = Finished
	default:
		return
	}
	d, ok := t.layers[h]
	if err != nil || !ok {
		return
	}
	t.mu.Lock()
	t.state[h] = st
	t.mu.Unlock()
	t.o.report(Event{Layer: h, Size: d.Size, Done: d.Size, State: st})
}

func (t *tally) result(r name.Reference) *Pushed {
	t.mu.Lock()
	defer t.mu.Unlock()
	res := &Pushed{Ref: r.Name(), Layers: len(t.layers)}
	for h, d := range t.layers {
		switch t.state[h] {
		case Finished:
			res.Uploaded++
			res.Bytes += d.Size
		case Mounted:
			res.Mounted++
		default:
			// Skipped, or never asked about: the manifest was there already.
			res.Existing++
			if _, ok := t.state[h]; !ok {
				t.o.report(Event{Layer: h, Size: d.Size, State: Skipped})
			}
		}
	}
	return res
}
