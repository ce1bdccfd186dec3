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
	Digest    string
	Tags      []string
	MediaType string
	Config    struct {
		Entrypoint []string
		Cmd        []string
		Env        []string
		User       string
		WorkingDir string
		Labels     map[string]string
	}
	Layers []struct {
		Digest, DiffID, MediaType string
		Size                      int64
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

// reproProject is a build directory with a file, a tree (a script, a file, a subdirectory) and the
// host's curl, written under the test's umask.
func reproProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln.yaml"), `name: repro
contents:
  binaries: [/usr/bin/curl]
  files:
    - {src: ./app.conf, dst: /etc/app.conf}
  trees:
    - {src: ./www, dst: /srv/www}
  dirs:
    - {path: /tmp, mode: 01777}
config:
  entrypoint: [/usr/bin/curl]
`, 0o644)
	writeFile(t, filepath.Join(dir, "app.conf"), "a=1\n", 0o644)
	writeFile(t, filepath.Join(dir, "www", "index.html"), "<p>hi</p>\n", 0o644)
	writeFile(t, filepath.Join(dir, "www", "cgi", "run.sh"), "#!/bin/sh\necho hi\n", 0o755)
	return dir
}

func TestBuildIsReproducible(t *testing.T) {
	need(t, "curl")
	root := t.TempDir()
	src := reproProject(t)
	first := lastLine(mustKiln(t, root, "build", src).stdout)
	second := lastLine(mustKiln(t, root, "build", src).stdout)
	uncached := lastLine(mustKiln(t, root, "build", "--no-cache", src).stdout)
	// A plain copy elsewhere under another umask (files 0600, scripts and dirs 0700), reached
	// directly and through a symlink, into fresh stores, gives the same bytes.
	other := filepath.Join(t.TempDir(), "copy")
	run(t, "sh", "-c", `umask 077; cp -r "$0" "$1"`, src, other)
	if out := run(t, "stat", "-c", "%a", filepath.Join(other, "app.conf")); strings.TrimSpace(out) != "600" {
		t.Fatalf("the copy did not take the umask: app.conf is %s", out)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(other, link); err != nil {
		t.Fatal(err)
	}
	elsewhere := lastLine(mustKiln(t, t.TempDir(), "build", other).stdout)
	linked := lastLine(mustKiln(t, t.TempDir(), "build", link).stdout)
	for name, d := range map[string]string{"second": second, "--no-cache": uncached,
		"copy under umask 077": elsewhere, "copy through a symlink": linked} {
		if d != first {
			t.Errorf("%s build gave %s, first gave %s", name, d, first)
		}
	}
	listing := layerListing(t, root, inspect(t, root, "repro").Layers[0].Digest)
	for _, want := range []string{"-rw-r--r-- 0/0", "etc/app.conf", "-rwxr-xr-x 0/0", "srv/www/cgi/run.sh", "drwxr-xr-x 0/0", "srv/www/cgi/"} {
		if !strings.Contains(listing, want) {
			t.Errorf("layer listing lacks %q:\n%s", want, listing)
		}
	}
	epoch := lastLine(kilnEnv(t, root, []string{"SOURCE_DATE_EPOCH=1700000000"}, "build", src).stdout)
	if epoch == first {
		t.Errorf("SOURCE_DATE_EPOCH did not change the digest %s", first)
	}
}

// layerListing is `tar -tv` of a stored layer blob, owners as numbers.
func layerListing(t *testing.T, root, digest string) string {
	t.Helper()
	return run(t, "tar", "-tvzf", blobPath(root, digest), "--numeric-owner")
}

// layerFile is the content of name in a stored layer blob.
func layerFile(t *testing.T, root, digest, name string) string {
	t.Helper()
	return run(t, "tar", "-xzOf", blobPath(root, digest), name)
}

func blobPath(root, digest string) string {
	return filepath.Join(root, "store", "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// A file rewritten with the same size right after a build (within one timestamp tick on a
// filesystem with coarse times) must not be served from the cache.
func TestBuildCacheSeesQuickRewrite(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: quick\ncontents:\n  files: [{src: ./f, dst: /f}]\n", 0o644)
	root := t.TempDir()
	writeFile(t, filepath.Join(dir, "f"), "aaaa\n", 0o644)
	first := mustKiln(t, root, "build", dir)
	writeFile(t, filepath.Join(dir, "f"), "bbbb\n", 0o644)
	second := mustKiln(t, root, "build", dir)
	if strings.Contains(second.stderr, "from cache") || lastLine(second.stdout) == lastLine(first.stdout) {
		t.Errorf("a same-size rewrite hit the cache: digest %s both times\n%s", lastLine(first.stdout), second.stderr)
	}
	if got := layerFile(t, root, inspect(t, root, "quick").Layers[0].Digest, "f"); got != "bbbb\n" {
		t.Errorf("the image holds %q, want the rewritten content", got)
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
	listing := layerListing(t, root, img.Layers[0].Digest)
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

func TestBuildTimezone(t *testing.T) {
	if _, err := os.Stat("/usr/share/zoneinfo/Europe/Paris"); err != nil {
		t.Skipf("SKIP: no time zone data on this host (.ci/run installs tzdata): %v", err)
	}
	cases := []struct{ value, localtime, tz string }{
		{"Europe/Paris", "etc/localtime -> /usr/share/zoneinfo/Europe/Paris", "TZ=Europe/Paris"},
		{"true", "etc/localtime -> /usr/share/zoneinfo/UTC", ""},
	}
	for _, c := range cases {
		t.Run(c.value, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "kiln.yaml"), "name: tz\ncontents:\n  timezone: "+c.value+"\n", 0o644)
			root := t.TempDir()
			mustKiln(t, root, "build", dir)
			img := inspect(t, root, "tz")
			listing := layerListing(t, root, img.Layers[0].Digest)
			for _, want := range []string{"usr/share/zoneinfo/Europe/Paris\n", c.localtime} {
				if !strings.Contains(listing, want) {
					t.Errorf("layer lacks %q:\n%s", want, listing)
				}
			}
			if c.tz != "" && !slices.Contains(img.Config.Env, c.tz) {
				t.Errorf("env %v lacks %s", img.Config.Env, c.tz)
			}
		})
	}
}

// -t replaces the kiln.yaml's name:tag; each -t is a tag.
func TestBuildTagFlag(t *testing.T) {
	root := t.TempDir()
	r := mustKiln(t, root, "build", "-t", "one:a", "-t", "two", staticProject(t, "named"))
	img := inspect(t, root, "one:a")
	if img.Digest != lastLine(r.stdout) || !slices.Equal(img.Tags, []string{"one:a", "two:latest"}) {
		t.Errorf("one:a is %s with tags %v; want %s tagged one:a and two:latest", img.Digest, img.Tags, lastLine(r.stdout))
	}
	if r := kilnIn(t, root, "inspect", "named"); r.code == 0 {
		t.Errorf("the kiln.yaml's name was tagged too")
	}
}

// Without --root, KILN_ROOT says where the store is; --root wins over it.
func TestKilnRootEnv(t *testing.T) {
	root, other := t.TempDir(), t.TempDir()
	env := []string{"KILN_ROOT=" + root}
	r, err := runKiln(env, "build", staticProject(t, "envroot"))
	if err != nil || r.code != 0 {
		t.Fatalf("build with KILN_ROOT: %v exit %d\n%s", err, r.code, r.stderr)
	}
	if got := inspect(t, root, "envroot").Digest; got != lastLine(r.stdout) {
		t.Errorf("the store in KILN_ROOT holds %s, the build printed %s", got, lastLine(r.stdout))
	}
	r, err = runKiln(env, "--root", other, "images", "--format", "json")
	if err != nil || r.code != 0 || strings.Contains(r.stdout, "envroot") {
		t.Errorf("--root %s with KILN_ROOT=%s: %v exit %d, listed %s", other, root, err, r.code, r.stdout)
	}
}
