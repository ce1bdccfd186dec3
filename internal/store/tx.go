package store

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/atomicfile"
	"github.com/kiln-project/kiln/internal/flock"
)

// Tx stages blobs and tags; Commit publishes them, Abort drops them. While it
// is open it holds gc.lock shared, so gc cannot delete a blob it relies on.
//
// Its methods may be called from several goroutines. After any of them
// fails, the transaction can only be aborted: Commit returns that error and
// publishes nothing.
type Tx struct {
	s       *Store
	ctx     context.Context
	dir     string   // tmp/tx-<random>
	dirLock *os.File // flock on dir: "in use"
	gcLock  *os.File

	mu       sync.Mutex
	staged   map[v1.Hash]int64         // blobs in dir, by digest
	verified map[v1.Hash]verifiedLayer // layers checked by WriteImage
	known    map[v1.Hash]verifiedLayer // layers of tagged images, loaded lazily
	tags     map[string]v1.Descriptor  // "name:tag" -> manifest
	failed   error
	done     bool
}

// Begin starts a transaction. It waits for a running gc (until ctx is done),
// and removes staging dirs left by killed processes.
func (s *Store) Begin(ctx context.Context) (*Tx, error) {
	gc, err := flock.Open(ctx, s.path("gc.lock"), flock.Shared, true)
	if err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	s.removeStaleTx()
	dir, dirLock, err := s.makeTxDir()
	if err != nil {
		flock.Unlock(gc)
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	return &Tx{
		s: s, ctx: ctx, dir: dir, dirLock: dirLock, gcLock: gc,
		staged:   map[v1.Hash]int64{},
		verified: map[v1.Hash]verifiedLayer{},
		tags:     map[string]v1.Descriptor{},
	}, nil
}

// makeTxDir creates and flocks tmp/tx-<random>. A concurrent removeStaleTx
// may see the dir before it is locked and delete it; the inode comparison
// after locking detects that, and we try another name.
func (s *Store) makeTxDir() (string, *os.File, error) {
	for range 10 {
		var b [8]byte
		rand.Read(b[:])
		dir := filepath.Join(s.tmpDir(), "tx-"+hex.EncodeToString(b[:]))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return "", nil, err
		}
		f, err := os.Open(dir)
		if err != nil {
			continue
		}
		ok, err := flock.TryLock(f, flock.Exclusive)
		if err != nil {
			f.Close()
			return "", nil, err
		}
		if ok && sameFile(f, dir) {
			return dir, f, nil
		}
		f.Close()
	}
	return "", nil, errors.New("cannot create a staging dir in " + s.tmpDir())
}

func sameFile(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// removeStaleTx removes staging dirs whose flock nobody holds: their
// process died or aborted without cleaning up. Errors are ignored: a
// leftover costs only disk space until the next try.
func (s *Store) removeStaleTx() {
	entries, err := os.ReadDir(s.tmpDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "tx-") {
			continue
		}
		dir := filepath.Join(s.tmpDir(), e.Name())
		f, err := os.Open(dir)
		if err != nil {
			continue
		}
		if ok, _ := flock.TryLock(f, flock.Exclusive); ok {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

// fail records the first error; the transaction can then only be aborted.
func (tx *Tx) fail(err error) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.failed == nil {
		tx.failed = err
	}
	return err
}

func (tx *Tx) usable() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	switch {
	case tx.done:
		return errors.New("transaction already committed or aborted")
	case tx.failed != nil:
		return fmt.Errorf("transaction failed earlier: %w", tx.failed)
	}
	return nil
}

// has reports whether blob h is stored or staged in tx.
func (tx *Tx) has(h v1.Hash) bool {
	tx.mu.Lock()
	_, ok := tx.staged[h]
	tx.mu.Unlock()
	return ok || tx.s.HasBlob(h)
}

// open opens blob h, staged in tx or stored.
func (tx *Tx) open(h v1.Hash) (*os.File, error) {
	tx.mu.Lock()
	_, ok := tx.staged[h]
	tx.mu.Unlock()
	if ok {
		return os.Open(filepath.Join(tx.dir, h.Hex))
	}
	return tx.s.Blob(h)
}

// OpenBlob opens blob h, staged in tx or stored, so that a build can read back a layer it
// staged (to run a step on it) before Commit.
func (tx *Tx) OpenBlob(h v1.Hash) (*os.File, error) {
	if err := tx.usable(); err != nil {
		return nil, err
	}
	return tx.open(h)
}

// WriteBlob stages the blob r holds and returns its digest and size. A blob
// already stored or staged is not stored twice. It checks nothing about the
// content: blobs from untrusted hands come in through WriteImage.
func (tx *Tx) WriteBlob(r io.Reader) (v1.Hash, int64, error) {
	if err := tx.usable(); err != nil {
		return v1.Hash{}, 0, err
	}
	sf, err := tx.newStaging()
	if err != nil {
		return v1.Hash{}, 0, tx.fail(err)
	}
	if _, err := io.Copy(sf, ctxReader{tx.ctx, r}); err != nil {
		sf.discard()
		return v1.Hash{}, 0, tx.fail(fmt.Errorf("write blob: %w", err))
	}
	h, n, err := tx.keep(sf)
	if err != nil {
		return v1.Hash{}, 0, tx.fail(err)
	}
	return h, n, nil
}

// staging is a temporary file in the tx dir that hashes what is written.
type staging struct {
	f *os.File
	w *bufio.Writer
	h hash.Hash
	n int64
}

func (tx *Tx) newStaging() (*staging, error) {
	f, err := os.CreateTemp(tx.dir, "new-")
	if err != nil {
		return nil, err
	}
	return &staging{f: f, w: bufio.NewWriterSize(f, 1<<16), h: sha256.New()}, nil
}

func (sf *staging) Write(p []byte) (int, error) {
	n, err := sf.w.Write(p)
	sf.h.Write(p[:n])
	sf.n += int64(n)
	return n, err
}

func (sf *staging) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sf.h.Sum(nil))}
}

func (sf *staging) discard() {
	sf.f.Close()
	os.Remove(sf.f.Name())
}

// keep makes sf the staged blob of its digest: dropped if that blob is stored
// or staged already, otherwise synced, made read-only and renamed to its hex.
func (tx *Tx) keep(sf *staging) (v1.Hash, int64, error) {
	h, n := sf.digest(), sf.n
	if err := sf.w.Flush(); err != nil {
		sf.discard()
		return h, n, fmt.Errorf("stage blob %s: %w", h, err)
	}
	if tx.has(h) {
		sf.discard()
		return h, n, nil
	}
	err := sf.f.Chmod(0o444)
	if err == nil {
		err = sf.f.Sync()
	}
	if cerr := sf.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(sf.f.Name())
		return h, n, fmt.Errorf("stage blob %s: %w", h, err)
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := os.Rename(sf.f.Name(), filepath.Join(tx.dir, h.Hex)); err != nil {
		os.Remove(sf.f.Name())
		return h, n, fmt.Errorf("stage blob %s: %w", h, err)
	}
	tx.staged[h] = n
	return h, n, nil
}

// Tag makes ref ("name" means "name:latest") point at manifest when the
// transaction commits. manifest must be staged in tx or stored.
func (tx *Tx) Tag(ref string, manifest v1.Hash) error {
	if err := tx.usable(); err != nil {
		return err
	}
	name, err := normalizeRef(ref)
	if err != nil {
		return tx.fail(err)
	}
	if err := checkDigest(manifest); err != nil {
		return tx.fail(fmt.Errorf("tag %s: %w", name, err))
	}
	if !tx.has(manifest) {
		return tx.fail(fmt.Errorf("tag %s: manifest %s: %w", name, manifest, ErrNotFound))
	}
	d, err := tx.s.describe(manifest, func() ([]byte, error) { return tx.readSmall(manifest) })
	if err != nil {
		return tx.fail(fmt.Errorf("tag %s: %w", name, err))
	}
	tx.mu.Lock()
	tx.tags[name] = d
	tx.mu.Unlock()
	return nil
}

// readSmall reads a staged or stored manifest or config.
func (tx *Tx) readSmall(h v1.Hash) ([]byte, error) {
	f, err := tx.open(h)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetaSize {
		return nil, fmt.Errorf("blob %s: larger than %d bytes", h, maxMetaSize)
	}
	return b, nil
}

// Commit moves the staged blobs into blobs/, then writes the tags to
// index.json, and releases the transaction's locks.
func (tx *Tx) Commit() error {
	if err := tx.usable(); err != nil {
		tx.Abort()
		return err
	}
	defer tx.Abort()
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.publishBlobs(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if len(tx.tags) == 0 {
		return nil
	}
	err := tx.s.updateIndex(func(idx *v1.IndexManifest) error {
		for ref, d := range tx.tags {
			setTag(idx, ref, d)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// publishBlobs moves the staged blobs into blobs/, those a manifest names before the manifest
// and image manifests before indexes: a process killed midway leaves no manifest whose blobs
// are not all there (see publishOrder).
func (tx *Tx) publishBlobs() error {
	renamed := false
	for _, h := range tx.publishOrder() {
		dst := filepath.Join(tx.s.blobsDir(), h.Hex)
		if _, err := os.Lstat(dst); err == nil {
			continue // committed meanwhile by someone else: same bytes
		}
		if err := os.Rename(filepath.Join(tx.dir, h.Hex), dst); err != nil {
			return err
		}
		renamed = true
	}
	if renamed {
		return atomicfile.SyncDir(tx.s.blobsDir())
	}
	return nil
}

// publishOrder is the staged blobs sorted for publishBlobs: layers and configs, then image
// manifests, then indexes (a small JSON blob is looked at to know which it is), by digest within
// each group so that the order does not depend on the map's.
func (tx *Tx) publishOrder() []v1.Hash {
	rank := func(h v1.Hash, size int64) int {
		if size > maxMetaSize {
			return 0
		}
		b, err := os.ReadFile(filepath.Join(tx.dir, h.Hex))
		if err != nil {
			return 0
		}
		return manifestRank(b)
	}
	type blob struct {
		h    v1.Hash
		rank int
	}
	var blobs []blob
	for h, size := range tx.staged {
		blobs = append(blobs, blob{h, rank(h, size)})
	}
	slices.SortFunc(blobs, func(a, b blob) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.h.Hex, b.h.Hex)
	})
	out := make([]v1.Hash, len(blobs))
	for i, b := range blobs {
		out[i] = b.h
	}
	return out
}

// manifestRank is 2 for an image index, 1 for an image manifest, 0 for anything else (an image
// config has a "config" key too, but no "layers").
func manifestRank(b []byte) int {
	var probe struct {
		MediaType types.MediaType `json:"mediaType"`
		Config    json.RawMessage `json:"config"`
		Layers    json.RawMessage `json:"layers"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return 0
	}
	switch {
	case probe.MediaType.IsIndex() || probe.Manifests != nil:
		return 2
	case probe.MediaType.IsImage() || probe.Config != nil && probe.Layers != nil:
		return 1
	}
	return 0
}

// Abort drops everything staged and releases the locks. It is a no-op after
// Commit or a previous Abort.
func (tx *Tx) Abort() {
	tx.mu.Lock()
	if tx.done {
		tx.mu.Unlock()
		return
	}
	tx.done = true
	tx.mu.Unlock()
	// Remove while still holding the dir's flock, so nobody else does.
	os.RemoveAll(tx.dir)
	flock.Unlock(tx.dirLock)
	flock.Unlock(tx.gcLock)
}

// ctxReader fails reads once ctx is done, so that a cancelled command stops
// copying a large blob.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
