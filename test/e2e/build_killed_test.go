//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A build killed with SIGKILL in the middle of a step cannot remove the step's directory (its
// upper dir holds what the step wrote). The next build with steps removes it, and so does kiln
// gc, detaching a mount left under it without deleting through it.
func TestKilledBuildLeavesNoStepDir(t *testing.T) {
	root := t.TempDir()
	stepsBase(t, root)
	slow := t.TempDir()
	writeFile(t, filepath.Join(slow, "kiln.yaml"), `name: slow
base: bb
steps:
  - /usr/bin/busybox head -c 1000000 /dev/urandom > /big && touch /started && /usr/bin/busybox sleep 60
`, 0o644)
	quick := t.TempDir()
	writeFile(t, filepath.Join(quick, "kiln.yaml"), "name: quick\nbase: bb\nsteps: [touch /quick]\n", 0o644)

	stale := killMidStep(t, root, slow)
	mustKiln(t, root, "build", quick)
	if left := stepDirs(t, root); len(left) > 0 {
		t.Errorf("the next build left the killed build's step dir %s: %v", stale, left)
	}

	stale = killMidStep(t, root, slow)
	sentinel := mountUnder(t, filepath.Join(stale, "rootfs"))
	r := mustKiln(t, root, "gc")
	if left := stepDirs(t, root); len(left) > 0 || !strings.Contains(r.stdout, "removed build step "+stale) {
		t.Errorf("gc left step dirs %v, said:\n%s%s", left, r.stdout, r.stderr)
	}
	if sentinel != "" {
		if _, err := os.Stat(sentinel); err != nil {
			t.Errorf("gc deleted through a mount under a stale step dir: %v", err)
		}
	}
	if m := mountsUnder(t, root); len(m) > 0 {
		t.Errorf("mounts left under the store: %v", m)
	}
}

// killMidStep starts building dir and kills kiln with SIGKILL once its step has written to its
// upper dir; it returns the step's directory, which must still be there.
func killMidStep(t *testing.T, root, dir string) string {
	t.Helper()
	before := stepDirs(t, root)
	cmd := exec.Command(kiln, "--root", root, "build", "--no-cache", dir)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(syscall.SIGKILL)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		started, _ := filepath.Glob(filepath.Join(root, "build", "step-*", "upper", "started"))
		started = slices.DeleteFunc(started, func(p string) bool {
			return slices.Contains(before, filepath.Dir(filepath.Dir(p)))
		})
		if len(started) == 1 {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			step := filepath.Dir(filepath.Dir(started[0]))
			if _, err := os.Stat(step); err != nil {
				t.Fatalf("after kill -9 mid-step: %v", err)
			}
			return step
		}
	}
	t.Fatalf("the step did not start within a minute: step dirs %v", stepDirs(t, root))
	return ""
}

// mountUnder bind-mounts a directory holding a file on target, as a crash mid-step could leave
// the step's rootfs, and returns the file; "" if this machine allows no mount.
func mountUnder(t *testing.T, target string) string {
	t.Helper()
	src := t.TempDir()
	sentinel := filepath.Join(src, "keep")
	writeFile(t, sentinel, "covered by the mount\n", 0o644)
	if err := syscall.Mount(src, target, "", syscall.MS_BIND, ""); err != nil {
		t.Logf("no bind mount on %s (%v): gc's unmounting is not tested", target, err)
		return ""
	}
	// Runs before the TempDirs are removed, so that a failing test never deletes through it.
	t.Cleanup(func() { syscall.Unmount(target, syscall.MNT_DETACH) })
	return sentinel
}

func stepDirs(t *testing.T, root string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "build", "step-*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// mountsUnder lists the mount points at or below dir in this mount namespace.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var points []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	return points
}
