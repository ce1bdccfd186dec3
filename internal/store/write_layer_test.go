package store

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// layersOf returns the manifest descriptors and diff_ids of img.
func layersOf(t *testing.T, img v1.Image) ([]v1.Descriptor, []v1.Hash) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers, cfg.RootFS.DiffIDs
}

func opener(t *testing.T, img v1.Image, h v1.Hash, calls *int) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		*calls++
		l, err := img.LayerByDigest(h)
		if err != nil {
			return nil, err
		}
		return l.Compressed()
	}
}

// A published layer outlives Abort; the next transaction verifies it from disk instead of
// fetching it, and WriteImage then does not read it again.
func TestWriteLayerPublish(t *testing.T) {
	s := newStore(t)
	img := randomImage(t)
	descs, diffIDs := layersOf(t, img)

	tx, err := s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	if _, err := tx.WriteLayer(descs[0], diffIDs[1], opener(t, img, descs[0].Digest, &calls)); err == nil {
		t.Fatal("WriteLayer accepted a wrong diff_id")
	}
	nd, err := tx.WriteLayer(descs[0], diffIDs[0], opener(t, img, descs[0].Digest, &calls))
	if err != nil {
		t.Fatalf("WriteLayer after a failed one: %v", err)
	}
	if nd.Digest != descs[0].Digest {
		t.Errorf("stored as %s, want %s", nd.Digest, descs[0].Digest)
	}
	if s.HasBlob(nd.Digest) {
		t.Error("staged layer visible before Publish")
	}
	if err := tx.Publish(nd.Digest); err != nil {
		t.Fatal(err)
	}
	if !s.HasBlob(nd.Digest) {
		t.Error("published layer not in blobs/")
	}
	tx.Abort()
	if !slices.Contains(blobNames(t, s), nd.Digest.Hex) {
		t.Fatal("Abort removed a published layer")
	}
	if problems, err := s.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}

	tx, err = s.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	calls = 0
	for i := range descs {
		if _, err := tx.WriteLayer(descs[i], diffIDs[i], opener(t, img, descs[i].Digest, &calls)); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 {
		t.Errorf("opened %d layers, want 1 (the other was published)", calls)
	}
	d, err := tx.WriteImage(layersUnread{img})
	if err != nil {
		t.Fatalf("WriteImage after WriteLayer: %v", err)
	}
	if err := tx.Tag("x", d); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Check(context.Background()); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}

// layersUnread fails every layer read: WriteImage must use what WriteLayer verified.
type layersUnread struct{ v1.Image }

func (layersUnread) LayerByDigest(v1.Hash) (v1.Layer, error) { return nil, errors.New("layer read") }
