package spec

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

var stepKeys = []string{"run", "env", "workdir", "user", "network", "copy"}

// steps reads the list of commands run on the image being built, in order.
func (p *parser) steps(m mapping) []Step {
	var steps []Step
	p.each(m, "steps", func(n *yaml.Node, at Pos) {
		if s, ok := p.step(n, at); ok {
			steps = append(steps, s)
		}
	})
	return steps
}

// step reads one item: a string is the shell form of run; a mapping has run and its options.
func (p *parser) step(n *yaml.Node, at Pos) (Step, bool) {
	s := Step{Pos: at, Network: "none"}
	if n.Kind == yaml.ScalarNode {
		s.Run = p.shellForm(n, at.Field)
		return s, s.Run != nil
	}
	m, ok := p.mapping(n, at.Field, stepKeys...)
	if !ok {
		return s, false
	}
	if v := p.required(m, "run"); v != nil {
		s.Run = p.stepRun(v, m.path("run"))
	}
	if v := m.get("env"); v != nil {
		s.Env = p.env(v, m.path("env"))
	}
	if v := m.get("workdir"); v != nil {
		s.Workdir = p.imagePath(v, m.path("workdir"), false)
	}
	if v := m.get("user"); v != nil {
		s.User = p.configUser(v, m.path("user"))
	}
	if v := m.get("network"); v != nil {
		s.Network = p.network(v, m.path("network"))
	}
	if v := m.get("copy"); v != nil {
		s.Copy = p.bool(v, m.path("copy"))
	}
	return s, s.Run != nil
}

// shellForm is Docker's: the string is run by /bin/sh -c, never split.
func (p *parser) shellForm(n *yaml.Node, field string) []string {
	s, ok := p.text(n, field)
	if !ok {
		return nil
	}
	return []string{"/bin/sh", "-c", s}
}

// stepRun reads a command: a string (shell form) or a non-empty argv list.
func (p *parser) stepRun(n *yaml.Node, field string) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		return p.shellForm(n, field)
	case yaml.SequenceNode:
	default:
		p.wrongType(n, field, "a list or a string")
		return nil
	}
	if len(n.Content) == 0 {
		p.failf(n, field, "must not be empty")
		return nil
	}
	argv := make([]string, 0, len(n.Content))
	ok := true
	for i, item := range n.Content {
		item = deref(item)
		f := fmt.Sprintf("%s[%d]", field, i)
		var s string
		var good bool
		if i == 0 {
			s, good = p.text(item, f) // the program
		} else {
			s, good = p.str(item, f)
		}
		ok = ok && good
		argv = append(argv, s)
	}
	if !ok {
		return nil
	}
	return argv
}

func (p *parser) network(n *yaml.Node, field string) string {
	s, ok := p.str(n, field)
	if ok && s != "none" && s != "host" {
		p.failf(n, field, "want none or host, got %q", s)
	}
	return s
}
