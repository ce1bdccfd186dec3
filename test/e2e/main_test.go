// Package e2e drives the built kiln binary the way a user does: build, inspect, save, load, gc,
// check, with real skopeo as the peer on the other side of every archive.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// kiln is the binary under test, built once by TestMain.
var kiln string

// repoRoot is the checkout, for examples/.
var repoRoot string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	dir, err := os.MkdirTemp("", "kiln-e2e-bin-")
	if err != nil {
		panic(err)
	}
	kiln = filepath.Join(dir, "kiln")
	// kiln-init beside kiln, where kiln bake looks for it first.
	for _, pkg := range []string{"./cmd/kiln", "./cmd/kiln-init"} {
		build := exec.Command("go", "build", "-o", dir, pkg)
		build.Dir = repoRoot
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one kiln invocation.
type result struct {
	stdout, stderr string
	code           int
}

// kilnIn runs kiln with root as its store and returns what it printed.
func kilnIn(t *testing.T, root string, args ...string) result {
	t.Helper()
	return kilnEnv(t, root, nil, args...)
}

func kilnEnv(t *testing.T, root string, env []string, args ...string) result {
	t.Helper()
	r, err := runKiln(env, append([]string{"--root", root}, args...)...)
	if err != nil {
		t.Fatalf("run kiln %v: %v", args, err)
	}
	return r
}

// runKiln runs kiln with args as given (no --root added) and env added to the test's environment,
// with SOURCE_DATE_EPOCH unset unless env sets it. It touches no *testing.T, so goroutines may call
// it; the error is only for a kiln that could not be run (an exit status is in the result).
func runKiln(env []string, args ...string) (result, error) {
	cmd := exec.Command(kiln, args...)
	cmd.Env = append(append(os.Environ(), "SOURCE_DATE_EPOCH="), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code, err = ee.ExitCode(), nil
	}
	return r, err
}

// mustKiln runs kiln and fails the test unless it exits 0.
func mustKiln(t *testing.T, root string, args ...string) result {
	t.Helper()
	r := kilnIn(t, root, args...)
	if r.code != 0 {
		t.Fatalf("kiln %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// lastLine is the digest `kiln build` prints last.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (.ci/run installs it)", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// writeFile writes a file for a test's kiln.yaml.
func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// snapshot lists every file under root/store except tmp/, with its size and mode, so a test
// can prove a failed command left the store as it was.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	dir := filepath.Join(root, "store")
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "tmp" || strings.HasPrefix(rel, "tmp/") || strings.HasSuffix(rel, ".lock") {
			return nil
		}
		fmt.Fprintf(&b, "%s %d %v\n", rel, fi.Size(), fi.Mode())
		if fi.Mode().IsRegular() && (rel == "index.json") {
			data, _ := os.ReadFile(p)
			b.Write(data)
		}
		return nil
	})
	return b.String()
}
