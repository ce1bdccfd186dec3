package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/kiln-project/kiln/internal/atomicfile"
	"github.com/kiln-project/kiln/internal/flock"
	"github.com/kiln-project/kiln/internal/layer"
)

// The unpacked-layer cache lives next to the store, in ROOT/layers:
//
//	layers/sha256/<diffid-hex>/                 flocked by whoever unpacks the layer
//	layers/sha256/<diffid-hex>/rootfs           the complete layer; appears by rename, never changes
//	layers/sha256/<diffid-hex>/rootfs.partial   being unpacked, or left by a killed process
//
// A layer is named by its diff_id (the digest of its uncompressed tar), not
// by its blob digest: the same tar compressed two ways is unpacked once.
const (
	rootfsName  = "rootfs"
	partialName = "rootfs.partial"
)

// maxParallelUnpack bounds how many layers of one image are unpacked at once:
// gunzip is CPU, creating files is I/O; beyond a few, more gains little.
const maxParallelUnpack = 4

func (s *Store) layersDir() string {
	return filepath.Join(filepath.Dir(s.dir), "layers", "sha256")
}

// LayerDir returns the directory the layer with this diff_id is unpacked
// into, ROOT/layers/sha256/<hex>/rootfs, whether or not it is there yet.
func (s *Store) LayerDir(diffID v1.Hash) (string, error) {
	if err := checkDigest(diffID); err != nil {
		return "", fmt.Errorf("layer dir: %w", err)
	}
	return filepath.Join(s.layersDir(), diffID.Hex, rootfsName), nil
}

// Unpack makes sure every layer of img is unpacked under
// ROOT/layers/sha256/<diffid-hex>/rootfs and returns those dirs top layer
// first, the order overlayfs wants in lowerdir=. A layer that appears twice
// in img is listed once, at its topmost place: overlayfs refuses a repeated
// lowerdir, and the lower copy could change nothing the upper one does not
// redo.
//
// Each layer is unpacked once and then shared read-only by every container
// of every image that has it: nothing may ever write into the returned dirs.
// Their root directory is 0755 unless the layer sets "./" itself, so that the
// root of a read-only overlay stays reachable for any user.
//
// Concurrent callers, goroutines or processes, unpacking the same layer: one
// does the work while the others wait on the layer's flock, then use its
// result. A layer is unpacked into rootfs.partial next to its final place,
// its uncompressed stream hashed on the way; only if that hash is its diff_id
// is the dir synced and renamed to rootfs. A mismatch, an unsafe tar or a
// kill leaves no rootfs; the partial dir is removed by the next Unpack of
// that layer or by GC.
//
// Unpack holds gc.lock shared while it works, so GC never removes a layer
// under it. Once it returns, only the caller's own record keeps the layers
// (see KeepLayers), so a container must record the diff_ids it uses BEFORE
// calling Unpack: then a GC either sees that record or ran entirely before
// it, and this Unpack (which waits for that GC) unpacks again whatever it
// removed.
//
// A layer already unpacked costs one stat; an image whose layers are all
// unpacked costs a gc.lock flock and a stat per layer.
func (s *Store) Unpack(ctx context.Context, img v1.Image) ([]string, error) {
	return s.unpack(ctx, img, nil)
}

// unpack is Unpack; extracted, if not nil, is called after each layer this
// call extracted itself (tests count them).
func (s *Store) unpack(ctx context.Context, img v1.Image, extracted func(v1.Hash)) ([]string, error) {
	diffIDs, err := configDiffIDs(img)
	if err != nil {
		return nil, fmt.Errorf("unpack: config: %w", err)
	}
	// Top first, each layer once; paths joined by hand: this is the hot path.
	base := s.layersDir() + string(filepath.Separator)
	dirs := make([]string, 0, len(diffIDs))
	ids := make([]v1.Hash, 0, len(diffIDs)) // of dirs
	for _, h := range slices.Backward(diffIDs) {
		if err := checkDigest(h); err != nil {
			return nil, fmt.Errorf("unpack: diff_id: %w", err)
		}
		if !slices.Contains(ids, h) {
			ids = append(ids, h)
			dirs = append(dirs, base+h.Hex+string(filepath.Separator)+rootfsName)
		}
	}

	gc, err := flock.Open(ctx, s.path("gc.lock"), flock.Shared, true)
	if err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	defer flock.Unlock(gc)

	missing := map[v1.Hash]bool{}
	for i, dir := range dirs {
		if ok, err := exists(dir); err != nil {
			return nil, fmt.Errorf("unpack: %w", err)
		} else if !ok {
			missing[ids[i]] = true
		}
	}
	if len(missing) == 0 {
		return dirs, nil
	}
	if err := s.unpackMissing(ctx, img, diffIDs, missing, extracted); err != nil {
		return nil, fmt.Errorf("unpack: %w", err)
	}
	return dirs, nil
}

// configDiffIDs reads only the diff_ids of img's config: parsing all of it
// would be most of the cost of unpacking a cached image.
func configDiffIDs(img v1.Image) ([]v1.Hash, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []v1.Hash `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, err
	}
	return cfg.RootFS.DiffIDs, nil
}

// unpacked reports whether layer h's rootfs exists.
func (s *Store) unpacked(h v1.Hash) (bool, error) {
	dir, err := s.LayerDir(h)
	if err != nil {
		return false, err
	}
	return exists(dir)
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// unpackMissing unpacks the layers of img whose diff_ids are in missing, a
// few at a time. The error is that of the lowest failing layer.
func (s *Store) unpackMissing(ctx context.Context, img v1.Image, diffIDs []v1.Hash, missing map[v1.Hash]bool, extracted func(v1.Hash)) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) != len(diffIDs) {
		return fmt.Errorf("image has %d layers, its config %d diff_ids", len(layers), len(diffIDs))
	}
	for _, d := range []string{filepath.Dir(s.layersDir()), s.layersDir()} {
		if err := mkdirIfMissing(d, 0o700); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, min(maxParallelUnpack, runtime.GOMAXPROCS(0)))
		errs = make([]error, len(layers))
	)
	for i, l := range layers {
		h := diffIDs[i]
		if !missing[h] {
			continue
		}
		delete(missing, h) // a layer that appears twice is unpacked once
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if errs[i] = s.unpackLayer(ctx, l, h, extracted); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// The first real failure, rather than a cancellation it caused elsewhere.
	var first error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// unpackLayer unpacks l, whose uncompressed tar must hash to diffID, unless
// another process did it while we waited for the layer's flock.
func (s *Store) unpackLayer(ctx context.Context, l v1.Layer, diffID v1.Hash, extracted func(v1.Hash)) error {
	dir := filepath.Join(s.layersDir(), diffID.Hex)
	if err := mkdirIfMissing(dir, 0o700); err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	lk, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer lk.Close()
	if err := flock.Lock(ctx, lk, flock.Exclusive); err != nil {
		return fmt.Errorf("layer %s: lock %s: %w", diffID, dir, err)
	}
	if ok, err := s.unpacked(diffID); ok || err != nil {
		return err
	}
	partial := filepath.Join(dir, partialName)
	if err := os.RemoveAll(partial); err != nil {
		return fmt.Errorf("layer %s: remove stale %s: %w", diffID, partial, err)
	}
	if err := extractInto(ctx, l, diffID, partial); err != nil {
		os.RemoveAll(partial)
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if err := os.Rename(partial, filepath.Join(dir, rootfsName)); err != nil {
		os.RemoveAll(partial)
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if extracted != nil {
		extracted(diffID)
	}
	return nil
}

// extractInto creates dir and extracts l into it, hashing the uncompressed
// stream as it goes, then makes the result durable.
func extractInto(ctx context.Context, l v1.Layer, diffID v1.Hash, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	// Mkdir's mode is masked by the umask; the root of a layer must be 0755.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr, err := layer.Decompress(rc)
	if err != nil {
		return err
	}
	defer tr.Close()
	sum := sha256.New()
	r := io.TeeReader(tr, sum)
	if err := layer.Extract(ctx, r, dir); err != nil {
		return err
	}
	// Extract stops at the end-of-archive blocks; the diff_id covers what follows.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read layer: %w", err)
	}
	if got := hashOf(sum); got != diffID {
		return fmt.Errorf("uncompressed content hashes to %s, config says diff_id %s", got, diffID)
	}
	// Nothing checks a rootfs once it is renamed in, so its content must be on
	// disk before the rename is. One syncfs is far cheaper than an fsync per file.
	return syncFS(dir)
}

// GCOption changes what GC does.
type GCOption func(*gcOptions)

type gcOptions struct {
	keepLayers func() (map[v1.Hash]bool, error)
}

// KeepLayers makes GC also collect unpacked layers: it removes every layer
// dir that no tagged image has and whose diff_id is not in the set inUse
// returns (the layers of every container, running or stopped).
//
// inUse runs while GC holds gc.lock exclusively, so no Unpack runs meanwhile;
// it must not call Store methods that take gc.lock (Begin, Unpack, Check).
// An error from it stops GC before anything is removed.
//
// Without KeepLayers, GC leaves unpacked layers alone (it still removes the
// partial dirs of killed unpacks): only the caller knows which containers
// exist, and a forgotten option must not pull the root out from under one.
func KeepLayers(inUse func() (map[v1.Hash]bool, error)) GCOption {
	return func(o *gcOptions) { o.keepLayers = inUse }
}

// markLayers returns the diff_ids GC keeps, or nil when layers are not
// collected at all.
func (s *Store) markLayers(o gcOptions) (map[v1.Hash]bool, error) {
	if o.keepLayers == nil {
		return nil, nil
	}
	live, err := s.taggedDiffIDs()
	if err != nil {
		return nil, err
	}
	inUse, err := o.keepLayers()
	if err != nil {
		return nil, fmt.Errorf("layers in use: %w", err)
	}
	for h := range inUse {
		live[h] = true
	}
	return live, nil
}

// taggedDiffIDs returns the diff_ids of every tagged image. A config that
// is missing keeps nothing (its image cannot be unpacked; Check reports it);
// one that cannot be read or parsed is an error, since its layers are unknown.
// Manifests that cannot be read have already failed mark.
func (s *Store) taggedDiffIDs() (map[v1.Hash]bool, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	live := map[v1.Hash]bool{}
	var firstErr error
	s.walkManifests(idx.Manifests, func(m *v1.Manifest) {
		raw, err := s.readBlob(m.Config.Digest, maxMetaSize)
		if errors.Is(err, ErrNotFound) {
			return
		}
		var cfg *v1.ConfigFile
		if err == nil {
			cfg, err = v1.ParseConfigFile(bytes.NewReader(raw))
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("config %s: %w", m.Config.Digest, err)
			}
			return
		}
		for _, h := range cfg.RootFS.DiffIDs {
			live[h] = true
		}
	})
	return live, firstErr
}

// sweepLayers removes the layer dirs not in live (none if live is nil) and
// every partial dir: GC holds gc.lock exclusively, so no Unpack is running.
func (s *Store) sweepLayers(ctx context.Context, live map[v1.Hash]bool, rep *GCReport) error {
	entries, err := os.ReadDir(s.layersDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		h := v1.Hash{Algorithm: "sha256", Hex: e.Name()}
		if !validHex(e.Name()) || !e.IsDir() {
			continue // not ours
		}
		dir := filepath.Join(s.layersDir(), e.Name())
		if live == nil || live[h] {
			if err := os.RemoveAll(filepath.Join(dir, partialName)); err != nil {
				return err
			}
			continue
		}
		freed, err := removeLayer(dir)
		rep.LayersFreed += freed
		if err != nil {
			return fmt.Errorf("remove layer %s: %w", h, err)
		}
		rep.RemovedLayers = append(rep.RemovedLayers, h)
	}
	slices.SortFunc(rep.RemovedLayers, func(a, b v1.Hash) int { return strings.Compare(a.Hex, b.Hex) })
	if len(rep.RemovedLayers) > 0 {
		return atomicfile.SyncDir(s.layersDir())
	}
	return nil
}

// removeLayer removes a layer dir and returns the disk space freed. The
// rootfs is first renamed to the partial name, so that a kill in the middle
// never leaves a half-removed rootfs that Unpack would take for complete.
func removeLayer(dir string) (int64, error) {
	rootfs, partial := filepath.Join(dir, rootfsName), filepath.Join(dir, partialName)
	if err := os.RemoveAll(partial); err != nil {
		return 0, err
	}
	freed := diskUsage(rootfs)
	if err := os.Rename(rootfs, partial); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return 0, err
	}
	return freed, os.RemoveAll(dir)
}
