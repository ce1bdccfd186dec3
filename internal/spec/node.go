package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// decode returns the root node of the only YAML document in data.
func decode(file string, data []byte) (*yaml.Node, error) {
	if line, err := checkText(data); err != nil {
		return nil, &Error{File: file, Line: line, Err: err}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return nil, &Error{File: file, Err: ErrEmpty} // nothing but comments and blank lines
	}
	if err != nil {
		return nil, syntaxError(file, data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, syntaxError(file, data, err)
		}
		return nil, &Error{File: file, Line: extra.Line, Err: errors.New("more than one YAML document")}
	}
	if len(doc.Content) == 0 || isNull(deref(doc.Content[0])) {
		return nil, &Error{File: file, Err: ErrEmpty}
	}
	return deref(doc.Content[0]), nil
}

// checkText finds what YAML does not allow in a file, with its line, because yaml.v3
// reports such errors without one.
func checkText(data []byte) (int, error) {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, errors.New("invalid UTF-8 (kiln.yaml must be UTF-8)")
		case r == '\n':
			line++
		case !printable(r):
			return line, fmt.Errorf("character %U is not allowed in YAML", r)
		}
		data = data[size:]
	}
	return 0, nil
}

// printable reports whether YAML 1.2 allows r in a document.
func printable(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r', r == 0x85:
		return true
	case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xd7ff:
		return true
	case r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}

var yamlLine = lazyRegexp(`(?s)^yaml: line (\d+): (.*)$`)
var unknownAnchor = lazyRegexp(`^yaml: unknown anchor '(.*)' referenced$`)

// syntaxError turns a yaml.v3 error into an *Error that keeps yaml's line.
func syntaxError(file string, data []byte, err error) error {
	msg := err.Error()
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Err: errors.New(m[2])}
	}
	if m := unknownAnchor().FindStringSubmatch(msg); m != nil {
		line := 1 + bytes.Count(data[:max(0, bytes.Index(data, []byte("*"+m[1])))], []byte("\n"))
		return &Error{File: file, Line: line, Err: errors.New(strings.TrimPrefix(msg, "yaml: "))}
	}
	// yaml.v3 omits the line when the problem is on the first one.
	return &Error{File: file, Line: 1, Err: errors.New(strings.TrimPrefix(msg, "yaml: "))}
}

// deref follows an alias to the value it names.
func deref(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias // an anchor is never on an alias, so one step is enough
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "want an integer, got string \"root\"".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return describeScalar(n)
	}
	return "nothing"
}

func describeScalar(n *yaml.Node) string {
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!str":
		return "string " + strconv.Quote(v)
	case "!!int":
		return "integer " + show(v)
	case "!!float":
		return "number " + show(v)
	case "!!bool":
		return "boolean " + show(v)
	}
	return fmt.Sprintf("%q tagged %q", v, n.Tag)
}

// show returns s as it is when it prints on one line, else quoted: errors are one line each.
func show(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
