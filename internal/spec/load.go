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
	for _, st := range s.Stages {
		st.File, st.Dir = file, abs
	}
	return s, nil
}

var topKeys = []string{"name", "tag", "base", "contents", "accounts", "config", "steps", "stages", "layers"}

func (p *parser) spec(n *yaml.Node) *Spec {
	s := &Spec{Tag: "latest", Base: Base{Ref: "scratch"}}
	m, ok := p.mapping(n, "", topKeys...)
	if !ok {
		return s
	}
	p.stageNames = p.readStageNames(m)
	if v := p.required(m, "name"); v != nil {
		s.Name = p.name(v)
	}
	if v := m.get("tag"); v != nil {
		s.Tag = p.tag(v)
	}
	if v := m.get("layers"); v != nil {
		s.Squash = p.layers(v)
	}
	p.image(s, m)
	s.Stages = p.stages(m, s)
	return s
}

// image reads what a stage and the top level share: base, contents, accounts, config and steps.
func (p *parser) image(s *Spec, m mapping) {
	if v := m.get("base"); v != nil {
		s.Base = p.base(v, m.path("base"))
	}
	if v := m.get("contents"); v != nil {
		s.Contents = p.contents(v, m.path("contents"))
	}
	if v := m.get("accounts"); v != nil {
		s.Accounts = p.accounts(v, m.path("accounts"))
	}
	if v := m.get("config"); v != nil {
		s.Config = p.config(v, m.path("config"))
	}
	s.Steps = p.steps(m)
	if s.Config.User == "" {
		s.Config.User = runAsUser(s.Accounts)
	}
}

// layers reads how the finished image is layered: "steps" (one layer for contents and one per
// step, the default) or "squash" (one layer).
func (p *parser) layers(n *yaml.Node) bool {
	s, ok := p.str(n, "layers")
	if ok && s != "steps" && s != "squash" {
		p.failf(n, "layers", "want steps or squash, got %q", s)
	}
	return s == "squash"
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

// base reads the image to start from: scratch, a stage, a store reference, or a path on the host.
func (p *parser) base(n *yaml.Node, field string) Base {
	b := Base{Pos: Pos{Line: n.Line, Field: field}}
	s, ok := p.text(n, field)
	switch {
	case !ok:
	case s == "scratch":
		b.Ref = s
	case p.stageNames[s]:
		b.Ref, b.Stage = s, true
		p.uses = append(p.uses, stageUse{stage: s, line: n.Line, field: field})
	case Base{Ref: s}.IsPath():
		b.Ref = p.src(n, field, anyKind)
	default:
		b.Ref = s
		p.check(n, field, checkStoreRef(s))
	}
	return b
}
