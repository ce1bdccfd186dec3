package bootconfig

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Kernel command line parameters kiln-init reads (documented in docs/boot.md):
//
//	kiln.env.NAME=VALUE     set (or replace) NAME in the environment
//	kiln.args=JSON          replace Args with a JSON array of strings
//	kiln.workdir=PATH       replace Workdir
//	kiln.hostname=NAME      replace Hostname
//	kiln.net=none|user|ADDR/PREFIX[,GATEWAY[,DNS]]
//	kiln.mount=TAG:TARGET[:ro]   add a 9P share (repeatable)
//	kiln.module=PATH        load this module of the initramfs after Modules (repeatable)
//
// A value with spaces is written NAME="VALUE". As in the kernel's own parser (lib/cmdline.c
// next_arg), every double quote toggles quoting, and only a quote right after '=' and the
// matching last one are removed: kiln.args's JSON keeps its quotes, and writes a quote inside an
// argument as \u0022. No other value may hold a double quote of its own or a newline (the
// kernel has no escape), nor an environment name a blank: Params refuses them.

// Split splits a kernel command line into parameters the way the kernel does.
func Split(cmdline string) []string {
	var out []string
	for i := 0; i < len(cmdline); {
		for i < len(cmdline) && isSpace(cmdline[i]) {
			i++
		}
		if i == len(cmdline) {
			break
		}
		j, in := i, false
		for ; j < len(cmdline) && (in || !isSpace(cmdline[j])); j++ {
			if cmdline[j] == '"' {
				in = !in
			}
		}
		out = append(out, unquote(cmdline[i:j]))
		i = j
	}
	return out
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' }

// unquote removes the quotes the kernel removes: "NAME=VALUE" and NAME="VALUE".
func unquote(p string) string {
	if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
		return p[1 : len(p)-1]
	}
	name, value, ok := strings.Cut(p, "=")
	if ok && len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		return name + "=" + value[1:len(value)-1]
	}
	return p
}

// Apply applies the kiln.* parameters of a kernel command line to c. Unknown kiln.* parameters
// are errors; other parameters are the kernel's and are ignored.
func (c *Config) Apply(cmdline string) error {
	for _, p := range Split(cmdline) {
		if !strings.HasPrefix(p, "kiln.") {
			continue
		}
		name, value, _ := strings.Cut(p, "=")
		if err := c.apply(name, value); err != nil {
			return fmt.Errorf("kernel command line %s: %w", name, err)
		}
	}
	return nil
}

func (c *Config) apply(name, value string) error {
	if env, ok := strings.CutPrefix(name, "kiln.env."); ok {
		if env == "" {
			return fmt.Errorf("no variable name")
		}
		c.Env = setEnv(c.Env, env, value)
		return nil
	}
	switch name {
	case "kiln.args":
		args, err := DecodeStrings([]byte(value))
		if err != nil || len(args) == 0 {
			return fmt.Errorf("want a non-empty JSON array of strings, got %q", value)
		}
		c.Args = args
	case "kiln.workdir":
		c.Workdir = value
	case "kiln.hostname":
		c.Hostname = value
	case "kiln.net":
		n, err := ParseNet(value)
		if err != nil {
			return err
		}
		c.Net = n
	case "kiln.module":
		if !strings.HasPrefix(value, "/") {
			return fmt.Errorf("%q: want an absolute path in the initramfs", value)
		}
		if !slices.Contains(c.Modules, value) {
			c.Modules = append(c.Modules, value)
		}
	case "kiln.mount":
		m, err := ParseMount(value)
		if err != nil {
			return err
		}
		c.Mounts = append(c.Mounts, m)
	default:
		return fmt.Errorf("unknown parameter")
	}
	return nil
}

func setEnv(env []string, name, value string) []string {
	kv := name + "=" + value
	for i, e := range env {
		if n, _, _ := strings.Cut(e, "="); n == name {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

// ParseNet parses kiln.net's value.
func ParseNet(v string) (*Net, error) {
	switch v {
	case "none":
		return nil, nil
	case "user":
		return UserNet(), nil
	}
	parts := strings.Split(v, ",")
	if !strings.Contains(parts[0], "/") {
		return nil, fmt.Errorf("%q: want none, user or ADDRESS/PREFIX[,GATEWAY[,DNS]]", v)
	}
	n := &Net{Address: parts[0]}
	if len(parts) > 1 {
		n.Gateway = parts[1]
	}
	if len(parts) > 2 {
		n.DNS = parts[2:]
	}
	return n, nil
}

// ParseMount parses TAG:TARGET[:ro].
func ParseMount(v string) (Mount, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") {
		return Mount{}, fmt.Errorf("%q: want TAG:/TARGET[:ro]", v)
	}
	m := Mount{Tag: parts[0], Target: parts[1]}
	if len(parts) == 3 {
		if parts[2] != "ro" {
			return Mount{}, fmt.Errorf("%q: the only option is ro", v)
		}
		m.ReadOnly = true
	}
	return m, nil
}

// Params writes kernel command line parameters that apply env (NAME=VALUE), args (nil: keep the
// baked ones) and mounts on top of a baked config.
func Params(env []string, args []string, mounts []Mount) ([]string, error) {
	var out []string
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("environment %q: want NAME=VALUE", kv)
		}
		if i := strings.IndexFunc(name, notInName); i >= 0 {
			return nil, fmt.Errorf("environment %q: the name holds %q, which the kernel command line cannot carry in a name", kv, name[i:i+1])
		}
		p, err := param("kiln.env."+name, value)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if args != nil {
		b, err := argsJSON(args)
		if err != nil {
			return nil, err
		}
		out = append(out, "kiln.args="+b)
	}
	for _, m := range mounts {
		v := m.Tag + ":" + m.Target
		if m.ReadOnly {
			v += ":ro"
		}
		p, err := param("kiln.mount", v)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func param(name, value string) (string, error) {
	if strings.ContainsAny(value, "\"\n") {
		return "", fmt.Errorf("%s: a value on the kernel command line cannot hold a double quote or a newline", name)
	}
	if strings.ContainsAny(value, " \t") {
		return name + `="` + value + `"`, nil
	}
	return name + "=" + value, nil
}

// notInName is what an environment name on the kernel command line cannot hold: blanks end a
// parameter, a double quote toggles quoting, and the rest would not survive as typed.
func notInName(r rune) bool {
	return r <= ' ' || r == '"' || r == 0x7f || r >= utf8.RuneSelf
}

// argsJSON writes args as a JSON array whose strings hold no double quote of their own: the
// kernel splits its command line at blanks outside double quotes, so every quote must be one
// that opens or closes a string. A quote inside an argument is written \u0022, control
// characters \uXXXX (a newline \n). Arguments must be UTF-8: JSON has no way to carry other
// bytes, which kiln-init would see replaced.
func argsJSON(args []string) (string, error) {
	var b strings.Builder
	b.WriteByte('[')
	for i, a := range args {
		if !utf8.ValidString(a) {
			return "", fmt.Errorf("argument %q: not UTF-8, which the kernel command line's JSON cannot carry", a)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, r := range a {
			switch {
			case r == '"':
				b.WriteString(`\u0022`)
			case r == '\\':
				b.WriteString(`\\`)
			case r == '\n':
				b.WriteString(`\n`)
			case r < ' ' || r == 0x7f:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				b.WriteRune(r)
			}
		}
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String(), nil
}
