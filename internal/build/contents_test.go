package build

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
)

// realTempDir is a temp dir reached without symlinks, as the CLI hands build directories over.
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func writeExec(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// A binary copied elsewhere leaves its whole symlink chain behind, like
// /usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk: no dangling middle link.
func TestAddClosureSkipsTheWholeChain(t *testing.T) {
	host := realTempDir(t)
	mawk := filepath.Join(host, "usr/bin/mawk")
	writeExec(t, mawk, "#!/bin/sh\necho awk\n", 0o700)
	alt := filepath.Join(host, "etc/alternatives/awk")
	symlink(t, mawk, alt)                                                        // absolute
	symlink(t, "../../etc/alternatives/awk", filepath.Join(host, "usr/bin/awk")) // relative
	symlink(t, "usr/bin", filepath.Join(host, "bin"))                            // a directory link on the way
	src := filepath.Join(host, "bin/awk")

	res, err := closure.NewResolver("/")
	if err != nil {
		t.Fatal(err)
	}
	files, err := res.Resolve(src)
	if err != nil {
		t.Fatal(err)
	}
	sp := &spec.Spec{File: "kiln.yaml", Dir: realTempDir(t)}
	c := &collected{}
	if err := addClosure(sp, c, spec.Pos{Line: 3, Field: "contents.binaries[0]"}, src, "/bin/awk", files); err != nil {
		t.Fatal(err)
	}
	byPath := map[string]layer.Entry{}
	for _, e := range c.entries {
		byPath[e.Path] = e
	}
	if e := byPath["/bin/awk"]; e.Kind != layer.Regular || e.Source != mawk || e.Mode != 0o755 {
		t.Errorf("/bin/awk is %+v, want a copy of %s, mode 0755", e, mawk)
	}
	for _, p := range []string{src, filepath.Join(host, "usr/bin/awk"), alt, mawk} {
		if e, ok := byPath[p]; ok {
			t.Errorf("the image keeps %s of the binary's own chain: %+v", p, e)
		}
	}
	if len(c.entries) < 3 {
		t.Errorf("the script's interpreter is missing: %v", c.entries)
	}
}

// Symlinks on the way to the build directory are the host's business: a library caller that did not
// resolve them still gets none in the image.
func TestAddClosureDropsBuildDirLinks(t *testing.T) {
	host := realTempDir(t)
	symlink(t, "real", filepath.Join(host, "link"))
	app := filepath.Join(host, "real/proj/app")
	writeExec(t, app, "app", 0o755)
	sp := &spec.Spec{File: "kiln.yaml", Dir: filepath.Join(host, "link/proj")}
	files := []closure.File{
		{Path: filepath.Join(host, "link"), Target: "real", Origin: "requested"},
		{Path: app, Origin: "requested"},
	}
	c := &collected{}
	if err := addClosure(sp, c, spec.Pos{Line: 3}, filepath.Join(sp.Dir, "app"), "/usr/local/bin/app", files); err != nil {
		t.Fatal(err)
	}
	for _, e := range c.entries {
		if strings.HasPrefix(e.Path, host) {
			t.Errorf("a host path leaks into the image: %+v", e)
		}
	}
}

func TestNormalMode(t *testing.T) {
	cases := []struct{ in, want fs.FileMode }{
		{0o600, 0o644}, {0o664, 0o644}, {0o400, 0o644},
		{0o700, 0o755}, {0o744, 0o755}, {0o100, 0o755}, {0o4755 | fs.ModeSetuid, 0o755},
		{fs.ModeSetgid | 0o640, 0o644},
		{fs.ModeDir | 0o700, 0o755}, {fs.ModeDir | fs.ModeSticky | 0o777, 0o755},
		{fs.ModeSymlink | 0o777, 0o777},
	}
	for _, c := range cases {
		if got := normalMode(c.in); got != c.want {
			t.Errorf("normalMode(%v) = %o, want %o", c.in, got, c.want)
		}
	}
}

// Modes of files and trees come from kiln.yaml or are normalised: a copy under another umask
// gives the same entries.
func TestFilesAndTreesNormaliseModes(t *testing.T) {
	dir := realTempDir(t)
	writeExec(t, filepath.Join(dir, "conf"), "c", 0o600)
	writeExec(t, filepath.Join(dir, "tree/run"), "r", 0o700)
	writeExec(t, filepath.Join(dir, "tree/data"), "d", 0o640)
	if err := os.Chmod(filepath.Join(dir, "tree"), 0o700); err != nil {
		t.Fatal(err)
	}
	sp, err := spec.Parse("kiln.yaml", []byte(`name: x
contents:
  files:
    - {src: ./conf, dst: /etc/conf}
    - {src: ./conf, dst: /etc/secret, mode: 0600}
  trees:
    - {src: ./tree, dst: /srv}
`), dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &collected{}
	if err := addFiles(sp, c, nil); err != nil {
		t.Fatal(err)
	}
	if err := addTrees(sp, c, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{"/etc/conf": 0o644, "/etc/secret": 0o600, "/srv": 0o755, "/srv/run": 0o755, "/srv/data": 0o644}
	for _, e := range c.entries {
		if e.Mode != want[e.Path] {
			t.Errorf("%s has mode %o, want %o", e.Path, e.Mode, want[e.Path])
		}
	}
	if len(c.entries) != len(want) {
		t.Errorf("entries %+v, want %d", c.entries, len(want))
	}
}

// A files: source from a stage that is not a regular file (a fifo a step made, a device node)
// is an error at its kiln.yaml line: reading it would hang the build, or never end.
func TestStageFilesRejectNonRegular(t *testing.T) {
	root := realTempDir(t)
	if err := unix.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := closure.NewResolver(root)
	if err != nil {
		t.Fatal(err)
	}
	stage := func(string) (*stageRoot, error) { return &stageRoot{dir: root, id: "sha256:x", res: res}, nil }
	sp, err := spec.Parse("kiln.yaml", []byte(`name: x
stages:
  st: {}
contents:
  files:
    - {src: /pipe, dst: /etc/x, from: st}
`), realTempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	err = addFiles(sp, &collected{stage: stage}, nil)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") || !strings.Contains(err.Error(), "kiln.yaml:6") {
		t.Errorf("files src /pipe from a stage: %v, want an error at kiln.yaml:6 saying it is not a regular file", err)
	}
}
