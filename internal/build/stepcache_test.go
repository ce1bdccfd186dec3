package build

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-project/kiln/internal/spec"
)

// The build directory's key follows every file but kiln.yaml, whose steps are keyed one by one.
func TestBuildDirKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kiln.yaml", "name: x\n")
	write("input.txt", "one\n")
	sp := &spec.Spec{File: filepath.Join(dir, "kiln.yaml"), Dir: dir}
	key := func() string {
		t.Helper()
		// Started now: every file is racily clean, so its content is in the key.
		k, err := buildDirKey(sp, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	k0 := key()
	if key() != k0 {
		t.Fatal("the key of an unchanged directory changed")
	}
	write("kiln.yaml", "name: y\n")
	if key() != k0 {
		t.Error("editing kiln.yaml changed the build directory's key")
	}
	write("input.txt", "two\n")
	k1 := key()
	if k1 == k0 {
		t.Error("editing input.txt kept the key")
	}
	if err := os.Symlink("input.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if key() == k1 {
		t.Error("adding a symlink kept the key")
	}
}

func TestOneLine(t *testing.T) {
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"/bin/sh", "-c", "make"}, "/bin/sh -c make"},
		{[]string{"/bin/sh", "-c", "set -e\nmake\n"}, "/bin/sh -c set -e ..."},
	}
	for _, c := range cases {
		if got := oneLine(c.argv); got != c.want {
			t.Errorf("oneLine(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
}
