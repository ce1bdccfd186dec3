package build

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
)

// collected is everything the contents section puts in the image.
type collected struct {
	entries []layer.Entry
	env     []string // variables the helpers need, e.g. SSL_CERT_FILE

	basePasswd, baseGroup string // the base image's account files, kept when accounts are added
}

func (c *collected) add(e ...layer.Entry) { c.entries = append(c.entries, e...) }

// collect turns the contents and accounts of sp into layer entries, reading only the host.
func collect(sp *spec.Spec, base *baseImage) (*collected, error) {
	c := &collected{}
	if !sp.Base.Scratch() && (len(sp.Accounts.Users) > 0 || len(sp.Accounts.Groups) > 0) {
		p, g, err := baseAccounts(base.img)
		if err != nil {
			return nil, err
		}
		c.basePasswd, c.baseGroup = p, g
	}
	res, err := closure.NewResolver("/")
	if err != nil {
		return nil, err
	}
	steps := []func(*spec.Spec, *collected, *closure.Resolver) error{
		addBinaries, addFiles, addTrees, addLinksAndDirs, addCertificates, addNSS, addTimezone, addAccounts,
	}
	for _, step := range steps {
		if err := step(sp, c, res); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func specErr(sp *spec.Spec, p spec.Pos, field string, err error) error {
	f := p.Field
	if field != "" {
		f += "." + field
	}
	return &spec.Error{File: sp.File, Line: p.Line, Field: f, Err: err}
}

func origin(sp *spec.Spec, p spec.Pos) string {
	return fmt.Sprintf("%s (%s:%d)", p.Field, filepath.Base(sp.File), p.Line)
}

func addBinaries(sp *spec.Spec, c *collected, res *closure.Resolver) error {
	for _, b := range sp.Contents.Binaries {
		src := b.Src
		if !strings.Contains(src, "/") {
			p, err := res.Lookup(src)
			if err != nil {
				return specErr(sp, b.Pos, "src", err)
			}
			src = p
		}
		files, err := res.Resolve(src)
		if err != nil {
			return specErr(sp, b.Pos, "src", err)
		}
		dst := b.Dst
		if dst == "" {
			dst = defaultDst(sp, src)
		}
		if err := addClosure(sp, c, b.Pos, src, dst, files); err != nil {
			return err
		}
	}
	return nil
}

// defaultDst is where a binary goes when kiln.yaml does not say: its host path, except for a
// program from the build directory, which goes to /usr/local/bin.
func defaultDst(sp *spec.Spec, src string) string {
	if inDir(sp.Dir, src) {
		return "/usr/local/bin/" + filepath.Base(src)
	}
	return src
}

func inDir(dir, p string) bool { return strings.HasPrefix(p, dir+string(filepath.Separator)) }

// addClosure adds a binary's closure at the host paths. When the binary goes elsewhere
// (dst != src) it is copied there as a regular file, its own symlink chain is left out, and the
// files it brings from the build directory keep their place relative to it, so $ORIGIN still works.
func addClosure(sp *spec.Spec, c *collected, p spec.Pos, src, dst string, files []closure.File) error {
	real := src
	if dst != src {
		r, err := filepath.EvalSymlinks(src)
		if err != nil {
			return specErr(sp, p, "src", err)
		}
		real = r
		c.add(layer.Entry{Path: dst, Kind: layer.Regular, Source: r, Origin: origin(sp, p)})
	}
	for _, f := range files {
		if dst != src && (f.Path == src || f.Path == real) {
			continue
		}
		e := layer.Entry{Path: f.Path, Origin: origin(sp, p) + ": " + f.Origin}
		if dst != src && inDir(sp.Dir, f.Path) {
			rel, _ := filepath.Rel(filepath.Dir(src), f.Path)
			e.Path = path.Join(path.Dir(dst), filepath.ToSlash(rel))
		}
		if f.Target != "" {
			e.Kind, e.Target, e.Mode = layer.Symlink, f.Target, 0o777
		} else {
			e.Kind, e.Source = layer.Regular, f.Path
		}
		c.add(e)
	}
	return nil
}

func addFiles(sp *spec.Spec, c *collected, _ *closure.Resolver) error {
	for _, f := range sp.Contents.Files {
		fi, err := os.Stat(f.Src)
		if err != nil {
			return specErr(sp, f.Pos, "src", err)
		}
		if fi.IsDir() {
			return specErr(sp, f.Pos, "src", fmt.Errorf("%s is a directory (use contents.trees)", f.Src))
		}
		mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if f.Mode != nil {
			mode = *f.Mode
		}
		c.add(layer.Entry{Path: f.Dst, Kind: layer.Regular, Source: f.Src, Mode: mode,
			UID: f.UID, GID: f.GID, Origin: origin(sp, f.Pos)})
	}
	return nil
}

func addTrees(sp *spec.Spec, c *collected, _ *closure.Resolver) error {
	for _, t := range sp.Contents.Trees {
		if err := addTree(c, t.Src, t.Dst, t.UID, t.GID, origin(sp, t.Pos)); err != nil {
			return specErr(sp, t.Pos, "src", err)
		}
	}
	return nil
}

// addTree copies a host directory: modes from the host, owners as declared, symlinks kept.
func addTree(c *collected, src, dst string, uid, gid int, org string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		e := layer.Entry{Path: path.Join(dst, filepath.ToSlash(rel)), UID: uid, GID: gid, Origin: org}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e.Mode = info.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch {
		case d.IsDir():
			e.Kind = layer.Dir
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e.Kind, e.Target, e.Mode = layer.Symlink, t, 0o777
		case d.Type().IsRegular():
			e.Kind, e.Source = layer.Regular, p
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, d.Type())
		}
		c.add(e)
		return nil
	})
}

func addLinksAndDirs(sp *spec.Spec, c *collected, _ *closure.Resolver) error {
	for _, l := range sp.Contents.Symlinks {
		c.add(layer.Entry{Path: l.Path, Kind: layer.Symlink, Target: l.Target, Mode: 0o777, Origin: origin(sp, l.Pos)})
	}
	for _, d := range sp.Contents.Dirs {
		c.add(layer.Entry{Path: d.Path, Kind: layer.Dir, Mode: d.Mode, UID: d.UID, GID: d.GID, Origin: origin(sp, d.Pos)})
	}
	return nil
}
