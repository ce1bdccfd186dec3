package e2e

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// fromCache lists which steps of the image (not of its stages) `kiln build` said came from the cache.
func fromCache(stderr string, steps int) []bool {
	cached := make([]bool, steps)
	for i := range cached {
		cached[i] = strings.Contains("\n"+stderr, "\nstep "+strconv.Itoa(i+1)+"/"+strconv.Itoa(steps)+": CACHED ")
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
	// Deletions are OCI whiteouts: a deleted file, and a directory removed and made again as an
	// opaque directory.
	if names := layerNames(t, root, img.Layers[3].Digest); !slices.Contains(names, "etc/.wh.doomed") {
		t.Errorf("step 2's layer lacks the whiteout of /etc/doomed: %v", names)
	}
	if names := layerNames(t, root, img.Layers[4].Digest); !slices.Contains(names, "opt/app/.wh..wh..opq") ||
		!slices.Contains(names, "opt/app/new.txt") {
		t.Errorf("step 3's layer lacks the opaque /opt/app: %v", names)
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

// Contents taken from a stage come from the stage's root, resolved there (its PATH, its symlinks),
// never from the host; the stage itself is not tagged.
func TestStagesFrom(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: thin
stages:
  tools:
    base: bb
    steps:
      - mkdir -p /opt/bb /srv/www && cp /usr/bin/busybox /opt/bb/busybox && ln -s /opt/bb/busybox /usr/bin/bbl
      - echo staged > /srv/www/index.html && ln -s index.html /srv/www/home.html
contents:
  binaries:
    - {src: bbl, from: tools}
    - {src: /opt/bb/busybox, dst: /bin/sh, from: tools}
  files:
    - {src: /srv/www/home.html, dst: /etc/home, from: tools}
  trees:
    - {src: /srv/www, from: tools}
`, 0o644)
	first := mustKiln(t, root, "build", dir)
	if !strings.Contains(first.stderr, "stage tools: step 1/2: /bin/sh -c mkdir") {
		t.Errorf("the stage's steps are not shown:\n%s", first.stderr)
	}
	out := mustKiln(t, root, "run", "--rm", "thin", "sh", "-c",
		"cat /etc/home /srv/www/home.html; ls /usr/bin; ls /opt/bb; test -e /etc/doomed || echo no-base").stdout
	if want := "staged\nstaged\nbbl\nbusybox\nno-base\n"; out != want {
		t.Errorf("image content:\n%s\nwant:\n%s", out, want)
	}
	if imgs := mustKiln(t, root, "images").stdout; strings.Contains(imgs, "tools") {
		t.Errorf("a stage was tagged:\n%s", imgs)
	}
	again := mustKiln(t, root, "build", dir)
	if lastLine(again.stdout) != lastLine(first.stdout) || strings.Count(again.stderr, ": CACHED ") != 2 {
		t.Errorf("cached rebuild: %s, was %s\n%s", lastLine(again.stdout), lastLine(first.stdout), again.stderr)
	}

	// An absolute symlink in the stage leads inside the stage's root, not to the host's file.
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: escape
stages:
  s:
    base: bb
    steps: [ln -s /etc/os-release /osr]
contents:
  files: [{src: /osr, from: s}]
`, 0o644)
	if _, err := os.Stat("/etc/os-release"); err != nil {
		t.Skip("SKIP: the host has no /etc/os-release to try to escape to")
	}
	r := kilnIn(t, root, "build", dir)
	if r.code == 0 || !strings.Contains(r.stderr, "kiln.yaml:7: contents.files[0].src: in stage s: ") {
		t.Errorf("a link out of the stage: exit %d\n%s", r.code, r.stderr)
	}
}

// A fifo in a stage where a file or a program is taken from is an error at its kiln.yaml line,
// not a build blocked for good on opening it.
func TestStageFifoIsAnError(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	dir := t.TempDir()
	for _, c := range []struct{ item, want string }{
		{"files: [{src: /p, dst: /etc/p, from: s}]", "kiln.yaml:7: contents.files[0].src: /p in stage s: not a regular file"},
		// A #! script whose interpreter is the fifo: the closure opens it to read its header.
		{"binaries: [{src: /app, from: s}]", "kiln.yaml:7: contents.binaries[0].src: in stage s: closure: read /p: open /p: not a regular file"},
	} {
		writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: fifo\nstages:\n  s:\n    base: bb\n    steps: [\"mkfifo /p && printf '#!/p\\\\n' >/app && chmod 755 /app\"]\n"+
			"contents:\n  "+c.item+"\n", 0o644)
		r := kilnIn(t, root, "build", dir)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, want an error with %q:\n%s", c.item, r.code, c.want, r.stderr)
		}
	}
}

// Errors in the stage graph name the kiln.yaml line and leave the store as it was.
func TestStageErrors(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	snap := snapshot(t, root)
	dir := t.TempDir()
	cases := []struct{ yaml, want string }{
		{"name: x\nstages:\n  a: {base: bb}\ncontents:\n  binaries:\n    - {src: sh, from: b}\n",
			`kiln.yaml:6: contents.binaries[0].from: no stage "b" (stages: a)`},
		{"name: x\nstages:\n  a:\n    base: b\n  b:\n    base: a\nbase: a\n",
			`kiln.yaml:6: stages.b.base: stages use each other in a cycle: a -> b -> a`},
		{"name: x\nbase: bb\nsteps:\n  - run: [./not-executable.sh]\n", `kiln.yaml:4: steps[0]: `},
	}
	writeFile(t, filepath.Join(dir, "not-executable.sh"), "#!/bin/sh\necho hi\n", 0o644)
	for _, c := range cases {
		writeFile(t, filepath.Join(dir, "kiln.yaml"), c.yaml, 0o644)
		r := kilnIn(t, root, "build", dir)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, want an error with %q:\n%s", c.yaml, r.code, c.want, r.stderr)
		}
	}
	if r := kilnIn(t, root, "build", filepath.Join(dir, "missing")); r.code == 0 || !strings.Contains(r.stderr, "build directory") {
		t.Errorf("a missing build directory: exit %d\n%s", r.code, r.stderr)
	}
	if s := snapshot(t, root); s != snap {
		t.Errorf("the store changed:\n%s\nwas:\n%s", s, snap)
	}
}

// A squashed image is one layer holding the base too; what a step deleted from the base is gone
// from it (no whiteout needed); the same inputs give the same digest.
func TestStepsSquash(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	dir := stepsApp(t)
	unsquashed := lastLine(mustKiln(t, root, "build", dir).stdout)
	first := mustKiln(t, root, "build", "--squash", "-t", "flat", dir)
	img := inspect(t, root, "flat")
	if len(img.Layers) != 1 {
		t.Fatalf("squashed image has %d layers, want 1", len(img.Layers))
	}
	names := layerNames(t, root, img.Layers[0].Digest)
	for _, n := range names {
		if strings.Contains(n, ".wh.") || n == "etc/doomed" || n == "opt/app/old.txt" {
			t.Errorf("squashed layer holds %s", n)
		}
	}
	if !slices.Contains(names, "usr/bin/busybox") || !slices.Contains(names, "made.txt") {
		t.Errorf("squashed layer lacks the base or a step's file: %v", names)
	}
	if lastLine(first.stdout) == unsquashed {
		t.Error("--squash gave the unsquashed image")
	}
	out := mustKiln(t, root, "run", "--rm", "flat", "sh", "-c",
		`cat /made.txt; test -e /etc/doomed && echo doomed-present; ls /opt/app; cat /greeting`).stdout
	if want := "made\nnew.txt\nhi\n"; out != want {
		t.Errorf("squashed content:\n%s\nwant:\n%s", out, want)
	}
	cached := mustKiln(t, root, "build", "--squash", "-t", "flat", dir)
	if !strings.Contains(cached.stderr, "squash: CACHED ") {
		t.Errorf("squash not from cache:\n%s", cached.stderr)
	}
	cold := mustKiln(t, root, "build", "--squash", "--no-cache", "-t", "flat", dir)
	if a, b, c := lastLine(first.stdout), lastLine(cached.stdout), lastLine(cold.stdout); a != b || a != c {
		t.Errorf("squashed digests differ: %s, cached %s, --no-cache %s", a, b, c)
	}
	// layers: squash in kiln.yaml is the same as --squash.
	writeFile(t, filepath.Join(dir, "kiln.yaml"), "layers: squash\n"+stepsYAML, 0o644)
	if d := lastLine(mustKiln(t, root, "build", "-t", "flat", dir).stdout); d != lastLine(first.stdout) {
		t.Errorf("layers: squash gave %s, --squash %s", d, lastLine(first.stdout))
	}
}

// An image of one layer squashes, and a stage of one layer (contents only) is a source for
// from:, though overlayfs will not mount a lone lower layer by itself.
func TestOneLayerSquashAndStage(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "motd"), "from the stage\n", 0o644)
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: one
base: bb
stages:
  files:
    contents:
      files: [{src: ./motd, dst: /etc/motd}]
contents:
  files: [{src: /etc/motd, from: files}]
`, 0o644)
	mustKiln(t, root, "build", dir)
	if out := mustKiln(t, root, "run", "--rm", "one", "cat", "/etc/motd").stdout; out != "from the stage\n" {
		t.Errorf("a file from a one-layer stage: %q", out)
	}
	// From scratch, contents only: one layer to squash.
	writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: flat\ncontents:\n  files: [{src: ./motd, dst: /etc/motd}]\n", 0o644)
	plain := lastLine(mustKiln(t, root, "build", dir).stdout)
	if n := len(inspect(t, root, "flat").Layers); n != 1 {
		t.Fatalf("flat has %d layers, want 1 for this test", n)
	}
	squashed := lastLine(mustKiln(t, root, "build", "--squash", "-t", "flat:squashed", dir).stdout)
	img := inspect(t, root, "flat:squashed")
	if len(img.Layers) != 1 || squashed == plain {
		t.Errorf("squashed: %d layers, digest %s (unsquashed %s)", len(img.Layers), squashed, plain)
	}
	if names := layerNames(t, root, img.Layers[0].Digest); !slices.Contains(names, "etc/motd") {
		t.Errorf("squashed one-layer image holds %v, want etc/motd", names)
	}
}

// layerNames lists the entries of a stored gzip layer, as written.
func layerNames(t *testing.T, root, digest string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "store", "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("layer %s: %v", digest, err)
	}
	var names []string
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("layer %s: %v", digest, err)
		}
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"))
	}
}
