package build

import (
	"context"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/spec"
)

// stage is a built stage: its image, and once contents take files from it, its root.
type stage struct {
	img  v1.Image
	root *stageRoot
}

// stageRoot is a stage's image seen as one read-only tree, for contents ...from: to copy from.
type stageRoot struct {
	dir string            // where the tree is: /proc/self/fd/N of a detached overlay mount
	id  string            // the image's config digest: its files for the cache key, as stat cannot say
	res *closure.Resolver // resolves binaries and their libraries inside dir, with the stage's PATH
	m   *treeMount
}

// stageRoot returns the function contents use to reach a stage's root, mounting it on first use.
func (b *builder) stageRoot(ctx context.Context) func(name string) (*stageRoot, error) {
	return func(name string) (*stageRoot, error) {
		s := b.stages[name]
		if s == nil {
			return nil, fmt.Errorf("stage %q is not built yet", name) // spec orders stages; a bug if seen
		}
		if s.root != nil {
			return s.root, nil
		}
		r, err := b.mountImage(ctx, s.img)
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", name, err)
		}
		s.root = r
		return r, nil
	}
}

// mountImage unpacks img's layers and mounts them read-only, detached from every mount namespace.
func (b *builder) mountImage(ctx context.Context, img v1.Image) (*stageRoot, error) {
	dirs, err := b.st.Unpack(ctx, img)
	if err != nil {
		return nil, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	m, err := mountLayers(dirs)
	if err != nil {
		return nil, err
	}
	res, err := closure.NewResolver(m.dir)
	if err != nil {
		m.close()
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		m.close()
		return nil, err
	}
	if p := envValue(cf.Config.Env, "PATH"); p != "" {
		res.PATH = strings.Split(p, ":")
	}
	return &stageRoot{dir: m.dir, id: id.String(), res: res, m: m}, nil
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// close unmounts the stages' roots and removes what base archives left.
func (b *builder) close() {
	for _, f := range b.cleanups {
		f()
	}
	for _, s := range b.stages {
		if s.root != nil {
			s.root.m.close()
		}
	}
}

// openBase opens sp's base: a stage built before it, or as openBase says.
func (b *builder) openBase(ctx context.Context, sp *spec.Spec) (*baseImage, error) {
	if sp.Base.Stage {
		s := b.stages[sp.Base.Ref]
		if s == nil {
			return nil, sp.At(sp.Base.Pos, fmt.Errorf("stage %q is not built yet", sp.Base.Ref))
		}
		return &baseImage{img: s.img}, nil
	}
	return openBase(ctx, b.st, sp, b.opts.ResolveBase)
}
