package spec

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Stages are images built on the way to the one kiln.yaml names, Dockerfile's multi-stage builds:
//
//	stages:
//	  builder:                      # built first, never tagged
//	    base: debian
//	    steps: [apt-get install -y jq]
//	contents:
//	  binaries: [{src: /usr/bin/jq, from: builder}]   # jq and its libraries, from builder's root
//
// A stage is used by a base naming it or by a contents item with from:. Stages are built before
// what uses them, so their uses must not form a cycle.

var stageKeys = []string{"base", "contents", "accounts", "config", "steps"}

// stageRE is a stage name: short, lower-case, usable in messages and history as it is.
var stageRE = lazyRegexp(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// stageUse is an edge of the stage graph: a base or a from: naming stage at line.
type stageUse struct {
	stage string
	line  int
	field string
}

// readStageNames returns the names under stages:, so that base and from: can tell a stage from an
// image in the store before the stages themselves are read.
func (p *parser) readStageNames(m mapping) map[string]bool {
	names := map[string]bool{}
	n := m.get("stages")
	if n == nil || n.Kind != yaml.MappingNode {
		return names
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k.Kind == yaml.ScalarNode {
			names[k.Value] = true
		}
	}
	return names
}

// stages reads every stage and returns them in build order: each after the stages it uses, else in
// the order written. top is the image kiln.yaml names, whose uses were recorded as it was read.
func (p *parser) stages(m mapping, top *Spec) []*Spec {
	uses := map[string][]stageUse{"": p.uses}
	byName := map[string]*Spec{}
	var names []string
	if n := m.get("stages"); n != nil {
		if n.Kind != yaml.MappingNode {
			p.wrongType(n, "stages", "a mapping of stage names to stages")
			return nil
		}
		for _, pr := range p.pairs(n, "stages") {
			name := pr.key.Value
			field := "stages." + name
			if !stageRE().MatchString(name) || name == "scratch" {
				p.failf(pr.key, field, "%q is not a valid stage name (lower-case letters, digits, and . _ - after the first; not scratch)", name)
			}
			p.uses = nil
			byName[name] = p.stage(name, pr.val, field)
			uses[name] = p.uses
			names = append(names, name)
		}
	}
	order := p.buildOrder(names, uses)
	var out []*Spec
	for _, name := range order {
		out = append(out, byName[name])
	}
	return out
}

// stage reads one stage: a kiln.yaml without name, tag or stages of its own.
func (p *parser) stage(name string, n *yaml.Node, field string) *Spec {
	s := &Spec{Stage: name, Tag: "latest", Base: Base{Ref: "scratch"}}
	m, ok := p.mapping(n, field, stageKeys...)
	if ok {
		p.image(s, m)
	}
	return s
}

// from reads the stage a contents item takes its source from, recording the use.
func (p *parser) from(n *yaml.Node, field string) string {
	s, ok := p.text(n, field)
	if !ok {
		return ""
	}
	if !p.stageNames[s] {
		p.failf(n, field, "no stage %q (stages: %s)", s, p.stageList())
		return s // not a host path either: its src is not looked for on the host
	}
	p.uses = append(p.uses, stageUse{stage: s, line: n.Line, field: field})
	return s
}

func (p *parser) stageList() string {
	if len(p.stageNames) == 0 {
		return "none"
	}
	names := make([]string, 0, len(p.stageNames))
	for n := range p.stageNames {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// buildOrder sorts the stages so that each comes after those it uses (depth first, in the order
// written), reporting a cycle at the line of the use that closes it.
func (p *parser) buildOrder(names []string, uses map[string][]stageUse) []string {
	const (
		unseen = iota
		visiting
		done
	)
	state := map[string]int{}
	var order []string
	var visit func(name string, path []string)
	visit = func(name string, path []string) {
		state[name] = visiting
		for _, u := range uses[name] {
			switch state[u.stage] {
			case visiting:
				cycle := append(path[slices.Index(path, u.stage):], u.stage)
				p.fail(u.line, u.field, fmt.Errorf("stages use each other in a cycle: %s", strings.Join(cycle, " -> ")))
			case unseen:
				visit(u.stage, append(path, u.stage))
			}
		}
		state[name] = done
		if name != "" {
			order = append(order, name)
		}
	}
	for _, n := range names {
		if state[n] == unseen {
			visit(n, []string{n})
		}
	}
	return order
}
