package bootconfig

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Decode parses a config.json as encoding/json.Unmarshal does into a Config: unknown keys are
// skipped, null leaves a field as it is, the last of repeated keys wins. It differs only on
// what kiln bake never writes: keys match exactly (encoding/json also takes other
// cases), a number under an unknown key is skipped unchecked, invalid UTF-8 is kept as it is
// (encoding/json makes it U+FFFD).
//
// kiln-init's own: under emulation (TCG), the first json.Unmarshal in a fresh process costs
// 30-40 ms, nearly all of it running encoding/json's and reflect's code for the first time
// (every new instruction is translated); this runs a few hundred instructions.
func Decode(b []byte) (*Config, error) {
	d := &decoder{s: b}
	var c Config
	d.object(func(key string) { d.configField(&c, key) })
	if d.err == nil && d.peek() != 0 {
		d.fail("data after the top-level object")
	}
	if d.err != nil {
		return nil, d.err
	}
	return &c, nil
}

// DecodeStrings parses a JSON array of strings (kiln.args's value).
func DecodeStrings(b []byte) ([]string, error) {
	d := &decoder{s: b}
	v := d.strs()
	if d.err == nil && d.peek() != 0 {
		d.fail("data after the array")
	}
	return v, d.err
}

func (d *decoder) configField(c *Config, key string) {
	switch key {
	case "args":
		d.setStrings(&c.Args)
	case "entrypoint":
		d.setStrings(&c.Entrypoint)
	case "env":
		d.setStrings(&c.Env)
	case "workdir":
		d.setString(&c.Workdir)
	case "user":
		d.setString(&c.User)
	case "hostname":
		d.setString(&c.Hostname)
	case "net":
		if !d.null() {
			c.Net = &Net{}
			d.object(func(k string) { d.netField(c.Net, k) })
		}
	case "mounts":
		if !d.null() {
			c.Mounts = []Mount{}
			d.array(func() {
				var m Mount
				d.object(func(k string) { d.mountField(&m, k) })
				c.Mounts = append(c.Mounts, m)
			})
		}
	case "modules":
		d.setStrings(&c.Modules)
	case "net_modules":
		d.setStrings(&c.NetModules)
	case "mount_modules":
		d.setStrings(&c.MountModules)
	default:
		d.skip()
	}
}

func (d *decoder) netField(n *Net, key string) {
	switch key {
	case "address":
		d.setString(&n.Address)
	case "gateway":
		d.setString(&n.Gateway)
	case "dns":
		d.setStrings(&n.DNS)
	default:
		d.skip()
	}
}

func (d *decoder) mountField(m *Mount, key string) {
	switch key {
	case "tag":
		d.setString(&m.Tag)
	case "target":
		d.setString(&m.Target)
	case "readonly":
		if !d.null() {
			m.ReadOnly = d.boolean()
		}
	default:
		d.skip()
	}
}

// decoder reads JSON from s; the first error stops it (every method is then a no-op).
type decoder struct {
	s   []byte
	pos int
	err error
}

func (d *decoder) fail(want string) {
	if d.err == nil {
		d.err = fmt.Errorf("JSON at offset %d: %s", d.pos, want)
	}
	d.pos = len(d.s)
}

// peek skips white space and returns the next byte, 0 at the end.
func (d *decoder) peek() byte {
	for d.pos < len(d.s) {
		switch c := d.s[d.pos]; c {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return c
		}
	}
	return 0
}

// eat consumes c if it comes next.
func (d *decoder) eat(c byte) bool {
	if d.err == nil && d.peek() == c {
		d.pos++
		return true
	}
	return false
}

func (d *decoder) expect(c byte) {
	if !d.eat(c) {
		d.fail("want " + string(c))
	}
}

// literal consumes word (true, false, null) if it comes next.
func (d *decoder) literal(word string) bool {
	if d.err == nil && d.peek() == word[0] && len(d.s)-d.pos >= len(word) && string(d.s[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return true
	}
	return false
}

func (d *decoder) null() bool { return d.literal("null") }

func (d *decoder) boolean() bool {
	switch {
	case d.literal("true"):
		return true
	case !d.literal("false"):
		d.fail("want true or false")
	}
	return false
}

// object calls field with each key; field consumes the value.
func (d *decoder) object(field func(key string)) {
	if d.null() {
		return
	}
	d.expect('{')
	if d.eat('}') {
		return
	}
	for d.err == nil {
		key := d.str()
		d.expect(':')
		field(key)
		if !d.eat(',') {
			d.expect('}')
			return
		}
	}
}

// array calls elem for each element; elem consumes it.
func (d *decoder) array(elem func()) {
	d.expect('[')
	if d.eat(']') {
		return
	}
	for d.err == nil {
		elem()
		if !d.eat(',') {
			d.expect(']')
			return
		}
	}
}

func (d *decoder) setString(p *string) {
	if !d.null() {
		*p = d.str()
	}
}

func (d *decoder) setStrings(p *[]string) {
	if !d.null() {
		*p = d.strs()
	}
}

func (d *decoder) strs() []string {
	v := []string{}
	d.array(func() { v = append(v, d.str()) })
	return v
}

// skip consumes a value of any kind.
func (d *decoder) skip() {
	switch c := d.peek(); {
	case c == '"':
		d.str()
	case c == '{':
		d.object(func(string) { d.skip() })
	case c == '[':
		d.array(d.skip)
	case d.literal("true"), d.literal("false"), d.literal("null"):
	case c == '-' || c >= '0' && c <= '9':
		for d.pos < len(d.s) && isNumberByte(d.s[d.pos]) {
			d.pos++
		}
	default:
		d.fail("want a value")
	}
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// str reads a string, unescaping it.
func (d *decoder) str() string {
	if !d.eat('"') {
		d.fail("want a string")
		return ""
	}
	var out []byte
	for d.pos < len(d.s) {
		c := d.s[d.pos]
		d.pos++
		switch {
		case c == '"':
			return string(out)
		case c < 0x20:
			d.fail("control character in a string")
			return ""
		case c == '\\':
			out = d.escape(out)
		default:
			out = append(out, c)
		}
	}
	d.fail("unterminated string")
	return ""
}

// escape appends what the escape after a backslash stands for.
func (d *decoder) escape(out []byte) []byte {
	if d.pos >= len(d.s) {
		d.fail("unterminated string")
		return out
	}
	c := d.s[d.pos]
	d.pos++
	switch c {
	case '"', '\\', '/':
		return append(out, c)
	case 'b':
		return append(out, '\b')
	case 'f':
		return append(out, '\f')
	case 'n':
		return append(out, '\n')
	case 'r':
		return append(out, '\r')
	case 't':
		return append(out, '\t')
	case 'u':
		r := d.hex4()
		if utf16.IsSurrogate(r) {
			// A pair is two escapes; a lone half becomes U+FFFD, as in encoding/json.
			r2 := utf8.RuneError
			if len(d.s)-d.pos >= 6 && d.s[d.pos] == '\\' && d.s[d.pos+1] == 'u' {
				save := d.pos
				d.pos += 2
				if r2 = utf16.DecodeRune(r, d.hex4()); r2 == utf8.RuneError {
					d.pos = save
				}
			}
			r = r2
		}
		return utf8.AppendRune(out, r)
	}
	d.fail("unknown escape \\" + string(c))
	return out
}

func (d *decoder) hex4() rune {
	if len(d.s)-d.pos < 4 {
		d.fail("short \\u escape")
		return 0
	}
	var r rune
	for _, c := range d.s[d.pos : d.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			d.fail("bad \\u escape")
			return 0
		}
	}
	d.pos += 4
	return r
}
