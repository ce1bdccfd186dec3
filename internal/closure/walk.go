package closure

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"syscall"
)

// maxSymlinks is Linux's limit on symlinks followed in one lookup (MAXSYMLINKS); one more is ELOOP.
const maxSymlinks = 40

// link is a symlink met while walking a path.
type link struct{ path, target string }

type walkResult struct {
	links []link
	real  string
	err   error
}

type lstatResult struct {
	mode   fs.FileMode
	target string // for a symlink
	err    error
}

// walk resolves p component by component inside the root, as the kernel would inside a chroot there:
// an absolute symlink target starts again at the root and ".." stops at it, so nothing escapes. It
// returns the symlinks met, in order, and the symlink-free path p ends at. Results are cached.
func (r *Resolver) walk(p string) ([]link, string, error) {
	if w, ok := r.walks[p]; ok {
		return w.links, w.real, w.err
	}
	links, real, err := r.walkUncached(p)
	r.walks[p] = walkResult{links, real, err}
	return links, real, err
}

func (r *Resolver) walkUncached(p string) ([]link, string, error) {
	var links []link
	cur := "/"
	rest := splitPath(p)
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		if name == ".." {
			cur = path.Dir(cur) // cur has no symlinks left, so this is where ".." leads
			continue
		}
		next := path.Join(cur, name)
		st := r.lstat(next)
		switch {
		case st.err != nil:
			return nil, "", st.err
		case st.mode&fs.ModeSymlink != 0:
			if len(links) == maxSymlinks {
				return nil, "", &fs.PathError{Op: "walk", Path: p, Err: syscall.ELOOP}
			}
			links = append(links, link{next, st.target})
			if path.IsAbs(st.target) {
				cur = "/"
			}
			rest = append(splitPath(st.target), rest...)
		case len(rest) > 0 && !st.mode.IsDir():
			return nil, "", &fs.PathError{Op: "walk", Path: next, Err: syscall.ENOTDIR}
		default:
			cur = next
		}
	}
	return links, cur, nil
}

// splitPath returns the names in p, without the empty and "." ones, which change nothing.
func splitPath(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" && s != "." {
			out = append(out, s)
		}
	}
	return out
}

// lstat is a cached lstat (plus readlink) of p under the root; errors name p, not the host path.
func (r *Resolver) lstat(p string) lstatResult {
	if st, ok := r.stats[p]; ok {
		return st
	}
	var st lstatResult
	var err error
	st.mode, st.target, err = r.dir.lstat(p)
	st.err = renamePathError(err, p)
	r.stats[p] = st
	return st
}

// renamePathError makes a *fs.PathError about a host path name the path under the root instead.
func renamePathError(err error, p string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: p, Err: pe.Err}
	}
	return err
}

// readFile reads the file p under the root, following symlinks inside the root.
func (r *Resolver) readFile(p string) ([]byte, error) {
	_, real, err := r.walk(p)
	if err != nil {
		return nil, err
	}
	f, err := r.dir.open(real)
	if err != nil {
		return nil, renamePathError(err, real)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return b, renamePathError(err, real)
}

// isDir reports whether p under the root is, or leads to, a directory.
func (r *Resolver) isDir(p string) bool {
	_, real, err := r.walk(p)
	return err == nil && r.lstat(real).mode.IsDir()
}

// Real returns the path p (absolute, under the root) ends at once every symlink on the way is
// followed inside the root, as the kernel would in a chroot there.
func (r *Resolver) Real(p string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !path.IsAbs(p) {
		return "", fmt.Errorf("closure: %s: not an absolute path", p)
	}
	_, real, err := r.walk(path.Clean(p))
	if err != nil {
		return "", fmt.Errorf("closure: %w", err)
	}
	return real, nil
}
