package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// debianMirror is where debootstrap and the example's apt-get download from.
const debianMirror = "http://deb.debian.org/debian"

// debianTarball returns a `debootstrap --variant=minbase bookworm` root filesystem as a tar, made
// once and kept in $KILN_TEST_CACHE (a temporary directory when unset).
func debianTarball(t *testing.T) string {
	t.Helper()
	need(t, "debootstrap", "tar")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: debootstrap and build steps need root")
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Get(debianMirror + "/dists/bookworm/Release")
	if err != nil {
		t.Skipf("SKIP: %s is unreachable: %v", debianMirror, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Skipf("SKIP: %s/dists/bookworm/Release: %s", debianMirror, resp.Status)
	}
	cache := os.Getenv("KILN_TEST_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "kiln-test-cache")
	}
	tarball := filepath.Join(cache, "debian-bookworm-minbase.tar")
	if _, err := os.Stat(tarball); err == nil {
		return tarball
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	rootfs := t.TempDir()
	t.Logf("debootstrap --variant=minbase bookworm into %s (cached as %s)", rootfs, tarball)
	run(t, "debootstrap", "--variant=minbase", "bookworm", rootfs, debianMirror)
	run(t, "tar", "--numeric-owner", "-C", rootfs, "-cf", tarball+".partial", ".")
	if err := os.Rename(tarball+".partial", tarball); err != nil {
		t.Fatal(err)
	}
	return tarball
}

var builtLine = regexp.MustCompile(`built \[jq:latest\] in \S+ \((\d+) files`)

// The two-stage example of examples/debian: Debian imported from a debootstrap tarball, jq
// installed by apt in a stage, and only jq's closure, found in the stage's ld.so.cache, shipped.
func TestDebianTwoStageExample(t *testing.T) {
	tarball := debianTarball(t)
	root := t.TempDir()
	mustKiln(t, root, "import", "-t", "debian:bookworm", tarball)
	example := filepath.Join(repoRoot, "examples", "debian")

	first := mustKiln(t, root, "build", example)
	img := inspect(t, root, "jq")
	if len(img.Layers) != 1 {
		t.Errorf("jq has %d layers, want its contents only", len(img.Layers))
	}
	m := builtLine.FindStringSubmatch(first.stderr)
	if m == nil {
		t.Fatalf("no summary line:\n%s", first.stderr)
	}
	if n, _ := strconv.Atoi(m[1]); n > 40 {
		t.Errorf("jq's image has %d files: more than a program and its libraries", n)
	}

	version := mustKiln(t, root, "run", "--rm", "jq").stdout
	if !strings.HasPrefix(version, "jq-") {
		t.Errorf("jq --version printed %q", version)
	}
	cmd := exec.Command(kiln, "--root", root, "run", "-i", "--rm", "jq", "-c", ".a | map(. * 2)")
	cmd.Stdin = strings.NewReader(`{"a": [1, 2, 3]}`)
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "[2,4,6]\n" {
		t.Errorf("jq on a document: %v\n%s", err, out)
	}

	// Unchanged: the stage's apt step comes from the cache, and so does the image.
	again := mustKiln(t, root, "build", example)
	if !strings.Contains(again.stderr, "stage debian: step 1/1: CACHED ") || lastLine(again.stdout) != lastLine(first.stdout) {
		t.Errorf("cached rebuild: %s, was %s\n%s", lastLine(again.stdout), lastLine(first.stdout), again.stderr)
	}
	// From scratch, apt downloads again, yet the shipped files are the same: the same digest.
	cold := mustKiln(t, root, "build", "--no-cache", example)
	if lastLine(cold.stdout) != lastLine(first.stdout) {
		t.Errorf("--no-cache build: %s, was %s", lastLine(cold.stdout), lastLine(first.stdout))
	}
}
