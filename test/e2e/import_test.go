package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kiln import turns a root filesystem tarball into a one-layer image: the same tarball gives the
// same digest, the image runs, and a tarball that would write outside its root is refused.
func TestImportRootfs(t *testing.T) {
	need(t, "busybox", "tar")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: running the imported image needs root")
	}
	bb, _ := exec.LookPath("busybox")
	rootfs := t.TempDir()
	run(t, "mkdir", "-p", filepath.Join(rootfs, "bin"), filepath.Join(rootfs, "etc"))
	run(t, "cp", bb, filepath.Join(rootfs, "bin", "busybox"))
	run(t, "ln", "-s", "busybox", filepath.Join(rootfs, "bin", "sh"))
	writeFile(t, filepath.Join(rootfs, "etc", "motd"), "from a rootfs tarball\n", 0o644)
	tarball := filepath.Join(t.TempDir(), "mini.tar.gz")
	run(t, "tar", "-C", rootfs, "-czf", tarball, ".")

	root := t.TempDir()
	first := lastLine(mustKiln(t, root, "import", tarball).stdout)
	again := lastLine(mustKiln(t, t.TempDir(), "import", tarball).stdout)
	if first != again || !strings.HasPrefix(first, "sha256:") {
		t.Errorf("two imports of one tarball: %s and %s", first, again)
	}
	if r := mustKiln(t, root, "run", "--rm", "mini", "/bin/sh", "-c", "cat /etc/motd"); r.stdout != "from a rootfs tarball\n" {
		t.Errorf("run of the imported image: %q", r.stdout)
	}

	before := snapshot(t, root)
	evil := filepath.Join(t.TempDir(), "evil.tar")
	if err := os.WriteFile(evil, tarWith(t, "../../escaped", "x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := kilnIn(t, root, "import", evil); r.code == 0 || !strings.Contains(r.stderr, "escaped") {
		t.Errorf("import of an escaping tarball: exit %d %s", r.code, r.stderr)
	}
	if after := snapshot(t, root); after != before {
		t.Errorf("a refused import changed the store")
	}
}
