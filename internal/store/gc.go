package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/atomicfile"
	"github.com/kiln-project/kiln/internal/flock"
)

// GCReport says what GC removed.
type GCReport struct {
	Removed []v1.Hash // sorted
	Freed   int64     // bytes of the removed blobs

	RemovedLayers []v1.Hash // diff_ids of the unpacked layers removed, sorted
	LayersFreed   int64     // disk space they used
}

// GC removes every blob that no tag reaches (through index.json, image
// indexes, manifests, configs and layers) and the leftovers in tmp/; with
// KeepLayers, also the unpacked layers that neither a tagged image nor a
// container uses. It holds gc.lock exclusively, so it waits for running
// transactions and unpacks and blocks new ones until it is done. If a tagged
// manifest cannot be read, GC removes nothing: it cannot know what that
// manifest needs.
func (s *Store) GC(ctx context.Context, opts ...GCOption) (GCReport, error) {
	var o gcOptions
	for _, opt := range opts {
		opt(&o)
	}
	gc, err := flock.Open(ctx, s.path("gc.lock"), flock.Exclusive, true)
	if err != nil {
		return GCReport{}, fmt.Errorf("gc: %w", err)
	}
	defer flock.Unlock(gc)

	live, err := s.mark()
	if err != nil {
		return GCReport{}, fmt.Errorf("gc: %w", err)
	}
	liveLayers, err := s.markLayers(o)
	if err != nil {
		return GCReport{}, fmt.Errorf("gc: %w", err)
	}
	rep, err := s.sweep(ctx, live)
	if err == nil {
		err = s.sweepLayers(ctx, liveLayers, &rep)
	}
	s.removeStaleTx()
	s.removeStaleTemp()
	if err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	return rep, nil
}

// mark returns the digests reachable from index.json.
func (s *Store) mark() (map[v1.Hash]bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	live := map[v1.Hash]bool{}
	var visit func(d v1.Descriptor) error
	visit = func(d v1.Descriptor) error {
		if live[d.Digest] {
			return nil
		}
		live[d.Digest] = true
		raw, err := s.readBlob(d.Digest, maxMetaSize)
		if errors.Is(err, ErrNotFound) {
			return nil // nothing to keep for it; Check reports it
		}
		if err != nil {
			return fmt.Errorf("%s: %w", d.Digest, err)
		}
		if d.MediaType.IsIndex() {
			child, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return fmt.Errorf("index %s: %w", d.Digest, err)
			}
			for _, c := range child.Manifests {
				if err := visit(c); err != nil {
					return err
				}
			}
			return nil
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		live[m.Config.Digest] = true
		for _, l := range m.Layers {
			live[l.Digest] = true
		}
		return nil
	}
	for _, d := range idx.Manifests {
		if err := visit(d); err != nil {
			if r := refOf(d); r != "" {
				return nil, fmt.Errorf("%s: %w", r, err)
			}
			return nil, err
		}
	}
	return live, nil
}

func (s *Store) sweep(ctx context.Context, live map[v1.Hash]bool) (GCReport, error) {
	var rep GCReport
	entries, err := os.ReadDir(s.blobsDir())
	if err != nil {
		return rep, err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if !validHex(e.Name()) || live[h] {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if err := os.Remove(filepath.Join(s.blobsDir(), e.Name())); err != nil {
			return rep, err
		}
		rep.Removed = append(rep.Removed, h)
		rep.Freed += fi.Size()
	}
	slices.SortFunc(rep.Removed, func(a, b v1.Hash) int { return strings.Compare(a.Hex, b.Hex) })
	if len(rep.Removed) > 0 {
		return rep, atomicfile.SyncDir(s.blobsDir())
	}
	return rep, nil
}

// removeStaleTemp removes the temporary files of index writers killed before
// their rename; index.lock says nobody is writing one now.
func (s *Store) removeStaleTemp() {
	l, err := os.OpenFile(s.path("index.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer l.Close()
	if ok, _ := flock.TryLock(l, flock.Exclusive); !ok {
		return
	}
	entries, _ := os.ReadDir(s.tmpDir())
	for _, e := range entries {
		if !e.IsDir() && isWriterTemp(e.Name()) {
			os.Remove(filepath.Join(s.tmpDir(), e.Name()))
		}
	}
}

// isWriterTemp reports whether name is a temporary file of writeAtomic (atomicfile names them
// .<base>.tmp-<random>): index.json's or oci-layout's.
func isWriterTemp(name string) bool {
	return strings.HasPrefix(name, ".index.json.tmp-") || strings.HasPrefix(name, ".oci-layout.tmp-")
}

// Problem is one inconsistency Check found.
type Problem struct {
	Digest v1.Hash // the blob at fault, if one
	Ref    string  // the tag it affects, if one
	Err    error
}

// String reads "sha256:abc…: content hashes to sha256:def…" for a blob, or
// "curl:latest: manifest sha256:… missing" for a tag.
func (p Problem) String() string {
	switch {
	case p.Ref != "":
		return p.Ref + ": " + p.Err.Error()
	case p.Digest != (v1.Hash{}):
		return p.Digest.String() + ": " + p.Err.Error()
	}
	return p.Err.Error()
}

// Check re-hashes every blob (with GOMAXPROCS workers) against its name, and
// checks that every tag's manifest parses and that every blob it references
// exists with the declared size. It holds gc.lock shared, so that gc does
// not remove blobs under it. The error is for Check itself failing.
func (s *Store) Check(ctx context.Context) ([]Problem, error) {
	gc, err := flock.Open(ctx, s.path("gc.lock"), flock.Shared, true)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	defer flock.Unlock(gc)

	problems, err := s.checkBlobs(ctx)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	tagProblems, err := s.checkTags()
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return append(problems, tagProblems...), nil
}

func (s *Store) checkBlobs(ctx context.Context) ([]Problem, error) {
	entries, err := os.ReadDir(s.blobsDir())
	if err != nil {
		return nil, err
	}
	var (
		mu       sync.Mutex
		problems []Problem
		wg       sync.WaitGroup
		names    = make(chan string)
	)
	report := func(p Problem) {
		mu.Lock()
		problems = append(problems, p)
		mu.Unlock()
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for name := range names {
				if p, bad := s.checkBlob(name); bad {
					report(p)
				}
			}
		})
	}
	for _, e := range entries {
		if ctx.Err() != nil {
			break
		}
		names <- e.Name()
	}
	close(names)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(problems, func(a, b Problem) int { return strings.Compare(a.String(), b.String()) })
	return problems, nil
}

func (s *Store) checkBlob(name string) (Problem, bool) {
	path := filepath.Join(s.blobsDir(), name)
	if !validHex(name) {
		return Problem{Err: fmt.Errorf("%s: not named by a sha256 digest", path)}, true
	}
	h := v1.Hash{Algorithm: "sha256", Hex: name}
	f, err := os.Open(path)
	if err != nil {
		return Problem{Digest: h, Err: err}, true
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Problem{Digest: h, Err: err}, true
	}
	if !fi.Mode().IsRegular() {
		return Problem{Digest: h, Err: fmt.Errorf("not a regular file (%s)", fi.Mode().Type())}, true
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return Problem{Digest: h, Err: err}, true
	}
	if got := hashOf(sum); got != h {
		return Problem{Digest: h, Err: fmt.Errorf("content hashes to %s", got)}, true
	}
	return Problem{}, false
}

// checkTags checks what each tag references.
func (s *Store) checkTags() ([]Problem, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var problems []Problem
	for _, d := range idx.Manifests {
		ref := refOf(d)
		if ref == "" {
			ref = d.Digest.String()
		}
		s.checkManifestTree(ref, d, "manifest", &problems)
	}
	return problems, nil
}

// checkManifestTree checks that manifest or index d exists with its size and
// parses, and recurses into what it references.
func (s *Store) checkManifestTree(ref string, d v1.Descriptor, what string, problems *[]Problem) {
	add := func(h v1.Hash, err error) { *problems = append(*problems, Problem{Digest: h, Ref: ref, Err: err}) }
	if !s.checkSize(d, what, add) {
		return
	}
	raw, err := s.readBlob(d.Digest, maxMetaSize)
	if err != nil {
		add(d.Digest, err)
		return
	}
	if d.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			add(d.Digest, fmt.Errorf("index %s: %w", d.Digest, err))
			return
		}
		for _, c := range idx.Manifests {
			s.checkManifestTree(ref, c, "manifest", problems)
		}
		return
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		add(d.Digest, fmt.Errorf("manifest %s: %w", d.Digest, err))
		return
	}
	s.checkSize(m.Config, "config", add)
	for _, l := range m.Layers {
		s.checkSize(l, "layer", add)
	}
}

// checkSize reports whether blob d exists with d's size, adding a problem
// if not.
func (s *Store) checkSize(d v1.Descriptor, what string, add func(v1.Hash, error)) bool {
	p, err := s.blobPath(d.Digest)
	if err != nil {
		add(d.Digest, fmt.Errorf("%s: %w", what, err))
		return false
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		add(d.Digest, fmt.Errorf("%s %s missing", what, d.Digest))
		return false
	case err != nil:
		add(d.Digest, fmt.Errorf("%s %s: %w", what, d.Digest, err))
		return false
	case fi.Size() != d.Size:
		add(d.Digest, fmt.Errorf("%s %s: size %d, descriptor says %d", what, d.Digest, fi.Size(), d.Size))
		return false
	}
	return true
}
