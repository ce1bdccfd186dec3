package spec

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// parser walks the YAML tree, collecting every problem instead of stopping at the first.
type parser struct {
	yamlFile string
	buildDir string // absolute
	errs     Errors

	stageNames map[string]bool // the keys of stages:, known before anything refers to them
	uses       []stageUse      // stages used by the image being read
}

func (p *parser) fail(line int, field string, err error) {
	p.errs = append(p.errs, &Error{File: p.yamlFile, Line: line, Field: field, Err: err})
}

func (p *parser) failf(n *yaml.Node, field, format string, args ...any) {
	p.fail(n.Line, field, fmt.Errorf(format, args...))
}

func (p *parser) wrongType(n *yaml.Node, field, want string) {
	p.failf(n, field, "want %s, got %s", want, describe(n))
}

// mapping is a YAML mapping whose keys have been checked against the known ones.
type mapping struct {
	node  *yaml.Node
	field string
	vals  map[string]*yaml.Node // known keys with a non-null value
}

// path is the field name of key, "contents.files[0]" + "mode" -> "contents.files[0].mode".
func (m mapping) path(key string) string { return join(m.field, key) }

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// get returns the value of key, or nil when it is absent or null.
func (m mapping) get(key string) *yaml.Node { return m.vals[key] }

// mapping checks that n is a mapping whose keys are all known and written once.
// ok is false when n is not a mapping at all.
func (p *parser) mapping(n *yaml.Node, field string, known ...string) (m mapping, ok bool) {
	m = mapping{node: n, field: field, vals: map[string]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		p.wrongType(n, field, "a mapping")
		return m, false
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if !p.key(k, field, seen) {
			continue
		}
		if !slices.Contains(known, k.Value) {
			p.failf(k, field, "unknown key %q (known: %s)", k.Value, strings.Join(known, ", "))
			continue
		}
		if !isNull(v) {
			m.vals[k.Value] = v
		}
	}
	return m, true
}

// key checks that k is a scalar not seen before in its mapping.
func (p *parser) key(k *yaml.Node, field string, seen map[string]int) bool {
	if k.Kind != yaml.ScalarNode {
		p.failf(k, field, "want a string key, got %s", describe(k))
		return false
	}
	if first, dup := seen[k.Value]; dup {
		p.failf(k, field, "duplicate key %q (first at line %d)", k.Value, first)
		return false
	}
	seen[k.Value] = k.Line
	return true
}

// required returns the value of key, reporting it when missing.
func (p *parser) required(m mapping, key string) *yaml.Node {
	v := m.get(key)
	if v == nil {
		p.failf(m.node, m.field, "missing required key %q", key)
	}
	return v
}

// pair is one entry of a free-form mapping (env, labels).
type pair struct{ key, val *yaml.Node }

// pairs returns the entries of a mapping whose keys are the user's, each written once.
func (p *parser) pairs(n *yaml.Node, field string) []pair {
	var ps []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if p.key(k, field, seen) {
			ps = append(ps, pair{k, v})
		}
	}
	return ps
}

// each calls fn with every item of the list at key and the item's position.
func (p *parser) each(m mapping, key string, fn func(n *yaml.Node, at Pos)) {
	n := m.get(key)
	if n == nil {
		return
	}
	if n.Kind != yaml.SequenceNode {
		p.wrongType(n, m.path(key), "a list")
		return
	}
	for i, item := range n.Content {
		item = deref(item)
		fn(item, Pos{Line: item.Line, Field: fmt.Sprintf("%s[%d]", m.path(key), i)})
	}
}

// str returns the text of a scalar as written: "1.10" stays "1.10", 0644 stays "0644".
// No kiln string may hold a NUL: none survives into argv, env or a path.
func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.wrongType(n, field, "a string")
		return "", false
	}
	if strings.ContainsRune(n.Value, 0) {
		p.failf(n, field, "must not contain a NUL character")
		return "", false
	}
	return n.Value, true
}

// text is str for values that may not be empty.
func (p *parser) text(n *yaml.Node, field string) (string, bool) {
	s, ok := p.str(n, field)
	if ok && s == "" {
		p.failf(n, field, "must not be empty")
		return "", false
	}
	return s, ok
}

// maxID is the largest uid or gid kiln accepts: it fits an int everywhere.
const maxID = 1<<31 - 1

// id returns a uid or gid.
func (p *parser) id(n *yaml.Node, field string) int {
	var v int64
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		p.wrongType(n, field, "an integer")
		return 0
	}
	if v < 0 || v > maxID {
		p.failf(n, field, "%d is out of range 0..%d", v, maxID)
		return 0
	}
	return int(v)
}

func (p *parser) bool(n *yaml.Node, field string) bool {
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		p.wrongType(n, field, "a boolean")
	}
	return v
}

// check reports err, if any, at n.
func (p *parser) check(n *yaml.Node, field string, err error) bool {
	if err != nil {
		p.fail(n.Line, field, err)
	}
	return err == nil
}
