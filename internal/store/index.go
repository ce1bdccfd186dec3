package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/flock"
)

// Tagged is one tag of the store and the manifest it points to.
type Tagged struct {
	Ref    string // "name:tag"
	Digest v1.Hash
}

// readIndex reads index.json. It needs no lock: writers replace the file
// atomically.
func (s *Store) readIndex() (*v1.IndexManifest, error) {
	b, err := os.ReadFile(s.path("index.json"))
	if err != nil {
		return nil, fmt.Errorf("read index: %w", err)
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", s.path("index.json"), err)
	}
	if err := checkIndex(b, idx); err != nil {
		return nil, fmt.Errorf("read index %s: %w (restore it, or remove it with the blobs to start over)", s.path("index.json"), err)
	}
	return idx, nil
}

// checkIndex refuses JSON that parses but is no OCI index ({}, null): read as an index with
// no tags, it would make every blob garbage to the next gc.
func checkIndex(b []byte, idx *v1.IndexManifest) error {
	if idx == nil || idx.SchemaVersion != 2 {
		return fmt.Errorf("not an OCI image index (schemaVersion is not 2)")
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	if m, ok := keys["manifests"]; !ok || string(m) == "null" {
		return fmt.Errorf("not an OCI image index (no manifests array)")
	}
	return nil
}

// updateIndex runs fn on index.json as it is under index.lock and writes the
// result back atomically. Callers that add references also hold gc.lock.
func (s *Store) updateIndex(fn func(idx *v1.IndexManifest) error) error {
	l, err := flock.Open(context.Background(), s.path("index.lock"), flock.Exclusive, true)
	if err != nil {
		return err
	}
	defer flock.Unlock(l)
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := fn(idx); err != nil {
		return err
	}
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	slices.SortStableFunc(idx.Manifests, func(a, b v1.Descriptor) int {
		return strings.Compare(refOf(a), refOf(b))
	})
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := s.writeAtomic("index.json", append(b, '\n')); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return nil
}

func refOf(d v1.Descriptor) string { return d.Annotations[refAnnotation] }

// setTag points ref (normalised) at desc, replacing any previous target.
func setTag(idx *v1.IndexManifest, ref string, desc v1.Descriptor) {
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d v1.Descriptor) bool { return refOf(d) == ref })
	annotations := map[string]string{}
	for k, v := range desc.Annotations {
		annotations[k] = v
	}
	annotations[refAnnotation] = ref
	desc.Annotations = annotations
	idx.Manifests = append(idx.Manifests, desc)
}

// List returns every tag, sorted by ref.
func (s *Store) List() ([]Tagged, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var tags []Tagged
	for _, d := range idx.Manifests {
		if r := refOf(d); r != "" {
			tags = append(tags, Tagged{Ref: r, Digest: d.Digest})
		}
	}
	slices.SortFunc(tags, func(a, b Tagged) int { return strings.Compare(a.Ref, b.Ref) })
	return tags, nil
}

// Resolve returns the manifest digest ref names. ref is "name" (name:latest),
// "name:tag", "sha256:<hex>", or a hex prefix of at least 4 characters, with
// or without "sha256:", of a tagged manifest's digest. A tag wins over a
// prefix. A full digest also resolves to a stored, untagged manifest.
// Errors wrap ErrNotFound or ErrAmbiguous and name ref.
func (s *Store) Resolve(ref string) (v1.Hash, error) {
	idx, err := s.readIndex()
	if err != nil {
		return v1.Hash{}, err
	}
	d, _, err := s.resolveIn(idx, ref)
	return d.Digest, err
}

const minPrefix = 4

// resolveIn resolves ref against idx; byTag reports whether ref named a tag.
func (s *Store) resolveIn(idx *v1.IndexManifest, ref string) (d v1.Descriptor, byTag bool, err error) {
	if hex, ok := strings.CutPrefix(ref, "sha256:"); ok {
		if len(hex) < minPrefix || len(hex) > 64 || !isHex(hex) {
			return d, false, fmt.Errorf("resolve %s: want sha256: and at least %d lowercase hex digits", ref, minPrefix)
		}
		d, err := s.resolvePrefix(idx, ref, hex)
		return d, false, err
	}
	name, nameErr := normalizeRef(ref)
	if nameErr == nil {
		for _, d := range idx.Manifests {
			if refOf(d) == name {
				return d, true, nil
			}
		}
	}
	if len(ref) >= minPrefix && len(ref) <= 64 && isHex(ref) {
		d, err := s.resolvePrefix(idx, ref, ref)
		return d, false, err
	}
	if nameErr != nil {
		return d, false, nameErr
	}
	return d, false, fmt.Errorf("resolve %s: %w", name, ErrNotFound)
}

func (s *Store) resolvePrefix(idx *v1.IndexManifest, ref, hex string) (v1.Descriptor, error) {
	var found []v1.Descriptor
	for _, d := range idx.Manifests {
		if strings.HasPrefix(d.Digest.Hex, hex) && !slices.ContainsFunc(found, func(f v1.Descriptor) bool { return f.Digest == d.Digest }) {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		var names []string
		for _, d := range found {
			names = append(names, d.Digest.String())
		}
		slices.Sort(names)
		return v1.Descriptor{}, fmt.Errorf("resolve %s: %w: matches %s", ref, ErrAmbiguous, strings.Join(names, ", "))
	case len(hex) == 64:
		h := v1.Hash{Algorithm: "sha256", Hex: hex}
		if s.HasBlob(h) {
			return s.describe(h, func() ([]byte, error) { return s.readBlob(h, maxMetaSize) })
		}
	}
	return v1.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, ErrNotFound)
}

// describe returns the index descriptor of manifest h, whose bytes read
// returns; a blob that is not an image manifest or index is refused.
func (s *Store) describe(h v1.Hash, read func() ([]byte, error)) (v1.Descriptor, error) {
	b, err := read()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := manifestMediaType(b)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("blob %s: %w", h, err)
	}
	return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: h}, nil
}

// manifestMediaType returns the media type of an image manifest or index,
// which OCI allows to be omitted from the document itself.
func manifestMediaType(b []byte) (types.MediaType, error) {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Config    json.RawMessage `json:"config"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return "", fmt.Errorf("not a manifest: %w", err)
	}
	mt := probe.MediaType
	switch {
	case mt != "":
	case probe.Manifests != nil:
		mt = types.OCIImageIndex
	case probe.Config != nil:
		mt = types.OCIManifestSchema1
	}
	if mt.IsSchema1() || !(mt.IsImage() || mt.IsIndex()) {
		return "", fmt.Errorf("not an image manifest or index (media type %q)", mt)
	}
	return mt, nil
}

// Tag points dst at the manifest src resolves to (see Resolve).
func (s *Store) Tag(src, dst string) error {
	ref, err := normalizeRef(dst)
	if err != nil {
		return err
	}
	// gc.lock keeps gc from deleting src between resolving it and tagging.
	gc, err := flock.Open(context.Background(), s.path("gc.lock"), flock.Shared, true)
	if err != nil {
		return err
	}
	defer flock.Unlock(gc)
	return s.updateIndex(func(idx *v1.IndexManifest) error {
		d, _, err := s.resolveIn(idx, src)
		if err != nil {
			return err
		}
		// A manifest found by digest may have come without all of its blobs (a killed
		// transaction's): a tag must not make such an image look whole.
		var problems []Problem
		s.checkManifestTree(ref, d, "manifest", &problems)
		if len(problems) > 0 {
			return fmt.Errorf("tag %s: image %s is incomplete: %s", ref, d.Digest, problems[0].Err)
		}
		setTag(idx, ref, d)
		return nil
	})
}

// Untag removes tags: "name" or "name:tag" removes that tag; a digest or
// digest prefix removes every tag of that manifest. It returns the removed
// refs, sorted. The images stay until the next GC.
func (s *Store) Untag(ref string) ([]string, error) {
	var removed []string
	err := s.updateIndex(func(idx *v1.IndexManifest) error {
		d, byTag, err := s.resolveIn(idx, ref)
		if err != nil {
			return err
		}
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(e v1.Descriptor) bool {
			hit := e.Digest == d.Digest
			if byTag {
				hit = refOf(e) == refOf(d)
			}
			if hit && refOf(e) != "" {
				removed = append(removed, refOf(e))
			}
			return hit
		})
		if len(removed) == 0 {
			return fmt.Errorf("untag %s: no tags: %w", ref, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(removed)
	return removed, nil
}
