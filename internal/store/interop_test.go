package store

import (
	"encoding/json"
	"os/exec"
	"testing"
)

// The store is an OCI layout that other tools read.
func TestSkopeoInspect(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	s := newStore(t)
	h := commitImage(t, s, randomImage(t), "kiln/app:v1")
	out, err := exec.Command("skopeo", "inspect", "oci:"+s.dir+":kiln/app:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
	var got struct{ Digest string }
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Digest != h.String() {
		t.Errorf("skopeo says %s, store says %s", got.Digest, h)
	}
}
