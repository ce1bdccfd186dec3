package build

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/store"
)

// builtLayer is a layer already in the store (or staged in the transaction that builds the image).
type builtLayer struct {
	st  *store.Store
	w   layer.Written
	key string // build cache key; "" when the cache is off
}

// contentsLayer returns the layer holding planned, from the build cache when its key is known.
func contentsLayer(ctx context.Context, st *store.Store, tx *store.Tx, planned []layer.Entry, opts Options, log *slog.Logger) (*builtLayer, bool, error) {
	l := &builtLayer{st: st}
	if opts.CacheDir != "" {
		key, err := cacheKey(planned, opts.Epoch.Unix())
		if err != nil {
			return nil, false, err
		}
		l.key = key
		if w, ok := loadCache(opts.CacheDir, key); ok && !opts.NoCache && st.HasBlob(w.Digest) {
			l.w = w
			log.Info("contents layer from cache", "digest", w.Digest.String())
			return l, true, nil
		}
	}
	w, err := writeLayer(ctx, tx, planned, opts)
	if err != nil {
		return nil, false, err
	}
	l.w = w
	log.Info("wrote contents layer", "digest", w.Digest.String(), "size", w.Size, "uncompressed", w.UncompressedSize)
	return l, false, nil
}

// writeLayer streams the tar+gzip writer into a staged blob.
func writeLayer(ctx context.Context, tx *store.Tx, planned []layer.Entry, opts Options) (layer.Written, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var w layer.Written
	var werr error
	go func() {
		defer close(done)
		w, werr = layer.Write(pw, planned, opts.Epoch)
		pw.CloseWithError(werr)
	}()
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	defer stop()
	digest, _, err := tx.WriteBlob(pr)
	pr.CloseWithError(io.ErrClosedPipe) // unblock the writer if WriteBlob stopped early
	<-done
	if werr != nil {
		return w, werr
	}
	if err != nil {
		return w, fmt.Errorf("store contents layer: %w", err)
	}
	if digest != w.Digest {
		return w, fmt.Errorf("contents layer: store hashed %s, writer %s", digest, w.Digest)
	}
	return w, nil
}

func (l *builtLayer) Digest() (v1.Hash, error)            { return l.w.Digest, nil }
func (l *builtLayer) DiffID() (v1.Hash, error)            { return l.w.DiffID, nil }
func (l *builtLayer) Size() (int64, error)                { return l.w.Size, nil }
func (l *builtLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed opens the stored blob. The transaction that staged the layer never asks for it.
func (l *builtLayer) Compressed() (io.ReadCloser, error) { return l.st.Blob(l.w.Digest) }

func (l *builtLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	u, err := layer.Decompress(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return readCloser{u, rc}, nil
}

type readCloser struct {
	io.ReadCloser
	under io.Closer
}

func (r readCloser) Close() error {
	err := r.ReadCloser.Close()
	if uerr := r.under.Close(); err == nil {
		err = uerr
	}
	return err
}
