package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/flock"
)

func TestOpenCreatesLayout(t *testing.T) {
	root := filepath.Join(t.TempDir(), "kiln")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("store dir mode %v, want 0700", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(s.path("oci-layout")); !bytes.Contains(b, []byte(`"imageLayoutVersion":"1.0.0"`)) {
		t.Errorf("oci-layout = %q", b)
	}
	before := snapshot(t, s)
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, s); after != before {
		t.Errorf("reopening changed the store:\n%s\n---\n%s", before, after)
	}
	if tags, err := s.List(); err != nil || len(tags) != 0 {
		t.Errorf("List() = %v, %v; want empty", tags, err)
	}
}

func TestCommit(t *testing.T) {
	s := newStore(t)
	img := randomImage(t)
	h := commitImage(t, s, img, "app", "app:v1")
	want, _ := img.Digest()
	if h != want {
		t.Errorf("WriteImage = %s, want the image's own digest %s", h, want)
	}
	tags, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	wantTags := []Tagged{{"app:latest", h}, {"app:v1", h}}
	if !slices.Equal(tags, wantTags) {
		t.Errorf("List() = %v, want %v", tags, wantTags)
	}
	for _, name := range blobNames(t, s) {
		fi, _ := os.Stat(filepath.Join(s.blobsDir(), name))
		if fi.Mode().Perm() != 0o444 {
			t.Errorf("blob %s mode %v, want 0444", name, fi.Mode().Perm())
		}
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp/ holds %v after commit", left)
	}
}

func TestAbortLeavesStoreUnchanged(t *testing.T) {
	s := newStore(t)
	commitImage(t, s, randomImage(t), "base")
	before := snapshot(t, s)

	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h, err := tx.WriteImage(randomImage(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tx.WriteBlob(strings.NewReader("loose blob")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Tag("other:1", h); err != nil {
		t.Fatal(err)
	}
	tx.Abort()
	tx.Abort() // twice is fine

	if after := snapshot(t, s); after != before {
		t.Errorf("abort changed the store:\n%s\n---\n%s", before, after)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Errorf("tmp/ holds %v after abort", left)
	}
	if err := tx.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestAbortAfterCommitIsNoop(t *testing.T) {
	s := newStore(t)
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := tx.WriteBlob(strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx.Abort()
	if !s.HasBlob(h) {
		t.Error("Abort after Commit removed a committed blob")
	}
}

func TestWriteBlobDedupes(t *testing.T) {
	s := newStore(t)
	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	h1, n, err := tx.WriteBlob(strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	h2, _, err := tx.WriteBlob(strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 || n != 5 || h1 != sha([]byte("hello")) {
		t.Errorf("WriteBlob = %s %d and %s", h1, n, h2)
	}
	entries, _ := os.ReadDir(tx.dir)
	if len(entries) != 1 {
		t.Errorf("staging dir holds %d files, want 1", len(entries))
	}
	if s.HasBlob(h1) {
		t.Error("blob visible before commit")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	f, err := s.Blob(h1)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestTxTagErrors(t *testing.T) {
	s := newStore(t)
	for _, tc := range []struct {
		ref    string
		digest v1.Hash
		want   string
	}{
		{"Upper", sha([]byte("x")), "invalid reference"},
		{"ok", sha([]byte("never written")), "not found"},
		{"ok", v1.Hash{Algorithm: "sha256", Hex: "../../etc/passwd"}, "invalid digest"},
	} {
		tx, err := s.Begin(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		err = tx.Tag(tc.ref, tc.digest)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Tag(%q, %s) = %v, want %q", tc.ref, tc.digest, err, tc.want)
		}
		if err := tx.Commit(); err == nil {
			t.Errorf("Commit after failed Tag(%q) succeeded", tc.ref)
		}
	}
	// Tagging a blob that is not a manifest.
	tx, _ := s.Begin(context.Background())
	defer tx.Abort()
	h, _, _ := tx.WriteBlob(strings.NewReader(`{"architecture":"amd64"}`))
	if err := tx.Tag("cfg", h); err == nil || !strings.Contains(err.Error(), "not an image manifest") {
		t.Errorf("Tag(config blob) = %v", err)
	}
}

func TestBeginRemovesStaleTx(t *testing.T) {
	s := newStore(t)
	stale := filepath.Join(s.tmpDir(), "tx-dead")
	if err := os.MkdirAll(stale, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, "blob"), []byte("half"), 0o444)

	live, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale staging dir survived Begin: %v", err)
	}
	other, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Abort()
	if _, err := os.Stat(live.dir); err != nil {
		t.Errorf("Begin removed a running transaction's dir: %v", err)
	}
}

func TestBeginHonoursContext(t *testing.T) {
	s := newStore(t)
	gc, err := flock.Open(context.Background(), s.path("gc.lock"), flock.Exclusive, true)
	if err != nil {
		t.Fatal(err)
	}
	defer flock.Unlock(gc)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Begin(ctx); err == nil {
		t.Fatal("Begin succeeded while gc holds gc.lock")
	}
}
