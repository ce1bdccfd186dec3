package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

type inspected struct {
	Digest string
	Tags   []string
	Config struct {
		Entrypoint []string
		Cmd        []string
		Env        []string
		User       string
		Labels     map[string]string
	}
	Layers []struct {
		Digest, DiffID string
		Size           int64
	}
}

func inspect(t *testing.T, root, ref string) inspected {
	t.Helper()
	var out []inspected
	r := mustKiln(t, root, "inspect", ref)
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v\n%s", ref, err, r.stdout)
	}
	return out[0]
}

func TestBuildCurlExample(t *testing.T) {
	need(t, "curl")
	root := t.TempDir()
	r := mustKiln(t, root, "build", filepath.Join(repoRoot, "examples", "curl"))
	digest := lastLine(r.stdout)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("last line of stdout is %q, want a digest", digest)
	}
	img := inspect(t, root, "curl")
	if img.Digest != digest || !slices.Contains(img.Tags, "curl:latest") {
		t.Fatalf("inspect curl: digest %s tags %v, want %s and curl:latest", img.Digest, img.Tags, digest)
	}
	if !slices.Equal(img.Config.Entrypoint, []string{"/usr/bin/curl"}) || img.Config.User != "1000:1000" {
		t.Errorf("config entrypoint %v user %q", img.Config.Entrypoint, img.Config.User)
	}
	if !slices.Contains(img.Config.Env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt") {
		t.Errorf("env %v lacks SSL_CERT_FILE", img.Config.Env)
	}
	rootfs := unpack(t, root, img)
	for _, p := range []string{"etc/passwd", "etc/group", "etc/nsswitch.conf", "etc/hosts",
		"etc/ssl/certs/ca-certificates.crt", "usr/lib/x86_64-linux-gnu/libnss_dns.so.2"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); err != nil {
			t.Errorf("image lacks /%s: %v", p, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(rootfs, "lib")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("/lib should stay a symlink as on the host: %v %v", fi, err)
	}
	// The closure is complete when curl runs in a root holding nothing else.
	out, err := exec.Command("chroot", rootfs, "/usr/bin/curl", "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "curl ") {
		t.Fatalf("chroot curl --version: %v\n%s", err, out)
	}
	host, _ := exec.Command("curl", "--version").Output()
	if strings.SplitN(string(out), "\n", 2)[0] != strings.SplitN(string(host), "\n", 2)[0] {
		t.Errorf("curl in the image says %q, the host's %q", out, host)
	}
}

// unpack extracts an image's layers with the system tar, independent of kiln's own extractor.
func unpack(t *testing.T, root string, img inspected) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: unpacking with owners and chroot need root")
	}
	dir := t.TempDir()
	for _, l := range img.Layers {
		blob := filepath.Join(root, "store", "blobs", "sha256", strings.TrimPrefix(l.Digest, "sha256:"))
		run(t, "tar", "-xzf", blob, "-C", dir)
	}
	return dir
}

func TestBuildIsReproducible(t *testing.T) {
	need(t, "curl")
	root := t.TempDir()
	src := filepath.Join(repoRoot, "examples", "curl")
	first := lastLine(mustKiln(t, root, "build", src).stdout)
	second := lastLine(mustKiln(t, root, "build", src).stdout)
	uncached := lastLine(mustKiln(t, root, "build", "--no-cache", src).stdout)
	// A copy of the tree elsewhere, into a fresh store, gives the same bytes.
	other := t.TempDir()
	run(t, "cp", "-a", src+"/.", other)
	elsewhere := lastLine(mustKiln(t, t.TempDir(), "build", other).stdout)
	for name, d := range map[string]string{"second": second, "--no-cache": uncached, "copied tree": elsewhere} {
		if d != first {
			t.Errorf("%s build gave %s, first gave %s", name, d, first)
		}
	}
	epoch := lastLine(kilnEnv(t, root, []string{"SOURCE_DATE_EPOCH=1700000000"}, "build", src).stdout)
	if epoch == first {
		t.Errorf("SOURCE_DATE_EPOCH did not change the digest %s", first)
	}
}

func TestBuildReportsCacheAndFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: files
contents:
  files:
    - {src: ./a.conf, dst: /etc/a.conf, mode: 0600, uid: 7, gid: 8}
  trees:
    - {src: ./www, dst: /srv/www}
  symlinks:
    - {path: /etc/b.conf, target: a.conf}
  dirs:
    - {path: /tmp, mode: 01777}
config:
  cmd: [/bin/true]
  env: {A: "1"}
  ports: [80, 53/udp]
  volumes: [/data]
  stop-signal: INT
`, 0o644)
	writeFile(t, filepath.Join(dir, "a.conf"), "a=1\n", 0o644)
	writeFile(t, filepath.Join(dir, "www", "index.html"), "<p>hi</p>\n", 0o644)
	writeFile(t, filepath.Join(dir, "www", "sub", "x.txt"), "x\n", 0o600)
	root := t.TempDir()
	first := mustKiln(t, root, "build", dir)
	if strings.Contains(first.stderr, "from cache") {
		t.Errorf("first build claims a cache hit:\n%s", first.stderr)
	}
	second := mustKiln(t, root, "build", dir)
	if !strings.Contains(second.stderr, "from cache") {
		t.Errorf("second build did not use the cache:\n%s", second.stderr)
	}
	img := inspect(t, root, "files:latest")
	listing := run(t, "tar", "-tvzf", filepath.Join(root, "store", "blobs", "sha256", strings.TrimPrefix(img.Layers[0].Digest, "sha256:")), "--numeric-owner")
	for _, want := range []string{"-rw------- 7/8", "etc/a.conf", "drwxrwxrwt 0/0", "tmp/", "etc/b.conf -> a.conf", "srv/www/sub/x.txt", "1970-01-01"} {
		if !strings.Contains(listing, want) {
			t.Errorf("layer listing lacks %q:\n%s", want, listing)
		}
	}
	// Changing a source file changes the layer: the cache key sees it.
	writeFile(t, filepath.Join(dir, "a.conf"), "a=2\n", 0o644)
	third := mustKiln(t, root, "build", dir)
	if strings.Contains(third.stderr, "from cache") || lastLine(third.stdout) == lastLine(second.stdout) {
		t.Errorf("a changed file still hit the cache:\n%s", third.stderr)
	}
}
