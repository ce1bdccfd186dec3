package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// stepsBase builds "bb", a busybox image with a file to delete (/etc/doomed) and a directory to
// replace (/opt/app), for steps to work on.
func stepsBase(t *testing.T, root string) {
	t.Helper()
	need(t, "busybox")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: steps run in containers, which need root")
	}
	bb, _ := exec.LookPath("busybox")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "doomed"), "doomed\n", 0o644)
	writeFile(t, filepath.Join(dir, "old.txt"), "old\n", 0o644)
	var links strings.Builder
	for _, a := range []string{"sh", "cat", "ls", "echo", "rm", "mkdir", "cp", "test", "touch"} {
		links.WriteString("    - {path: /usr/bin/" + a + ", target: busybox}\n")
	}
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: bb
contents:
  files:
    - {src: `+bb+`, dst: /usr/bin/busybox, mode: 0755}
    - {src: ./doomed, dst: /etc/doomed}
    - {src: ./old.txt, dst: /opt/app/old.txt}
  symlinks:
    - {path: /bin, target: usr/bin}
`+links.String()+`  dirs: [{path: /tmp, mode: 01777}]
config:
  cmd: [/bin/sh]
`, 0o644)
	mustKiln(t, root, "build", dir)
}

const stepsYAML = `name: app
base: bb
steps:
  - echo made > /made.txt
  - rm /etc/doomed
  - rm -rf /opt/app && mkdir /opt/app && echo new > /opt/app/new.txt
  - run: [/bin/sh, -c, "cp input.txt /from-build.txt && echo $GREETING > /greeting"]
    env: {GREETING: hi}
`

// stepsApp writes the build directory of "app", built on bb by stepsYAML.
func stepsApp(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln.yaml"), stepsYAML, 0o644)
	writeFile(t, filepath.Join(dir, "input.txt"), "one\n", 0o644)
	return dir
}

// fromCache lists which steps `kiln build` said came from the cache.
func fromCache(stderr string, steps int) []bool {
	cached := make([]bool, steps)
	for i := range cached {
		cached[i] = strings.Contains(stderr, "step "+strconv.Itoa(i+1)+": from cache")
	}
	return cached
}

func wantCached(t *testing.T, what string, r result, want ...bool) {
	t.Helper()
	got := fromCache(r.stderr, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s: step %d from cache = %v, want %v\n%s", what, i+1, got[i], want[i], r.stderr)
		}
	}
}

func TestStepsLayersCacheAndReproducibility(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	dir := stepsApp(t)

	first := mustKiln(t, root, "build", dir)
	wantCached(t, "first build", first, false, false, false, false)
	digest := lastLine(first.stdout)
	img := inspect(t, root, "app")
	if len(img.Layers) != 1+1+4 {
		t.Fatalf("app has %d layers, want base, contents and 4 steps", len(img.Layers))
	}

	out := mustKiln(t, root, "run", "--rm", "app", "sh", "-c",
		`cat /made.txt; test -e /etc/doomed && echo doomed-present; ls /opt/app; cat /from-build.txt /greeting; test -e /build || echo no-build`).stdout
	if want := "made\nnew.txt\none\nhi\nno-build\n"; out != want {
		t.Errorf("image content:\n%s\nwant:\n%s", out, want)
	}

	// Nothing changed: every step from the cache, the same image.
	again := mustKiln(t, root, "build", dir)
	wantCached(t, "second build", again, true, true, true, true)
	if d := lastLine(again.stdout); d != digest {
		t.Errorf("cached rebuild: digest %s, want %s", d, digest)
	}

	// Editing the third step keeps the two before it.
	edited := strings.Replace(stepsYAML, "echo new >", "echo newer >", 1)
	writeFile(t, filepath.Join(dir, "kiln.yaml"), edited, 0o644)
	r := mustKiln(t, root, "build", dir)
	wantCached(t, "third step edited", r, true, true, false, false)
	if out := mustKiln(t, root, "run", "--rm", "app", "cat", "/opt/app/new.txt").stdout; out != "newer\n" {
		t.Errorf("after editing step 3: /opt/app/new.txt = %q", out)
	}

	// A file of the build directory changed: every step can read it, so every step runs again.
	writeFile(t, filepath.Join(dir, "input.txt"), "two\n", 0o644)
	r = mustKiln(t, root, "build", dir)
	wantCached(t, "input changed", r, false, false, false, false)
	if out := mustKiln(t, root, "run", "--rm", "app", "cat", "/from-build.txt").stdout; out != "two\n" {
		t.Errorf("after changing input.txt: /from-build.txt = %q", out)
	}
	cached := lastLine(mustKiln(t, root, "build", dir).stdout)

	// --no-cache runs every step, and gives the same image each time.
	n1 := mustKiln(t, root, "build", "--no-cache", dir)
	wantCached(t, "--no-cache", n1, false, false, false, false)
	n2 := mustKiln(t, root, "build", "--no-cache", dir)
	if a, b := lastLine(n1.stdout), lastLine(n2.stdout); a != b || a != cached {
		t.Errorf("--no-cache builds: %s and %s, cached build %s: want one digest", a, b, cached)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "build")); len(entries) != 0 {
		t.Errorf("steps left %d entries in ROOT/build", len(entries))
	}
}

func TestStepsBuildDirAccess(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "input.txt"), "x\n", 0o644)
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: access
base: bb
steps:
  - touch input.txt 2>/dev/null && echo writable > /ro || echo read-only > /ro
  - {run: "echo changed > input.txt && cat input.txt > /copy", copy: true}
  - {run: "ls input.txt > /wd 2>&1 || echo elsewhere > /wd", workdir: /tmp}
`, 0o644)
	mustKiln(t, root, "build", dir)
	out := mustKiln(t, root, "run", "--rm", "access", "cat", "/ro", "/copy", "/wd").stdout
	if want := "read-only\nchanged\nelsewhere\n"; out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "input.txt")); string(b) != "x\n" {
		t.Errorf("a copy: true step changed the build directory: input.txt = %q", b)
	}
}

func TestStepsFailure(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	before := mustKiln(t, root, "images").stdout
	snap := snapshot(t, root)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: broken
base: bb
steps:
  - echo fine > /fine
  - |
    echo first words
    echo last words >&2
    exit 3
`, 0o644)
	r := kilnIn(t, root, "build", dir)
	if r.code == 0 {
		t.Fatalf("a failing step built: %s", r.stdout)
	}
	for _, want := range []string{"kiln.yaml:5: steps[1]: exited with status 3", "last words"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if after := mustKiln(t, root, "images").stdout; after != before {
		t.Errorf("kiln images changed:\n%s\nwas:\n%s", after, before)
	}
	if s := snapshot(t, root); s != snap {
		t.Errorf("the store changed:\n%s\nwas:\n%s", s, snap)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "build")); len(entries) != 0 {
		t.Errorf("a failed step left %d entries in ROOT/build", len(entries))
	}
	// A command that is not there is a failed step too, named by its line.
	writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: broken\nbase: bb\nsteps:\n  - run: [/no/such/program]\n", 0o644)
	if r := kilnIn(t, root, "build", dir); r.code == 0 || !strings.Contains(r.stderr, "kiln.yaml:4: steps[0]: ") ||
		!strings.Contains(r.stderr, "/no/such/program") {
		t.Errorf("missing program: exit %d\n%s", r.code, r.stderr)
	}
}
