package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An index.json that parses as JSON but is no index ({}, null) is an error, not an empty store:
// read as one, every blob would be garbage to the next gc. So is a missing index.json beside
// blobs.
func TestDamagedIndexIsAnError(t *testing.T) {
	for _, bad := range []string{"{}", "null", `{"schemaVersion":2}`, `{"schemaVersion":2,"manifests":null}`, `{"manifests":[]}`} {
		s := newStore(t)
		h := commitImage(t, s, randomImage(t), "keep:1")
		if err := os.WriteFile(s.path("index.json"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := s.List(); err == nil || !strings.Contains(err.Error(), "not an OCI image index") {
			t.Errorf("index %s: List: %v, want an error", bad, err)
		}
		if _, err := s.GC(t.Context()); err == nil {
			t.Errorf("index %s: gc ran", bad)
		}
		if !s.HasBlob(h) {
			t.Errorf("index %s: the manifest's blob is gone", bad)
		}
	}
	s := newStore(t)
	commitImage(t, s, randomImage(t), "keep:1")
	os.Remove(s.path("index.json"))
	if _, err := Open(filepath.Dir(s.dir)); err == nil || !strings.Contains(err.Error(), "is missing but") {
		t.Errorf("Open with blobs and no index.json: %v, want an error", err)
	}
}

// A manifest whose blobs are not all there (a killed transaction published it without them)
// cannot be tagged.
func TestTagRefusesIncompleteImage(t *testing.T) {
	s := newStore(t)
	h := commitImage(t, s, randomImage(t), "whole:1")
	layers := blobsOf(t, s, h)
	var removed bool
	for _, b := range layers {
		if b != h {
			os.Chmod(s.blobsDir(), 0o755)
			if err := os.Remove(filepath.Join(s.blobsDir(), b.Hex)); err == nil {
				removed = true
				break
			}
		}
	}
	if !removed {
		t.Fatal("could not remove a blob of the image")
	}
	err := s.Tag(h.String(), "partial:1")
	if err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("Tag of an incomplete image: %v, want an error", err)
	}
}

// Blobs are published layers and configs first, then manifests, then indexes.
func TestPublishOrder(t *testing.T) {
	s := newStore(t)
	tx, err := s.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	h, err := tx.WriteImage(randomImage(t))
	if err != nil {
		t.Fatal(err)
	}
	order := tx.publishOrder()
	if len(order) < 4 || order[len(order)-1] != h {
		t.Errorf("publish order %v: the manifest %s must come last", order, h)
	}
}
