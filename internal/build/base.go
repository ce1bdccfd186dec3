package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

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
func scratch() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// openBase opens kiln.yaml's base: nothing, an image in the store, or an archive on disk.
func openBase(ctx context.Context, st *store.Store, sp *spec.Spec) (*baseImage, error) {
	b := sp.Base
	switch {
	case b.Scratch():
		return &baseImage{img: scratch()}, nil
	case b.IsPath():
		return openBaseArchive(sp, b)
	}
	d, err := st.Resolve(b.Ref)
	if err != nil {
		return nil, &spec.Error{File: sp.File, Line: b.Line, Field: "base", Err: err}
	}
	img, err := st.Image(d)
	if err != nil {
		return nil, &spec.Error{File: sp.File, Line: b.Line, Field: "base", Err: err}
	}
	return &baseImage{img: img}, nil
}

func openBaseArchive(sp *spec.Spec, b spec.Base) (*baseImage, error) {
	p := b.Ref
	if !filepath.IsAbs(p) {
		p = filepath.Join(sp.Dir, p)
	}
	imgs, cleanup, err := archive.Load(p)
	if err != nil {
		return nil, &spec.Error{File: sp.File, Line: b.Line, Field: "base", Err: err}
	}
	if len(imgs) != 1 {
		cleanup()
		return nil, &spec.Error{File: sp.File, Line: b.Line, Field: "base",
			Err: fmt.Errorf("%s holds %d images, want exactly one", p, len(imgs))}
	}
	return &baseImage{img: imgs[0].Image, cleanup: cleanup}, nil
}

// readFile returns the content of name in img's flattened root, or "" when it is absent.
func readFile(img v1.Image, name string) (string, error) {
	layers, err := img.Layers()
	if err != nil {
		return "", err
	}
	for i := len(layers) - 1; i >= 0; i-- {
		data, state, err := findInLayer(layers[i], name)
		if err != nil {
			return "", err
		}
		switch state {
		case found:
			return data, nil
		case hidden:
			return "", nil
		}
	}
	return "", nil
}

type lookup int

const (
	absent lookup = iota
	found
	hidden // deleted by a whiteout or under an opaque directory
)

func findInLayer(l v1.Layer, name string) (string, lookup, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return "", absent, err
	}
	defer rc.Close()
	dir, base := path.Split(name)
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", absent, nil
		}
		if err != nil {
			return "", absent, err
		}
		n := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		switch {
		case n == name && h.Typeflag == tar.TypeReg:
			b, err := io.ReadAll(io.LimitReader(tr, 1<<20))
			return string(b), found, err
		case n == dir+".wh."+base, n == dir+".wh..wh..opq":
			return "", hidden, nil
		}
	}
}

// baseAccounts reads /etc/passwd and /etc/group of a base image, to append kiln.yaml's accounts.
func baseAccounts(img v1.Image) (passwd, group string, err error) {
	if passwd, err = readFile(img, "etc/passwd"); err != nil {
		return "", "", fmt.Errorf("read /etc/passwd of base: %w", err)
	}
	if group, err = readFile(img, "etc/group"); err != nil {
		return "", "", fmt.Errorf("read /etc/group of base: %w", err)
	}
	return withNewline(passwd), withNewline(group), nil
}

func withNewline(s string) string {
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}
