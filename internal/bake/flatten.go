package bake

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// OCI whiteouts (image-spec layer.md): .wh.NAME hides NAME of the layers below; .wh..wh..opq
// hides every entry below in its directory.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// node is one inode of the flattened root. Hard links are several paths sharing one *node.
type node struct {
	mode       uint32 // cpio mode: type and permission bits
	uid, gid   int
	mtime      int64
	target     string // symlink
	devMajor   uint32
	devMinor   uint32
	data       []byte // regular file
	fromLayers bool   // false: added by the bake (init, config, modules, missing parents)
}

func (n *node) isDir() bool { return n.mode&0o170000 == modeDir }

// tree is a flattened root: clean relative paths ("usr/bin/curl") to nodes; the root itself is
// not in it.
type tree map[string]*node

// flatten applies img's layers in order, whiteouts included, and returns the root they make.
func flatten(ctx context.Context, img v1.Image) (tree, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	t := tree{}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := t.applyLayer(l); err != nil {
			d, _ := l.DiffID()
			return nil, fmt.Errorf("layer %d (%s): %w", i, d, err)
		}
	}
	return t, nil
}

// layerEntry is a tar entry with its content read.
type layerEntry struct {
	hdr  *tar.Header
	name string // clean, relative
	data []byte
}

func (t tree) applyLayer(l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	entries, err := readLayer(rc)
	if err != nil {
		return err
	}
	// Whiteouts hide what the layers below have, whatever their place in this layer's tar.
	for _, e := range entries {
		dir, base := path.Split(e.name)
		switch {
		case base == opaqueMarker:
			t.removeChildren(strings.TrimSuffix(dir, "/"))
		case strings.HasPrefix(base, whiteoutPrefix):
			t.remove(dir + strings.TrimPrefix(base, whiteoutPrefix))
		}
	}
	for _, e := range entries {
		if strings.HasPrefix(path.Base(e.name), whiteoutPrefix) {
			continue
		}
		if err := t.add(e); err != nil {
			return fmt.Errorf("%s: %w", e.hdr.Name, err)
		}
	}
	return nil
}

func readLayer(r io.Reader) ([]layerEntry, error) {
	tr := tar.NewReader(r)
	var out []layerEntry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue // the root: kiln-init's rootfs is the kernel's
		}
		e := layerEntry{hdr: hdr, name: name}
		if hdr.Typeflag == tar.TypeReg {
			if e.data, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
		out = append(out, e)
	}
}

// cleanName turns a tar name into a clean relative path; "" is the root.
func cleanName(name string) (string, error) {
	p := path.Clean("/" + name)
	if slices.Contains(strings.Split(name, "/"), "..") {
		return "", fmt.Errorf("%s: path with ..", name)
	}
	return strings.TrimPrefix(p, "/"), nil
}

// remove drops p and everything under it.
func (t tree) remove(p string) {
	delete(t, p)
	t.removeChildren(p)
}

func (t tree) removeChildren(dir string) {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	for k := range t {
		if strings.HasPrefix(k, prefix) {
			delete(t, k)
		}
	}
}

func (t tree) add(e layerEntry) error {
	if err := t.parents(e.name, e.hdr.ModTime.Unix()); err != nil {
		return err
	}
	h := e.hdr
	if h.Typeflag == tar.TypeLink {
		target, err := cleanName(h.Linkname)
		if err != nil {
			return err
		}
		n, ok := t[target]
		if !ok || n.mode&0o170000 != modeReg {
			return fmt.Errorf("hard link to %s, which is not a regular file of the image", h.Linkname)
		}
		t.replace(e.name, n)
		return nil
	}
	n := &node{uid: h.Uid, gid: h.Gid, mtime: h.ModTime.Unix(), fromLayers: true,
		mode: uint32(h.Mode) & 0o7777}
	switch h.Typeflag {
	case tar.TypeReg:
		n.mode |= modeReg
		n.data = e.data
	case tar.TypeDir:
		n.mode |= modeDir
	case tar.TypeSymlink:
		n.mode |= modeLink
		n.target = h.Linkname
	case tar.TypeChar, tar.TypeBlock:
		n.mode |= map[byte]uint32{tar.TypeChar: modeChar, tar.TypeBlock: modeBlk}[h.Typeflag]
		n.devMajor, n.devMinor = uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		n.mode |= modeFIFO
	default:
		return fmt.Errorf("unsupported tar entry type %q", h.Typeflag)
	}
	t.replace(e.name, n)
	return nil
}

// replace puts n at p: a directory over a directory keeps what is under it, anything else
// replaces the whole subtree.
func (t tree) replace(p string, n *node) {
	if old, ok := t[p]; !ok || !old.isDir() || !n.isDir() {
		t.removeChildren(p)
	}
	t[p] = n
}

var errUnderSymlink = errors.New("path under a symbolic link")

// parents checks the parents of p are directories, adding missing ones (0755, root).
func (t tree) parents(p string, mtime int64) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	if err := t.parents(dir, mtime); err != nil {
		return err
	}
	n, ok := t[dir]
	switch {
	case !ok:
		t[dir] = &node{mode: modeDir | 0o755, mtime: mtime}
	case n.mode&0o170000 == modeLink:
		return fmt.Errorf("%s: %w %s", p, errUnderSymlink, dir)
	case !n.isDir():
		return fmt.Errorf("%s: %s is not a directory", p, dir)
	}
	return nil
}

// readFile returns the content of the regular file at p, following symbolic links inside the
// tree; ok is false if there is none.
func (t tree) readFile(p string) ([]byte, bool) {
	for range 40 {
		n, ok := t[p]
		if !ok {
			return nil, false
		}
		switch n.mode & 0o170000 {
		case modeReg:
			return n.data, true
		case modeLink:
			target := n.target
			if !path.IsAbs(target) {
				target = path.Join(path.Dir("/"+p), target)
			}
			p = strings.TrimPrefix(path.Clean("/"+target), "/")
		default:
			return nil, false
		}
	}
	return nil, false
}
