package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var configKeys = []string{"entrypoint", "cmd", "env", "workdir", "user", "ports", "volumes", "labels", "stop-signal"}

func (p *parser) config(n *yaml.Node, field string) Config {
	var c Config
	m, ok := p.mapping(n, field, configKeys...)
	if !ok {
		return c
	}
	c.Entrypoint = p.command(m, "entrypoint")
	c.Cmd = p.command(m, "cmd")
	if v := m.get("env"); v != nil {
		c.Env = p.env(v, m.path("env"))
	}
	if v := m.get("workdir"); v != nil {
		c.WorkingDir = p.imagePath(v, m.path("workdir"), false)
	}
	if v := m.get("user"); v != nil {
		c.User = p.configUser(v, m.path("user"))
	}
	c.Ports = p.ports(m)
	c.Volumes = p.volumes(m)
	if v := m.get("labels"); v != nil {
		c.Labels = p.labels(v, m.path("labels"))
	}
	if v := m.get("stop-signal"); v != nil {
		c.StopSignal = p.signal(v, m.path("stop-signal"))
	}
	return c
}

// command reads an entrypoint or cmd: a list is the argv as written ([] clears the
// base image's), a string is Docker's shell form, run by /bin/sh -c.
func (p *parser) command(m mapping, key string) []string {
	n, field := m.get(key), m.path(key)
	switch {
	case n == nil:
		return nil
	case n.Kind == yaml.ScalarNode:
		s, ok := p.text(n, field)
		if !ok {
			return nil
		}
		return []string{"/bin/sh", "-c", s}
	case n.Kind != yaml.SequenceNode:
		p.wrongType(n, field, "a list or a string")
		return nil
	}
	argv := []string{}
	p.each(m, key, func(n *yaml.Node, at Pos) {
		s, _ := p.str(n, at.Field)
		argv = append(argv, s)
	})
	return argv
}

// envName is a portable environment variable name (POSIX: what a shell can expand).
var envName = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_]*$`)

func checkEnvName(s string) error {
	if !envName().MatchString(s) {
		return fmt.Errorf("%q is not a valid variable name ([A-Za-z_][A-Za-z0-9_]*)", s)
	}
	return nil
}

// env reads a mapping (sorted by name) or a list of "NAME=value" (kept in order).
func (p *parser) env(n *yaml.Node, field string) []string {
	switch n.Kind {
	case yaml.MappingNode:
		return p.envMap(n, field)
	case yaml.SequenceNode:
		return p.envList(n, field)
	}
	p.wrongType(n, field, "a mapping or a list")
	return nil
}

func (p *parser) envMap(n *yaml.Node, field string) []string {
	env := []string{}
	for _, kv := range p.pairs(n, field) {
		f := join(field, kv.key.Value)
		value, ok := p.envValue(kv.val, f)
		if p.check(kv.key, field, checkEnvName(kv.key.Value)) && ok {
			env = append(env, kv.key.Value+"="+value)
		}
	}
	slices.Sort(env) // "=" sorts before any name character, so this sorts by name
	return env
}

// envValue reads a value as written; null is refused so that an empty value is explicit.
func (p *parser) envValue(n *yaml.Node, field string) (string, bool) {
	if isNull(n) {
		p.failf(n, field, `want a string, got null (write "" for an empty value)`)
		return "", false
	}
	return p.str(n, field)
}

func (p *parser) envList(n *yaml.Node, field string) []string {
	env := []string{}
	seen := map[string]int{}
	for i, item := range n.Content {
		item = deref(item)
		f := fmt.Sprintf("%s[%d]", field, i)
		s, ok := p.str(item, f)
		if !ok {
			continue
		}
		name, _, hasValue := strings.Cut(s, "=")
		switch {
		case !hasValue:
			p.failf(item, f, "want NAME=value, got %q", s)
		case !p.check(item, f, checkEnvName(name)):
		case seen[name] != 0:
			p.failf(item, f, "duplicate variable %s (first at line %d)", name, seen[name])
		default:
			seen[name] = item.Line
			env = append(env, s)
		}
	}
	return env
}

// configUser reads the image's user as given to the runtime: a name, uid, or either
// with ":group"; it may name an account of the base image, so it is not looked up.
func (p *parser) configUser(n *yaml.Node, field string) string {
	s, ok := p.text(n, field)
	if !ok {
		return ""
	}
	user, group, hasGroup := strings.Cut(s, ":")
	if user == "" || (hasGroup && group == "") || strings.ContainsAny(s, " \t\n\r") || strings.Count(s, ":") > 1 {
		p.failf(n, field, "want user[:group], got %q", s)
	}
	return s
}

func (p *parser) ports(m mapping) []string {
	var ports []string
	seen := map[string]int{}
	p.each(m, "ports", func(n *yaml.Node, at Pos) {
		s, ok := p.str(n, at.Field)
		if !ok {
			return
		}
		port, err := parsePort(s)
		switch {
		case !p.check(n, at.Field, err):
		case seen[port] != 0:
			p.failf(n, at.Field, "duplicate port %s (first at line %d)", port, seen[port])
		default:
			seen[port] = n.Line
			ports = append(ports, port)
		}
	})
	return ports
}

// parsePort normalises "80", "80/TCP", "53/udp" to "80/tcp", "53/udp".
func parsePort(s string) (string, error) {
	num, proto, hasProto := strings.Cut(s, "/")
	proto = strings.ToLower(proto)
	if !hasProto {
		proto = "tcp"
	}
	n, err := strconv.Atoi(num)
	switch {
	case err != nil || strings.HasPrefix(num, "+"):
		return "", fmt.Errorf("want a port such as 80 or 53/udp, got %q", s)
	case n < 1 || n > 65535:
		return "", fmt.Errorf("port %d is out of range 1..65535", n)
	case proto != "tcp" && proto != "udp" && proto != "sctp":
		return "", fmt.Errorf("protocol %q is not tcp, udp or sctp", proto)
	}
	return fmt.Sprintf("%d/%s", n, proto), nil
}

func (p *parser) volumes(m mapping) []string {
	var vols []string
	seen := map[string]int{}
	p.each(m, "volumes", func(n *yaml.Node, at Pos) {
		v := p.imagePath(n, at.Field, false)
		switch {
		case v == "":
		case seen[v] != 0:
			p.failf(n, at.Field, "duplicate volume %s (first at line %d)", show(v), seen[v])
		default:
			seen[v] = n.Line
			vols = append(vols, v)
		}
	})
	return vols
}

func (p *parser) labels(n *yaml.Node, field string) map[string]string {
	if n.Kind != yaml.MappingNode {
		p.wrongType(n, field, "a mapping")
		return nil
	}
	labels := map[string]string{}
	for _, kv := range p.pairs(n, field) {
		f := join(field, kv.key.Value)
		if kv.key.Value == "" {
			p.failf(kv.key, field, "a label name must not be empty")
			continue
		}
		if v, ok := p.envValue(kv.val, f); ok {
			labels[kv.key.Value] = v
		}
	}
	return labels
}

func (p *parser) signal(n *yaml.Node, field string) string {
	s, ok := p.text(n, field)
	if !ok {
		return ""
	}
	sig, err := parseSignal(s)
	p.check(n, field, err)
	return sig
}
