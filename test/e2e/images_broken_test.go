package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// One image whose config blob is gone: kiln images still lists every image, shows "?" for what
// it cannot know, names the broken one on stderr, and exits 1, in both formats.
func TestImagesListsAroundABrokenImage(t *testing.T) {
	root := t.TempDir()
	staticImage(t, root, "alpha")
	staticImage(t, root, "beta")
	var imgs []struct{ ConfigDigest string }
	out := mustKiln(t, root, "inspect", "alpha").stdout
	if err := json.Unmarshal([]byte(out), &imgs); err != nil || len(imgs) != 1 || imgs[0].ConfigDigest == "" {
		t.Fatalf("inspect alpha: %v\n%s", err, out)
	}
	config := imgs[0].ConfigDigest
	blob := filepath.Join(root, "store", "blobs", "sha256", strings.TrimPrefix(config, "sha256:"))
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}

	r := kilnIn(t, root, "images")
	if r.code != 1 || !strings.Contains(r.stderr, "alpha:latest") || !strings.Contains(r.stderr, config) {
		t.Errorf("images: exit %d, want 1 and an error naming alpha:latest and %s\nstderr: %s", r.code, config, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("images table: want a header, alpha and beta:\n%s", r.stdout)
	}
	for _, l := range lines[1:] {
		broken := strings.HasSuffix(l, "?")
		if strings.HasPrefix(l, "alpha") != broken {
			t.Errorf("images table: only alpha's row should end in \"?\": %q", l)
		}
	}

	r = kilnIn(t, root, "images", "--format", "json")
	var rows []struct {
		Name  string
		Size  *int64
		Error string
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("images --format json: %v\n%s", err, r.stdout)
	}
	if r.code != 1 || len(rows) != 2 || !strings.Contains(r.stderr, "alpha:latest") {
		t.Fatalf("images --format json: exit %d, %d rows, want 1 and 2\n%s%s", r.code, len(rows), r.stdout, r.stderr)
	}
	for _, row := range rows {
		broken := row.Name == "alpha"
		if (row.Size == nil) != broken || (row.Error != "") != broken {
			t.Errorf("images --format json: row %s: size %v, error %q", row.Name, row.Size, row.Error)
		}
	}
}
