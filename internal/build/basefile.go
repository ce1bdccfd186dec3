package build

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// maxAccountFile bounds what is read of a base image's /etc/passwd or /etc/group.
const maxAccountFile = 1 << 20

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

// readFile returns the content of the regular file name ("etc/passwd": clean, relative) in img's
// flattened root, or "" when it is absent. Layers are read from the top: the first that has the
// file gives it; the first that deletes or hides it ends the search.
func readFile(img v1.Image, name string) (string, error) {
	layers, err := img.Layers()
	if err != nil {
		return "", err
	}
	for i := len(layers) - 1; i >= 0; i-- {
		data, state, err := findInLayer(layers[i], name)
		if err != nil {
			d, _ := layers[i].Digest()
			return "", fmt.Errorf("layer %s: %w", d, err)
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
	hidden // lower layers' copy is deleted or replaced by this layer
)

// findInLayer looks for name in one layer, following a hardlink to another file of the layer.
func findInLayer(l v1.Layer, name string) (string, lookup, error) {
	v, err := scanLayer(l, name)
	for hops := 0; err == nil && v.typ == tar.TypeLink; hops++ {
		if hops == maxLinks {
			return "", absent, fmt.Errorf("/%s: more than %d hardlinks", name, maxLinks)
		}
		target := v.link
		if v, err = scanLayer(l, target); err == nil && v.typ == 0 {
			err = fmt.Errorf("/%s: hardlink to /%s, which the layer lacks", name, target)
		}
	}
	switch {
	case err != nil:
		return "", absent, err
	case v.typ == tar.TypeReg:
		return string(v.data), found, nil
	case v.typ != 0:
		return "", absent, fmt.Errorf("/%s is not a regular file (tar type %q)", name, v.typ)
	case v.hides:
		return "", hidden, nil
	}
	return "", absent, nil
}

// layerView is what one layer says about a path.
type layerView struct {
	typ   byte   // tar type of the last entry at the path; 0 when none
	link  string // its hardlink target, clean and relative
	data  []byte // its content, when a regular file
	hides bool   // a whiteout, an opaque directory or a non-directory ancestor hides lower layers' copy
}

// scanLayer reads the whole layer: whiteouts and opaque markers may come before or after the path.
func scanLayer(l v1.Layer, name string) (layerView, error) {
	var v layerView
	rc, err := l.Uncompressed()
	if err != nil {
		return v, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return v, nil
		}
		if err != nil {
			return v, err
		}
		n := cleanName(h.Name)
		switch {
		case n == name:
			if err := v.set(h, tr); err != nil {
				return v, err
			}
		case hides(n, h.Typeflag, name):
			v.hides = true
		}
	}
}

func (v *layerView) set(h *tar.Header, r io.Reader) error {
	v.typ, v.link, v.data = h.Typeflag, "", nil
	switch h.Typeflag {
	case tar.TypeLink:
		v.link = cleanName(h.Linkname)
	case tar.TypeReg:
		if h.Size > maxAccountFile {
			return fmt.Errorf("/%s is %d bytes, more than %d", cleanName(h.Name), h.Size, maxAccountFile)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read /%s: %w", cleanName(h.Name), err)
		}
		v.data = data
	}
	return nil
}

// hides reports whether the layer entry n (of tar type typ) hides lower layers' copy of name.
func hides(n string, typ byte, name string) bool {
	dir, base := path.Split(n)
	switch {
	case base == ".wh..wh..opq": // an opaque directory: lower layers' content of dir is gone
		return strings.HasPrefix(name, dir)
	case strings.HasPrefix(base, ".wh."): // a whiteout of name or of a directory above it
		gone := dir + strings.TrimPrefix(base, ".wh.")
		return name == gone || strings.HasPrefix(name, gone+"/")
	}
	return typ != tar.TypeDir && strings.HasPrefix(name, n+"/") // a file replaces a directory
}

func cleanName(n string) string { return strings.TrimPrefix(path.Clean("/"+n), "/") }
