package build

import (
	"context"
	"fmt"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/archive"
	"github.com/kiln-project/kiln/internal/spec"
	"github.com/kiln-project/kiln/internal/store"
)

// baseImage is what a build starts from.
type baseImage struct {
	img     v1.Image
	cleanup func()
}

// scratch is the empty OCI image.
func scratch() v1.Image { return ociImage(empty.Image) }

// ociImage gives img OCI manifest and config media types. Its layers keep theirs: the store's
// WriteImage gives every layer its OCI media type when it stores the image.
func ociImage(img v1.Image) v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// openBase opens kiln.yaml's base: nothing, an image in the store, or an archive on disk, as an
// OCI image.
func openBase(ctx context.Context, st *store.Store, sp *spec.Spec, resolve ResolveFunc) (*baseImage, error) {
	b := sp.Base
	switch {
	case b.Scratch():
		return &baseImage{img: scratch()}, nil
	case b.IsPath():
		return openBaseArchive(sp, b)
	}
	if resolve == nil {
		resolve = func(_ context.Context, ref string) (v1.Hash, error) { return st.Resolve(ref) }
	}
	d, err := resolve(ctx, b.Ref)
	if err != nil {
		return nil, &spec.Error{File: sp.File, Line: b.Line, Field: b.Field, Err: err}
	}
	img, err := st.Image(d)
	if err != nil {
		return nil, &spec.Error{File: sp.File, Line: b.Line, Field: b.Field, Err: err}
	}
	return &baseImage{img: ociImage(img)}, nil
}

func openBaseArchive(sp *spec.Spec, b spec.Base) (*baseImage, error) {
	p := b.Ref
	if !filepath.IsAbs(p) {
		p = filepath.Join(sp.Dir, p)
	}
	imgs, cleanup, err := archive.Load(p)
	if err != nil {
		return nil, &spec.Error{File: sp.File, Line: b.Line, Field: b.Field, Err: err}
	}
	if len(imgs) != 1 {
		cleanup()
		return nil, &spec.Error{File: sp.File, Line: b.Line, Field: b.Field,
			Err: fmt.Errorf("%s holds %d images, want exactly one", p, len(imgs))}
	}
	return &baseImage{img: ociImage(imgs[0].Image), cleanup: cleanup}, nil
}
