//go:build unix

package container

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Without CAP_DAC_OVERRIDE, 0000 directories stop os.RemoveAll; Remove opens them up. As root,
// the test runs a helper process as nobody, on a kiln root nobody owns.
func TestRemoveUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		cs := open(t)
		c := create(t, cs, &State{})
		outside := filepath.Join(t.TempDir(), "outside")
		os.WriteFile(outside, []byte("outside"), 0o644)
		hostileTree(t, c, outside)
		if err := c.Remove(); err != nil {
			t.Fatal(err)
		}
		checkRemoved(t, cs, c, outside)
		return
	}
	const nobody = 65534
	base, err := os.MkdirTemp("", "kiln-container-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	os.WriteFile(outside, []byte("outside"), 0o644)
	cs, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	c := create(t, cs, &State{})
	hostileTree(t, c, outside)
	filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, nobody, nobody) })
	if err := os.Chown(outside, 0, 0); err != nil {
		t.Fatal(err)
	}
	// The test binary lives in a directory only root may enter: nobody runs a copy.
	bin := filepath.Join(base, "container.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(bin, "remove", root, c.ID())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("remove as nobody: %v: %s", err, out)
	}
	checkRemoved(t, cs, c, outside)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
