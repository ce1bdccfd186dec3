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

	stage func(name string) (*stageRoot, error) // a stage's root, for items with from:
	roots map[string]string                     // stage roots used: dir -> the stage image's id
}

// fromStage returns the root of the stage name, remembering it for the cache key.
func (c *collected) fromStage(name string) (*stageRoot, error) {
	r, err := c.stage(name)
	if err != nil {
		return nil, err
	}
	if c.roots == nil {
		c.roots = map[string]string{}
	}
	c.roots[r.dir] = r.id
	return r, nil
}

// stableKey keys a source inside a stage's root by the stage image and the path: the tree is
// immutable, and a fresh mount's device and inode numbers would miss the cache every time.
func (c *collected) stableKey(source string) (string, bool) {
	for dir, id := range c.roots {
		if rel, ok := strings.CutPrefix(source, dir+"/"); ok {
			return id + "\x00/" + rel, true
		}
	}
	return "", false
}

func (c *collected) add(e ...layer.Entry) { c.entries = append(c.entries, e...) }

// collect turns the contents and accounts of sp into layer entries, reading only the host.
// stage gives the root of a stage built before, for contents taken from it (from:).
func collect(sp *spec.Spec, base *baseImage, stage func(string) (*stageRoot, error)) (*collected, error) {
	c := &collected{stage: stage}
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
		if b.From != "" {
			if err := addStageBinary(sp, c, b); err != nil {
				return err
			}
			continue
		}
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

// leadsTo reports whether p is dir or a directory above it.
func leadsTo(p, dir string) bool { return p == dir || inDir(p, dir) }

// addClosure adds a binary's closure at the host paths. When the binary goes elsewhere
// (dst != src) it is copied there as a regular file, its own symlink chain is left out, and the
// files it brings from the build directory keep their place relative to it, so $ORIGIN still works.
// Symlinks on the way to the build directory itself are host details and never go in.
func addClosure(sp *spec.Spec, c *collected, p spec.Pos, src, dst string, files []closure.File) error {
	skip := map[string]bool{}
	if dst != src {
		chain, file, err := symlinkChain(src)
		if err != nil {
			return specErr(sp, p, "src", err)
		}
		mode, err := hostMode(file)
		if err != nil {
			return specErr(sp, p, "src", err)
		}
		for _, l := range append(chain, src, file) {
			skip[l] = true
		}
		c.add(layer.Entry{Path: dst, Kind: layer.Regular, Source: file, Mode: mode, Origin: origin(sp, p)})
	}
	for _, f := range files {
		if skip[f.Path] || f.Target != "" && leadsTo(f.Path, sp.Dir) {
			continue
		}
		e, err := closureEntry(sp, p, src, dst, f)
		if err != nil {
			return err
		}
		c.add(e)
	}
	return nil
}

// closureEntry is the layer entry of one file of the closure of src, which goes to dst.
func closureEntry(sp *spec.Spec, p spec.Pos, src, dst string, f closure.File) (layer.Entry, error) {
	e := layer.Entry{Path: f.Path, Origin: origin(sp, p) + ": " + f.Origin}
	if dst != src && inDir(sp.Dir, f.Path) {
		rel, _ := filepath.Rel(filepath.Dir(src), f.Path)
		e.Path = path.Join(path.Dir(dst), filepath.ToSlash(rel))
	}
	if f.Target != "" {
		e.Kind, e.Target, e.Mode = layer.Symlink, f.Target, 0o777
		return e, nil
	}
	mode, err := hostMode(f.Path)
	if err != nil {
		return e, specErr(sp, p, "src", err)
	}
	e.Kind, e.Source, e.Mode = layer.Regular, f.Path, mode
	return e, nil
}

// maxLinks is how many symlinks a chain may have, as Linux's ELOOP limit.
const maxLinks = 40

// symlinkChain follows src's own symlinks (not those of its directories) and returns every link on
// the way, each as written and with its directory resolved, and the regular file at the end:
// /usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk gives both links and /usr/bin/mawk.
func symlinkChain(src string) (links []string, file string, err error) {
	p := src
	for range maxLinks {
		dir, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			return nil, "", err
		}
		resolved := filepath.Join(dir, filepath.Base(p))
		t, err := os.Readlink(resolved)
		if err != nil {
			file, err := filepath.EvalSymlinks(resolved) // not a link: the file itself
			return links, file, err
		}
		links = append(links, p, resolved)
		if !filepath.IsAbs(t) {
			t = filepath.Join(dir, t)
		}
		p = filepath.Clean(t)
	}
	return nil, "", fmt.Errorf("%s: more than %d symlinks in a chain", src, maxLinks)
}

func addFiles(sp *spec.Spec, c *collected, _ *closure.Resolver) error {
	for _, f := range sp.Contents.Files {
		name := f.Src // for errors: the stage's root is a /proc/self/fd path
		if f.From != "" {
			src, err := c.stagePath(f.From, f.Src)
			if err != nil {
				return specErr(sp, f.Pos, "src", err)
			}
			f.Src, name = src, f.Src+" in stage "+f.From
		}
		fi, err := os.Stat(f.Src)
		if err != nil {
			return specErr(sp, f.Pos, "src", err)
		}
		if fi.IsDir() {
			return specErr(sp, f.Pos, "src", fmt.Errorf("%s is a directory (use contents.trees)", name))
		}
		if !fi.Mode().IsRegular() { // a fifo would hang the build, a device never end
			return specErr(sp, f.Pos, "src", fmt.Errorf("%s: not a regular file but %s", name, typeName(fi.Mode())))
		}
		mode := normalMode(fi.Mode())
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
		if t.From != "" {
			src, err := c.stagePath(t.From, t.Src)
			if err != nil {
				return specErr(sp, t.Pos, "src", err)
			}
			t.Src = src
		}
		if err := addTree(c, t.Src, t.Dst, t.UID, t.GID, origin(sp, t.Pos)); err != nil {
			return specErr(sp, t.Pos, "src", err)
		}
	}
	return nil
}

// addTree copies a host directory: modes normalised, owners as declared, symlinks kept.
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
		e.Mode = normalMode(info.Mode())
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

// typeName says what kind of file, other than a regular one or a directory, m is.
func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a fifo"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// normalMode is the mode a host file gets when kiln.yaml declares none. As in git, only the
// executable bit survives, so the host's umask, a copy with cp -r and setuid bits never show:
// directories and executables 0755, other files 0644, symlinks 0777.
func normalMode(m fs.FileMode) fs.FileMode {
	switch {
	case m&fs.ModeSymlink != 0:
		return 0o777
	case m.IsDir(), m&0o111 != 0:
		return 0o755
	}
	return 0o644
}

// hostMode is normalMode of the file at p, following symlinks.
func hostMode(p string) (fs.FileMode, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return normalMode(fi.Mode()), nil
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
