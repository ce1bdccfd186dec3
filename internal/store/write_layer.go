package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/atomicfile"
)

// WriteLayer stages one layer blob of an image that WriteImage will be given
// later in the same transaction, so that layers can be fetched in parallel:
// desc is the layer's descriptor in the manifest, diffID its diff_id in the
// config. The blob is verified as WriteImage verifies it (digest, size,
// diff_id, layer.Check) and the descriptor it is stored under is returned; a
// plain tar is stored gzipped, so its digest changes. WriteImage then does
// not read it again.
//
// open is called only when the blob is not stored yet; a blob already stored
// but not vouched for by a tagged image is verified from its stored copy.
//
// Unlike the other methods, a failed WriteLayer leaves the transaction
// usable: it staged nothing, so the caller may try again (a download that
// broke) or give up (Abort).
func (tx *Tx) WriteLayer(desc v1.Descriptor, diffID v1.Hash, open func() (io.ReadCloser, error)) (v1.Descriptor, error) {
	if err := tx.usable(); err != nil {
		return desc, err
	}
	if err := checkDigest(desc.Digest); err != nil {
		return desc, fmt.Errorf("layer: %w", err)
	}
	if _, err := layerMediaType(desc.MediaType, compGzip); err != nil {
		return desc, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if v, ok := tx.verifiedAs(desc.Digest); ok && v.diffID == diffID {
		desc.MediaType = v.mediaType
		return desc, nil
	}
	stage := !tx.has(desc.Digest)
	var rc io.ReadCloser
	var err error
	if stage {
		rc, err = open()
	} else {
		rc, err = tx.open(desc.Digest)
	}
	if err != nil {
		return desc, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	nd, err := tx.copyLayer(rc, desc, diffID, stage)
	if err != nil {
		return desc, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	tx.mu.Lock()
	tx.verified[nd.Digest] = verifiedLayer{diffID, nd.MediaType}
	tx.mu.Unlock()
	return nd, nil
}

// Publish moves the staged blob h into blobs/ now rather than at Commit, so
// that it outlives an Abort or a killed process: a pull that is killed keeps
// the layers it completed, and the next pull finds them. h is then complete
// and verified but referenced by no tag until Commit; GC removes it if no
// Commit follows. Publishing a blob that is not staged in tx is a no-op.
func (tx *Tx) Publish(h v1.Hash) error {
	if err := tx.usable(); err != nil {
		return err
	}
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if _, ok := tx.staged[h]; !ok {
		return nil
	}
	dst := filepath.Join(tx.s.blobsDir(), h.Hex)
	if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(filepath.Join(tx.dir, h.Hex), dst); err != nil {
			return fmt.Errorf("publish blob %s: %w", h, err)
		}
		if err := atomicfile.SyncDir(tx.s.blobsDir()); err != nil {
			return fmt.Errorf("publish blob %s: %w", h, err)
		}
	}
	delete(tx.staged, h)
	return nil
}
