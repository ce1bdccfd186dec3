package spec

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that its result is either a
// spec or an error made of *Error values that name the file.
func FuzzParse(f *testing.F) {
	for _, example := range docExamples(f) {
		f.Add([]byte(example))
	}
	for _, seed := range []string{
		"", "~", "name: x\n", "name: x\n---\nname: y\n", "a: &a [*a]\nname: x\ncontents: {dirs: *a}\n",
		"name: x\nconfig: {env: [A=1, A=2], ports: [0, 80/x], stop-signal: RTMIN+99}\n",
		"name: x\ncontents: {files: [{src: ./app.conf, dst: /../x, mode: 0o7777}]}\n",
		"name: x\naccounts: {users: [{name: a, uid: 1}, {name: a, uid: 1}], run-as: b}\n",
		"name: x\ncontents:\n  timezone: !!binary aGVsbG8=\n  nss: !custom x\n",
		"? [a]\n: b\n", "name: x\ntag: \"\\x01\"\n",
	} {
		f.Add([]byte(seed))
	}
	dir := buildDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("kiln.yaml", data, dir)
		if (s == nil) == (err == nil) {
			t.Fatalf("Parse returned spec %v and error %v: want exactly one", s != nil, err)
		}
		if err == nil {
			if s.Name == "" || s.Tag == "" {
				t.Fatalf("a valid spec without name or tag: %+v", s)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not a *spec.Error: %v", err, err)
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(line, "kiln.yaml") {
				t.Fatalf("error line %q does not name the file", line)
			}
		}
	})
}
