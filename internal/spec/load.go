package spec

import (
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// Load reads and validates the kiln.yaml at path. The build directory is the directory
// holding the file; use Parse to choose another.
// A problem in the file is an *Error, several are Errors; a file that cannot be read
// is the error of os.ReadFile.
func Load(path string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, filepath.Dir(path))
}

// Parse validates the kiln.yaml in data. file names it in errors; dir is the build
// directory, against which relative sources resolve ("" is the current directory).
// Sources are checked to exist on the host.
func Parse(file string, data []byte, dir string) (*Spec, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root, err := decode(file, data)
	if err != nil {
		return nil, err
	}
	p := &parser{yamlFile: file, buildDir: abs}
	s := p.spec(root)
	if err := p.errs.err(); err != nil {
		return nil, err
	}
	s.File, s.Dir = file, abs
	return s, nil
}

var topKeys = []string{"name", "tag", "base", "contents", "accounts", "config", "steps"}

func (p *parser) spec(n *yaml.Node) *Spec {
	s := &Spec{Tag: "latest", Base: Base{Ref: "scratch"}}
	m, ok := p.mapping(n, "", topKeys...)
	if !ok {
		return s
	}
	if v := p.required(m, "name"); v != nil {
		s.Name = p.name(v)
	}
	if v := m.get("tag"); v != nil {
		s.Tag = p.tag(v)
	}
	if v := m.get("base"); v != nil {
		s.Base = p.base(v)
	}
	if v := m.get("contents"); v != nil {
		s.Contents = p.contents(v, "contents")
	}
	if v := m.get("accounts"); v != nil {
		s.Accounts = p.accounts(v, "accounts")
	}
	if v := m.get("config"); v != nil {
		s.Config = p.config(v, "config")
	}
	s.Steps = p.steps(m)
	if s.Config.User == "" {
		s.Config.User = runAsUser(s.Accounts)
	}
	return s
}

func (p *parser) name(n *yaml.Node) string {
	s, ok := p.str(n, "name")
	if ok {
		p.check(n, "name", checkName(s))
	}
	return s
}

func (p *parser) tag(n *yaml.Node) string {
	s, ok := p.str(n, "tag")
	if ok {
		p.check(n, "tag", checkTag(s))
	}
	return s
}

// base reads the image to start from: scratch, a store reference, or a path on the host.
func (p *parser) base(n *yaml.Node) Base {
	b := Base{Pos: Pos{Line: n.Line, Field: "base"}}
	s, ok := p.text(n, "base")
	switch {
	case !ok:
	case s == "scratch":
		b.Ref = s
	case Base{Ref: s}.IsPath():
		b.Ref = p.src(n, "base", anyKind)
	default:
		b.Ref = s
		p.check(n, "base", checkStoreRef(s))
	}
	return b
}
