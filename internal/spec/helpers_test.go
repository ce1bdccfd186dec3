package spec

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildDir makes a build directory holding the sources the tests and docs name.
func buildDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{
		"app.conf":          0o644,
		"bin/app":           0o755,
		"static/index.html": 0o644,
		"python-3.12.tar":   0o644,
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// parse parses a kiln.yaml named "kiln.yaml" in a fresh build directory.
func parse(t *testing.T, yaml string) (*Spec, error) {
	t.Helper()
	return Parse("kiln.yaml", []byte(yaml), buildDir(t))
}

// mustParse fails the test on any error.
func mustParse(t *testing.T, yaml string) *Spec {
	t.Helper()
	s, err := parse(t, yaml)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

// wantLines checks that every line of want is a line of err's message, and that err
// is made of *Error values.
func wantLines(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %T is not a *spec.Error", err)
	}
	got := strings.Split(err.Error(), "\n")
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing line\n  %s\nin\n  %s", w, strings.Join(got, "\n  "))
		}
	}
}
