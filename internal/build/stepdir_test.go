package build

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kiln-project/kiln/internal/flock"
)

func TestRemoveStaleStepsKeepsLockedSteps(t *testing.T) {
	work := t.TempDir()
	live, lock, err := makeStepDir(work)
	if err != nil {
		t.Fatal(err)
	}
	defer flock.Unlock(lock)
	stale, staleLock, err := makeStepDir(work)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(stale, "upper", "big"), 1000)
	flock.Unlock(staleLock) // as a kill -9 does
	other := filepath.Join(work, "not-a-step")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}

	rep, err := RemoveStaleSteps(work)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Dirs, []string{stale}) || rep.Freed != 1000 {
		t.Errorf("removed %v, freed %d; want [%s], 1000", rep.Dirs, rep.Freed, stale)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale step %s: %v", stale, err)
	}
}

func TestRemoveStaleStepsWithoutWorkDir(t *testing.T) {
	rep, err := RemoveStaleSteps(filepath.Join(t.TempDir(), "build"))
	if err != nil || len(rep.Dirs) != 0 {
		t.Errorf("no work dir: %v %v", rep, err)
	}
}

func writeTestFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}
