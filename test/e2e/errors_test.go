package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Bad kiln.yaml input: a clear error naming the file, line and path, and an untouched store.
func TestBuildErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", "name: x\ncontents:\n  binary: [/bin/true]\n", []string{"kiln.yaml:3", "binary"}},
		{"wrong type", "name: x\ncontents:\n  files:\n    - {src: ./a, dst: /a, uid: root}\n", []string{"kiln.yaml:4", "uid"}},
		{"missing file", "name: x\ncontents:\n  files:\n    - {src: ./nope.conf, dst: /a}\n", []string{"kiln.yaml:4", "nope.conf"}},
		{"missing binary", "name: x\ncontents:\n  binaries:\n    - /usr/bin/does-not-exist\n", []string{"kiln.yaml:4", "/usr/bin/does-not-exist"}},
		{"missing name", "contents: {}\n", []string{"kiln.yaml", "name"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			mustKiln(t, root, "images") // create the store so there is something to compare
			before := snapshot(t, root)
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "kiln.yaml"), c.yaml, 0o644)
			writeFile(t, filepath.Join(dir, "a"), "a\n", 0o644)
			r := kilnIn(t, root, "build", dir)
			if r.code == 0 {
				t.Fatalf("build succeeded, want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error lacks %q:\n%s", w, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("a failed build printed to stdout: %q", r.stdout)
			}
			if after := snapshot(t, root); after != before {
				t.Errorf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// originProject compiles app, which finds libanswer.so.1 through the run path $ORIGIN/lib, into
// a build directory, with the library left beside it (not yet in lib/).
func originProject(t *testing.T) string {
	t.Helper()
	need(t, "gcc")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "lib.c"), "int answer(void) { return 42; }\n", 0o644)
	writeFile(t, filepath.Join(dir, "app.c"), "int answer(void);\nint main(void) { return answer() - 42; }\n", 0o644)
	run(t, "gcc", "-shared", "-fPIC", "-o", filepath.Join(dir, "libanswer.so.1"), filepath.Join(dir, "lib.c"),
		"-Wl,-soname,libanswer.so.1")
	run(t, "gcc", "-o", filepath.Join(dir, "app"), filepath.Join(dir, "app.c"), filepath.Join(dir, "libanswer.so.1"),
		"-Wl,-rpath,$ORIGIN/lib")
	writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: app\ncontents:\n  binaries:\n    - ./app\n", 0o644)
	return dir
}

// moveLibrary puts the library where $ORIGIN/lib points.
func moveLibrary(t *testing.T, dir string) {
	t.Helper()
	run(t, "mkdir", "-p", filepath.Join(dir, "lib"))
	run(t, "mv", filepath.Join(dir, "libanswer.so.1"), filepath.Join(dir, "lib"))
}

// A binary whose library is gone: the error names the library, the binary and the kiln.yaml line.
func TestBuildMissingLibrary(t *testing.T) {
	dir := originProject(t)
	root := t.TempDir()
	r := kilnIn(t, root, "build", dir)
	for _, w := range []string{"kiln.yaml:4", "libanswer.so.1"} {
		if r.code == 0 || !strings.Contains(r.stderr, w) {
			t.Errorf("exit %d, error lacks %q:\n%s", r.code, w, r.stderr)
		}
	}
	// Put the library where $ORIGIN/lib points and the same kiln.yaml builds, and the app runs.
	moveLibrary(t, dir)
	if out, err := exec.Command(filepath.Join(dir, "app")).CombinedOutput(); err != nil {
		t.Fatalf("app on the host: %v %s", err, out)
	}
	mustKiln(t, root, "build", dir)
	rootfs := unpack(t, root, inspect(t, root, "app"))
	// Through the image's own ld.so: glibc finds a main program's $ORIGIN in /proc, which a bare
	// chroot lacks; given the path, ld.so takes $ORIGIN from it.
	if out, err := exec.Command("chroot", rootfs, "/lib64/ld-linux-x86-64.so.2", "/usr/local/bin/app").CombinedOutput(); err != nil {
		t.Fatalf("app in the image: %v %s", err, out)
	}
}

// A build directory reached through a symlink gives the image its real path gives: neither the
// link nor the real path of the host shows in it.
func TestBuildThroughSymlinkedDir(t *testing.T) {
	dir := originProject(t)
	moveLibrary(t, dir)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	real := lastLine(mustKiln(t, t.TempDir(), "build", dir).stdout)
	root := t.TempDir()
	linked := lastLine(mustKiln(t, root, "build", link).stdout)
	if linked != real {
		t.Errorf("built through %s: %s; through the real path: %s", link, linked, real)
	}
	listing := layerListing(t, root, inspect(t, root, "app").Layers[0].Digest)
	if strings.Contains(listing, t.Name()) || !strings.Contains(listing, "usr/local/bin/lib/libanswer.so.1") {
		t.Errorf("the layer shows host paths or lacks the $ORIGIN library:\n%s", listing)
	}
}
