package spec

import (
	"io/fs"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

var contentsKeys = []string{"binaries", "files", "trees", "symlinks", "dirs", "certificates", "nss", "timezone"}

func (p *parser) contents(n *yaml.Node, field string) Contents {
	var c Contents
	m, ok := p.mapping(n, field, contentsKeys...)
	if !ok {
		return c
	}
	p.each(m, "binaries", func(n *yaml.Node, at Pos) { c.Binaries = append(c.Binaries, p.binary(n, at)) })
	p.each(m, "files", func(n *yaml.Node, at Pos) { c.Files = append(c.Files, p.file(n, at)) })
	p.each(m, "trees", func(n *yaml.Node, at Pos) { c.Trees = append(c.Trees, p.tree(n, at)) })
	p.each(m, "symlinks", func(n *yaml.Node, at Pos) { c.Symlinks = append(c.Symlinks, p.symlink(n, at)) })
	p.each(m, "dirs", func(n *yaml.Node, at Pos) { c.Dirs = append(c.Dirs, p.dir(n, at)) })
	if v := m.get("certificates"); v != nil {
		c.Certificates = p.bool(v, m.path("certificates"))
	}
	if v := m.get("nss"); v != nil {
		c.NSS = p.bool(v, m.path("nss"))
	}
	if v := m.get("timezone"); v != nil {
		c.TimezonePos = Pos{Line: v.Line, Field: m.path("timezone")}
		c.Timezone = p.timezone(v, c.TimezonePos.Field)
	}
	return c
}

// binary is a string (its src) or {src, dst, from}.
func (p *parser) binary(n *yaml.Node, at Pos) Binary {
	b := Binary{Pos: at}
	src, srcField := n, at.Field
	switch {
	case n.Kind == yaml.MappingNode:
		m, _ := p.mapping(n, at.Field, "src", "dst", "from")
		if d := m.get("dst"); d != nil {
			b.Dst = p.imagePath(d, m.path("dst"), true)
		}
		if f := m.get("from"); f != nil {
			b.From = p.from(f, m.path("from"))
		}
		if src, srcField = p.required(m, "src"), m.path("src"); src == nil {
			return b
		}
	case n.Kind != yaml.ScalarNode || isNull(n):
		p.wrongType(n, at.Field, "a string or a mapping")
		return b
	}
	if b.From != "" {
		b.Src, b.Dst = p.stageBinarySrc(src, srcField, b.Dst)
		return b
	}
	b.Src, b.Dst = p.binarySrc(src, srcField, b.Dst)
	return b
}

// binarySrc reads a binary's source. A name without "/" is looked up in PATH at build
// time, so it is kept as written; a path is resolved and checked now, and gives the
// default destination: /usr/local/bin/<base> for a program of the build directory
// (written relative or not), else the path itself.
func (p *parser) binarySrc(n *yaml.Node, field, dst string) (string, string) {
	s, ok := p.text(n, field)
	if !ok || !strings.Contains(s, "/") {
		return s, dst
	}
	abs := p.src(n, field, execKind)
	switch {
	case dst != "":
	case !filepath.IsAbs(s) || strings.HasPrefix(abs, p.buildDir+string(filepath.Separator)):
		dst = "/usr/local/bin/" + filepath.Base(abs)
	default:
		dst = filepath.ToSlash(abs)
	}
	return abs, dst
}

// stageBinarySrc reads the source of a binary taken from a stage: a name looked up in the stage's
// PATH when it is built, or an absolute path in the stage's image, which is also the default dst.
func (p *parser) stageBinarySrc(n *yaml.Node, field, dst string) (string, string) {
	s, ok := p.text(n, field)
	if !ok || !strings.Contains(s, "/") {
		return s, dst
	}
	return p.stageSrc(n, field, dst)
}

// stageSrc reads a path in a stage's image; dst defaults to it.
func (p *parser) stageSrc(n *yaml.Node, field, dst string) (string, string) {
	src := p.imagePath(n, field, true)
	if dst == "" {
		dst = src
	}
	return src, dst
}

// dst reads the dst of a file or tree: required, except from a stage, where it defaults to src.
func (p *parser) dst(m mapping, from, src string, notRoot bool) string {
	v := m.get("dst")
	switch {
	case v != nil:
		return p.imagePath(v, m.path("dst"), notRoot)
	case from == "":
		p.required(m, "dst")
	}
	return src
}

func (p *parser) file(n *yaml.Node, at Pos) File {
	f := File{Pos: at}
	m, ok := p.mapping(n, at.Field, "src", "dst", "from", "mode", "uid", "gid")
	if !ok {
		return f
	}
	if v := m.get("from"); v != nil {
		f.From = p.from(v, m.path("from"))
	}
	if v := p.required(m, "src"); v != nil && f.From != "" {
		f.Src = p.imagePath(v, m.path("src"), true)
	} else if v != nil {
		f.Src = p.src(v, m.path("src"), fileKind)
	}
	f.Dst = p.dst(m, f.From, f.Src, true)
	if v := m.get("mode"); v != nil {
		mode := p.mode(v, m.path("mode"))
		f.Mode = &mode
	}
	f.UID, f.GID = p.owner(m)
	return f
}

// owner reads the uid and gid keys of m, 0 when absent.
func (p *parser) owner(m mapping) (uid, gid int) {
	if v := m.get("uid"); v != nil {
		uid = p.id(v, m.path("uid"))
	}
	if v := m.get("gid"); v != nil {
		gid = p.id(v, m.path("gid"))
	}
	return uid, gid
}

func (p *parser) tree(n *yaml.Node, at Pos) Tree {
	t := Tree{Pos: at}
	m, ok := p.mapping(n, at.Field, "src", "dst", "from", "uid", "gid")
	if !ok {
		return t
	}
	if v := m.get("from"); v != nil {
		t.From = p.from(v, m.path("from"))
	}
	if v := p.required(m, "src"); v != nil && t.From != "" {
		t.Src = p.imagePath(v, m.path("src"), false)
	} else if v != nil {
		t.Src = p.src(v, m.path("src"), dirKind)
	}
	t.Dst = p.dst(m, t.From, t.Src, false)
	t.UID, t.GID = p.owner(m)
	return t
}

func (p *parser) symlink(n *yaml.Node, at Pos) Symlink {
	l := Symlink{Pos: at}
	m, ok := p.mapping(n, at.Field, "path", "target")
	if !ok {
		return l
	}
	if v := p.required(m, "path"); v != nil {
		l.Path = p.imagePath(v, m.path("path"), true)
	}
	if v := p.required(m, "target"); v != nil {
		l.Target, _ = p.text(v, m.path("target")) // kept as written: a link may be relative
	}
	return l
}

// defaultDirMode is the mode of a dir written without one.
const defaultDirMode fs.FileMode = 0o755

// dir is a string (its path) or {path, mode, uid, gid}.
func (p *parser) dir(n *yaml.Node, at Pos) Dir {
	d := Dir{Pos: at, Mode: defaultDirMode}
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		d.Path = p.imagePath(n, at.Field, false)
		return d
	}
	if n.Kind != yaml.MappingNode {
		p.wrongType(n, at.Field, "a string or a mapping")
		return d
	}
	m, _ := p.mapping(n, at.Field, "path", "mode", "uid", "gid")
	if v := p.required(m, "path"); v != nil {
		d.Path = p.imagePath(v, m.path("path"), false)
	}
	if v := m.get("mode"); v != nil {
		d.Mode = p.mode(v, m.path("mode"))
	}
	d.UID, d.GID = p.owner(m)
	return d
}

// timezone is true (every zone: "all"), false (none: "") or one zone's name.
func (p *parser) timezone(n *yaml.Node, field string) string {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
		if p.bool(n, field) {
			return "all"
		}
		return ""
	}
	s, ok := p.text(n, field)
	if ok && s != "all" {
		p.check(n, field, checkZone(s))
	}
	return s
}
