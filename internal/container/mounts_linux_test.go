package container

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func bindMount(src, dst string) error { return unix.Mount(src, dst, "", unix.MS_BIND, "") }

func TestUnescapeMountPath(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/x\134y`: `/x\y`, `/plain`: "/plain", `/tail\04`: `/tail\04`} {
		if got := unescapeMountPath(in); got != want {
			t.Errorf("unescapeMountPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// A mount left on a container's directory (a volume, say) is detached, not emptied, by Remove.
func TestRemoveDetachesLeftMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	root := t.TempDir()
	cs, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	c := create(t, cs, &State{})
	volume := t.TempDir()
	if err := os.WriteFile(filepath.Join(volume, "precious"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(os.Args[0], "bind-and-remove", root, c.ID(), "KILN_CONTAINER_VOLUME="+volume)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // Go makes it private
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "cannot mount") {
		t.Skipf("mounts not allowed here: %s", out)
	}
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(volume, "precious")); err != nil || string(b) != "keep" {
		t.Fatalf("volume content after Remove: %q, %v", b, err)
	}
	if cs.exists(c.ID()) {
		t.Fatal("container directory survived")
	}
}
