package container

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// hostileTree fills upper/ with what a container may leave: directories without permissions
// (nested), symlinks out of the root, a hard link to a file outside. It returns the outside file.
func hostileTree(t *testing.T, c *Container, outside string) {
	t.Helper()
	upper := filepath.Join(c.Dir(), "upper")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(upper, "locked/inner"), 0o755))
	must(os.WriteFile(filepath.Join(upper, "locked/inner/file"), []byte("x"), 0o600))
	must(os.Symlink("/etc/passwd", filepath.Join(upper, "locked/passwd")))
	must(os.Symlink("/etc", filepath.Join(upper, "etc-link")))
	must(os.Symlink(filepath.Dir(outside), filepath.Join(upper, "outside-link")))
	must(os.Link(outside, filepath.Join(upper, "hardlink")))
	must(os.Chmod(filepath.Join(upper, "locked/inner"), 0))
	must(os.Chmod(filepath.Join(upper, "locked"), 0))
}

func checkRemoved(t *testing.T, cs *Containers, c *Container, outside string) {
	t.Helper()
	if _, err := os.Lstat(c.Dir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("container dir: %v", err)
	}
	if entries, _ := os.ReadDir(cs.path("tmp")); len(entries) != 0 {
		t.Fatalf("left in tmp/: %v", entries)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Fatalf("symlink target: %v", err)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "outside" {
		t.Fatalf("hard-linked file outside: %q, %v", b, err)
	}
	if _, err := cs.Get(c.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
}

// As root: root-owned directories with mode 0000 and symlinks to /etc.
func TestRemoveHostileTree(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{Name: "hostile"})
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, []byte("outside"), 0o644)
	hostileTree(t, c, outside)
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	checkRemoved(t, cs, c, outside)
	if _, err := os.Lstat(cs.path("names", "hostile")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("name not freed: %v", err)
	}
	if err := c.Remove(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestRemoveRefusesRunning(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{})
	cmd, start := sleeper(t)
	running(t, c, cmd.Process.Pid, start)
	if err := c.Remove(); !errors.Is(err, ErrRunning) {
		t.Fatalf("Remove of a running container: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
}

// A container whose state.json is unreadable can still be removed, and its name is freed.
func TestRemoveCorruptState(t *testing.T) {
	cs := open(t)
	c := create(t, cs, &State{Name: "broken"})
	if err := os.WriteFile(filepath.Join(c.Dir(), "state.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.List(); err == nil {
		t.Fatal("List hid a corrupt state.json")
	}
	if err := c.Remove(); err != nil {
		t.Fatal(err)
	}
	create(t, cs, &State{Name: "broken"})
}
