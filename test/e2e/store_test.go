package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func TestTagRmiGC(t *testing.T) {
	root := t.TempDir()
	a := staticImage(t, root, "alpha")
	staticImage(t, root, "beta")
	mustKiln(t, root, "tag", "alpha", "alpha:v2")
	var rows []struct{ Name, Tag, Digest string }
	if err := json.Unmarshal([]byte(mustKiln(t, root, "images", "--format", "json").stdout), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("images: %+v, want alpha:latest, alpha:v2, beta:latest", rows)
	}
	table := mustKiln(t, root, "images").stdout
	if !strings.Contains(table, "alpha") || !strings.Contains(table, "v2") || !strings.HasPrefix(table, "NAME") {
		t.Errorf("images table:\n%s", table)
	}
	// Removing one tag keeps the image; gc frees nothing while a tag holds it.
	mustKiln(t, root, "rmi", "alpha:latest")
	if got := inspect(t, root, "alpha:v2").Digest; got != a {
		t.Errorf("alpha:v2 is %s, want %s", got, a)
	}
	if r := mustKiln(t, root, "gc"); strings.Contains(r.stdout, "removed") {
		t.Errorf("gc removed blobs of tagged images:\n%s", r.stdout)
	}
	// Removing by digest prefix drops every tag; gc then frees the unique blobs.
	mustKiln(t, root, "rmi", strings.TrimPrefix(a, "sha256:")[:12])
	if r := kilnIn(t, root, "inspect", "alpha:v2"); r.code == 0 {
		t.Errorf("alpha:v2 still resolves after rmi")
	}
	r := mustKiln(t, root, "gc")
	if !strings.Contains(r.stdout, "removed "+a) {
		t.Errorf("gc did not remove manifest %s:\n%s", a, r.stdout)
	}
	mustKiln(t, root, "check")
	mustKiln(t, root, "inspect", "beta")
}

func TestCheckFindsCorruption(t *testing.T) {
	root := t.TempDir()
	staticImage(t, root, "victim")
	img := inspect(t, root, "victim")
	mustKiln(t, root, "check")
	blob := filepath.Join(root, "store", "blobs", "sha256", strings.TrimPrefix(img.Layers[0].Digest, "sha256:"))
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, []byte("corrupted"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := kilnIn(t, root, "check")
	if r.code != 1 || !strings.Contains(r.stdout, strings.TrimPrefix(img.Layers[0].Digest, "sha256:")[:12]) {
		t.Errorf("check: exit %d, want 1 naming %s\n%s%s", r.code, img.Layers[0].Digest, r.stdout, r.stderr)
	}
	os.Remove(blob)
	r = kilnIn(t, root, "check")
	if r.code != 1 || !strings.Contains(r.stdout, "victim:latest") {
		t.Errorf("check with a missing layer: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// Several kiln processes building into one store at once: every tag lands, the store stays sound.
func TestConcurrentBuilds(t *testing.T) {
	root := t.TempDir()
	const n = 6
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
		writeFile(t, filepath.Join(dirs[i], "f"), fmt.Sprintf("file %d\n", i%2), 0o644)
		writeFile(t, filepath.Join(dirs[i], "kiln.yaml"), fmt.Sprintf("name: c%d\ncontents:\n  files: [{src: ./f, dst: /f}]\n", i), 0o644)
	}
	// The goroutines only run kiln and keep what happened; the test judges it afterwards.
	var wg sync.WaitGroup
	results := make([]result, n+1)
	errs := make([]error, n+1)
	for i := range n {
		wg.Go(func() { results[i], errs[i] = runKiln(nil, "--root", root, "build", dirs[i]) })
	}
	wg.Go(func() { results[n], errs[n] = runKiln(nil, "--root", root, "gc") })
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("run kiln: %v", err)
	}
	if r := results[n]; r.code != 0 {
		t.Errorf("gc during builds: exit %d: %s", r.code, r.stderr)
	}
	results = results[:n]
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("build %d: %s", i, r.stderr)
		}
		inspect(t, root, fmt.Sprintf("c%d", i))
	}
	mustKiln(t, root, "check")
}
