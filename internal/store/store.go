// Package store keeps images on disk in a content-addressed store: blobs, tags,
// transactions, locks, gc and check. It never builds images or reads kiln.yaml.
//
// The store lives in ROOT/store and is a valid OCI image layout, so
// `skopeo inspect oci:ROOT/store:curl:latest` works:
//
//	oci-layout           {"imageLayoutVersion":"1.0.0"}
//	index.json           one manifest descriptor per tag, annotated
//	                     org.opencontainers.image.ref.name = "name:tag"
//	blobs/sha256/<hex>   every blob once, mode 0444, never modified
//	tmp/tx-<random>/     staging dir of a running transaction (flocked)
//	tmp/.index.json.tmp-*  temporary files of index.json writers (under index.lock)
//	gc.lock              flock: shared by transactions, tag, check and unpack; exclusive by gc
//	index.lock           flock: exclusive while index.json is read-modified-written
//
// Next to it, ROOT/layers is the unpacked-layer cache (see Unpack): each layer
// once, by diff_id, shared read-only by every container as an overlayfs lower
// dir:
//
//	layers/sha256/<hex>/rootfs          complete; appears by rename, never changes
//	layers/sha256/<hex>/rootfs.partial  being unpacked (under a flock on <hex>/), or left by a kill
//
// Usage:
//
//	s, err := store.Open(root)
//	tx, err := s.Begin(ctx)
//	defer tx.Abort()
//	digest, err := tx.WriteImage(img)
//	err = tx.Tag("curl", digest) // curl:latest
//	err = tx.Commit()
//
// Images come in through Tx.WriteImage, which treats them as untrusted: every
// blob is checked against its digest, every layer against its diff_id and
// with layer.Check, and the image is stored in OCI form (see WriteImage).
//
// Guarantees, with any number of kiln processes running at once:
//
//   - A blob is written to a staging file through a hashing writer and fsynced;
//     it appears under blobs/ only by an atomic rename to its own digest, so a
//     file in blobs/ is always complete and never changes.
//   - index.json is replaced atomically (write, fsync, rename, fsync dir) under
//     index.lock, after re-reading it under that lock: no writer loses another
//     writer's tag.
//   - An error, Abort or a killed process leaves blobs/ and index.json as they
//     were; leftovers can only be in tmp/, and are removed by the next Begin or
//     GC. The one exception is a kill or I/O error inside Commit, after it has
//     renamed some blobs: those blobs are complete and verified but no tag
//     references them yet (index.json is still the old one), and GC removes
//     them.
//   - GC holds gc.lock exclusively, so it never runs while a transaction (which
//     may rely on a blob already in blobs/ that nothing references) is open.
//   - An unpacked layer dir is complete and verified against its diff_id, or
//     absent. GC removes unpacked layers only when told which ones containers
//     use (KeepLayers), and never while an Unpack runs.
//   - Readers (Resolve, List, Image) take no lock. An image that is untagged
//     and collected while it is being read loses its blobs under the reader.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/atomicfile"
	"github.com/kiln-project/kiln/internal/flock"
)

// Sentinel errors, checked with errors.Is; the errors that wrap them name the
// reference or digest.
var (
	ErrNotFound  = errors.New("not found")
	ErrAmbiguous = errors.New("ambiguous digest prefix")
)

// Store is a content-addressed image store rooted at ROOT/store.
// It is safe for concurrent use by goroutines and by processes.
type Store struct {
	dir string // ROOT/store
}

const (
	refAnnotation = "org.opencontainers.image.ref.name"
	layoutFile    = `{"imageLayoutVersion":"1.0.0"}`
	emptyIndex    = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`
)

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *Store) blobsDir() string { return s.path("blobs", "sha256") }
func (s *Store) tmpDir() string   { return s.path("tmp") }

// Open opens the store under root (the kiln root), creating it on first use.
// An existing, complete store is opened without writing to it.
func Open(root string) (*Store, error) {
	s := &Store{dir: filepath.Join(root, "store")}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{
		{root, 0o700},
		{s.dir, 0o700},
		{s.path("blobs"), 0o755},
		{s.blobsDir(), 0o755},
		{s.tmpDir(), 0o700},
	} {
		if err := mkdirIfMissing(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if err := s.initFiles(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.dir, err)
	}
	return s, nil
}

func mkdirIfMissing(path string, mode os.FileMode) error {
	fi, err := os.Stat(path)
	if err == nil {
		if !fi.IsDir() {
			return &os.PathError{Op: "open", Path: path, Err: errors.New("not a directory")}
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Mkdir(path, mode); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// initFiles writes oci-layout, index.json and the lock files if missing. It
// checks under index.lock, so that two first users cannot replace each
// other's index.json.
func (s *Store) initFiles() error {
	if s.initialized() {
		return nil
	}
	l, err := flock.Open(context.Background(), s.path("index.lock"), flock.Exclusive, true)
	if err != nil {
		return err
	}
	defer flock.Unlock(l)
	if err := s.checkLayout(); errors.Is(err, os.ErrNotExist) {
		if err := s.writeAtomic("oci-layout", []byte(layoutFile+"\n")); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	if _, err := os.Stat(s.path("index.json")); errors.Is(err, os.ErrNotExist) {
		// A store with blobs but no index lost its tags: an empty one would make every blob
		// garbage to the next gc.
		if blobs, _ := os.ReadDir(s.blobsDir()); len(blobs) > 0 {
			return fmt.Errorf("%s is missing but %s holds %d blobs: restore it (or remove the store to start over)",
				s.path("index.json"), s.blobsDir(), len(blobs))
		}
		if err := s.writeAtomic("index.json", []byte(emptyIndex+"\n")); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	f, err := os.OpenFile(s.path("gc.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

func (s *Store) initialized() bool {
	if s.checkLayout() != nil {
		return false
	}
	for _, name := range []string{"index.json", "gc.lock", "index.lock"} {
		if _, err := os.Stat(s.path(name)); err != nil {
			return false
		}
	}
	return true
}

func (s *Store) checkLayout() error {
	b, err := os.ReadFile(s.path("oci-layout"))
	if err != nil {
		return err
	}
	var l struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Version != "1.0.0" {
		return fmt.Errorf("%s: not an OCI image layout version 1.0.0", s.path("oci-layout"))
	}
	return nil
}

// writeAtomic replaces store/name with data, durably, staging it in tmp/ so store/ never holds a
// half-written file. Callers hold index.lock.
func (s *Store) writeAtomic(name string, data []byte) error {
	return atomicfile.Write(s.path(name), data, 0o644, atomicfile.SyncAll, s.tmpDir())
}

// validHex reports whether s is a lowercase sha256 hex digest, so that it can
// be used as a file name.
func validHex(s string) bool {
	return len(s) == 64 && isHex(s)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkDigest(h v1.Hash) error {
	if h.Algorithm != "sha256" || !validHex(h.Hex) {
		return fmt.Errorf("invalid digest %q: want sha256:<64 lowercase hex>", h.String())
	}
	return nil
}

func (s *Store) blobPath(h v1.Hash) (string, error) {
	if err := checkDigest(h); err != nil {
		return "", err
	}
	return filepath.Join(s.blobsDir(), h.Hex), nil
}

// Blob opens the stored blob h for reading. A missing blob is an error
// wrapping ErrNotFound.
func (s *Store) Blob(h v1.Hash) (*os.File, error) {
	p, err := s.blobPath(h)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", h, ErrNotFound)
	}
	return f, err
}

// HasBlob reports whether blob h is stored.
func (s *Store) HasBlob(h v1.Hash) bool {
	p, err := s.blobPath(h)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// readBlob reads a small blob (a manifest, index or config) whole, checking
// that it is no larger than max and that its content matches its name.
func (s *Store) readBlob(h v1.Hash, max int64) ([]byte, error) {
	f, err := s.Blob(h)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s: larger than %d bytes", h, max)
	}
	if got := sha256Of(b); got != h {
		return nil, fmt.Errorf("blob %s: content hashes to %s", h, got)
	}
	return b, nil
}

// maxMetaSize bounds manifests, indexes and configs read into memory.
const maxMetaSize = 32 << 20
