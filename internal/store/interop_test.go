package store

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

// The store is an OCI layout that containers/image (skopeo, podman) reads,
// also for images that came in with Docker media types.
func TestSkopeo(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	s := newStore(t)
	docker, err := random.Image(300, 2)
	if err != nil {
		t.Fatal(err)
	}
	for ref, h := range map[string]string{
		"kiln/app:v1":   commitImage(t, s, randomImage(t), "kiln/app:v1").String(),
		"docker:latest": commitImage(t, s, docker, "docker").String(),
	} {
		out, err := exec.Command("skopeo", "inspect", "oci:"+s.dir+":"+ref).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
		}
		var got struct{ Digest string }
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if got.Digest != h {
			t.Errorf("skopeo says %s is %s, store says %s", ref, got.Digest, h)
		}
		// Copying reads and verifies every blob.
		dst := filepath.Join(t.TempDir(), "copy")
		if out, err := exec.Command("skopeo", "copy", "--quiet", "oci:"+s.dir+":"+ref, "oci:"+dst+":x").CombinedOutput(); err != nil {
			t.Errorf("skopeo copy %s: %v\n%s", ref, err, out)
		}
	}
}
