package runspec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Whiteouts as they appear in a layer tar (the OCI form). The layer cache
// stores them the way overlayfs does instead (a 0:0 character device, and the
// xattr trusted.overlay.opaque=y); layerView understands both.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	overlayOpaque  = "trusted.overlay.opaque" // xattr, "y" on an opaque directory
)

// maxImageFile bounds what is read of an image's /etc/passwd or /etc/group:
// the image is not trusted, and no real one comes near.
const maxImageFile = 16 << 20

// errNotDir: a path goes through a file of the image as if it were a directory.
var errNotDir = errors.New("not a directory")

// maxSymlinks is the kernel's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// layerView reads files of the root an overlay of these layer directories
// (top first) would show, without mounting it. Symlinks in the image are
// followed inside the image: an absolute target or ".." never leaves it.
// It checks a path, then opens it: only for directories nothing changes
// meanwhile. A running container's root is read through liveRoot instead.
type layerView []string

// readFile returns the content of the regular file at the absolute image
// path name, or an error wrapping fs.ErrNotExist if the merged root has none.
func (v layerView) readFile(name string) ([]byte, error) {
	full, err := v.resolve(name)
	if err != nil {
		return nil, err
	}
	f, err := openNoFollow(full)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readImageFile(f, name)
}

// readImageFile reads f, the image file name, if it is a regular file of at
// most maxImageFile bytes.
func readImageFile(f *os.File, name string) ([]byte, error) {
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the image: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxImageFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxImageFile {
		return nil, fmt.Errorf("%s in the image: larger than %d bytes", name, maxImageFile)
	}
	return data, nil
}

// resolve finds the host path of the regular file the merged root shows at
// name, following symlinks inside the image.
func (v layerView) resolve(name string) (string, error) {
	links := 0
	pending := splitPath(name)
	dir := "/"
	layers := v.rootLayers()
	for len(pending) > 0 {
		elem := pending[0]
		pending = pending[1:]
		if elem == ".." {
			// Lexical, clamped at the root: the image's root is "/".
			dir = path.Dir(dir)
			pending = append(splitPath(dir), pending...)
			dir, layers = "/", v.rootLayers()
			continue
		}
		child := path.Join(dir, elem)
		top, fi := v.lookup(layers, child)
		switch {
		case fi == nil:
			return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		case fi.Mode()&fs.ModeSymlink != 0:
			if links++; links > maxSymlinks {
				return "", &fs.PathError{Op: "open", Path: name, Err: errors.New("too many levels of symbolic links")}
			}
			target, err := os.Readlink(filepath.Join(top, child))
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(target, "/") {
				dir, layers = "/", v.rootLayers()
			}
			pending = append(splitPath(target), pending...)
		case fi.IsDir():
			dir, layers = child, v.dirLayers(layers, top, child)
		case len(pending) > 0:
			return "", &fs.PathError{Op: "open", Path: name, Err: errNotDir}
		case !fi.Mode().IsRegular():
			return "", fmt.Errorf("%s in the image: not a regular file", name)
		default:
			return filepath.Join(top, child), nil
		}
	}
	return "", fmt.Errorf("%s in the image: a directory", name)
}

// splitPath returns the non-empty, non-"." elements of p.
func splitPath(p string) []string {
	var out []string
	for _, e := range strings.Split(p, "/") {
		if e != "" && e != "." {
			out = append(out, e)
		}
	}
	return out
}

// rootLayers is the layers whose root directory the merged root shows. A
// layer's own path is the caller's and may be a symlink: it is followed.
func (v layerView) rootLayers() []string {
	var out []string
	for _, l := range v {
		fi, err := os.Stat(l)
		if err != nil || !fi.IsDir() {
			continue
		}
		out = append(out, l)
		if isOpaque(l) {
			break
		}
	}
	return out
}

// lookup returns the topmost of layers (the ones that show the parent
// directory of p) that has an entry at p, and that entry. A whiteout of p
// hides the layers below the one that has it (a layer's own entry wins over
// its own whiteout, which only ever applies to lower layers); an opaque
// parent hides them too, and dirLayers already cut the list there.
func (v layerView) lookup(layers []string, p string) (string, fs.FileInfo) {
	for _, l := range layers {
		fi, err := os.Lstat(filepath.Join(l, p))
		if err == nil {
			if isWhiteoutDevice(fi) {
				return "", nil
			}
			return l, fi
		}
		if hasWhiteoutFile(l, p) {
			return "", nil
		}
	}
	return "", nil
}

// dirLayers is the layers, from top (the one lookup found dir in) down,
// whose copy of directory dir the merged root shows: it stops at a whiteout,
// at a non-directory, and after an opaque directory.
func (v layerView) dirLayers(parents []string, top, dir string) []string {
	var out []string
	for i, l := range parents {
		if l != top {
			continue
		}
		for _, l := range parents[i:] {
			fi, err := os.Lstat(filepath.Join(l, dir))
			if err != nil {
				if hasWhiteoutFile(l, dir) {
					break
				}
				continue
			}
			if !fi.IsDir() {
				break // a whiteout device or a file hides the rest
			}
			out = append(out, l)
			if isOpaque(filepath.Join(l, dir)) {
				break
			}
		}
		break
	}
	return out
}

// hasWhiteoutFile reports whether layer l has a tar-form whiteout of p.
func hasWhiteoutFile(l, p string) bool {
	_, err := os.Lstat(filepath.Join(l, path.Dir(p), whiteoutPrefix+path.Base(p)))
	return err == nil
}

// isOpaque reports whether directory dir hides the layers below it: it holds
// the tar-form marker, or has overlayfs's opaque xattr.
func isOpaque(dir string) bool {
	if _, err := os.Lstat(filepath.Join(dir, opaqueMarker)); err == nil {
		return true
	}
	return hasOpaqueXattr(dir)
}
