package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/store"
)

// builtLayer is a layer already in the store (or staged in the transaction that builds the image).
type builtLayer struct {
	st     *store.Store
	tx     *store.Tx // staged the layer, if it did; read from it until Commit
	w      layer.Written
	key    string // build cache key; "" when the cache is off
	cached bool   // w came from the build cache
}

// contentsLayer returns the layer holding planned, from the build cache when its key is known.
// start is when the build began: host files changed since shortly before it are keyed by content.
func contentsLayer(ctx context.Context, st *store.Store, tx *store.Tx, planned []layer.Entry, opts Options, start time.Time, log *slog.Logger, stable func(string) (string, bool)) (*builtLayer, error) {
	l := &builtLayer{st: st, tx: tx}
	if opts.CacheDir != "" {
		key, err := cacheKey(planned, opts.Epoch.Unix(), start, stable)
		if err != nil {
			return nil, err
		}
		l.key = key
		if w, ok := loadCache(opts.CacheDir, key); ok && !opts.NoCache && st.HasBlob(w.Digest) {
			l.w, l.cached = w, true
			log.Info("contents layer from cache", "digest", w.Digest.String())
			return l, nil
		}
	}
	w, err := writeLayer(ctx, tx, func(w io.Writer) (layer.Written, error) {
		return layer.Write(w, planned, opts.Epoch)
	})
	if err != nil {
		return nil, err
	}
	l.w = w
	log.Info("wrote contents layer", "digest", w.Digest.String(), "size", w.Size, "uncompressed", w.UncompressedSize)
	return l, nil
}

// writeLayer streams a tar+gzip writer (layer.Write, layer.Diff) into a staged blob. When the
// store fails, its error is the one that counts: the writer then only sees the pipe closed with it.
func writeLayer(ctx context.Context, tx *store.Tx, write func(io.Writer) (layer.Written, error)) (layer.Written, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	var w layer.Written
	var werr error
	go func() {
		defer close(done)
		w, werr = write(pw)
		pw.CloseWithError(werr)
	}()
	stop := context.AfterFunc(ctx, func() { pr.CloseWithError(ctx.Err()) })
	defer stop()
	digest, _, serr := tx.WriteBlob(pr)
	if serr != nil {
		pr.CloseWithError(serr) // unblock the writer with the store's error
	} else {
		pr.Close()
	}
	<-done
	if cerr := ctx.Err(); serr != nil && cerr != nil && errors.Is(werr, cerr) {
		werr = nil // the writer only saw the cancellation the store reports
	}
	if err := layerErr(serr, werr); err != nil {
		return w, err
	}
	if digest != w.Digest {
		return w, fmt.Errorf("layer: store hashed %s, writer %s", digest, w.Digest)
	}
	return w, nil
}

// layerErr puts the store's error first. When one side only relays the other's error through the
// pipe, the original alone is returned.
func layerErr(serr, werr error) error {
	switch {
	case serr == nil:
		return werr
	case werr != nil && errors.Is(serr, werr): // the writer failed; the store read its error
		return werr
	case werr == nil, errors.Is(werr, serr): // the store failed; the writer saw the pipe close
		return fmt.Errorf("store layer: %w", serr)
	}
	return errors.Join(fmt.Errorf("store layer: %w", serr), werr)
}

func (l *builtLayer) Digest() (v1.Hash, error)            { return l.w.Digest, nil }
func (l *builtLayer) DiffID() (v1.Hash, error)            { return l.w.DiffID, nil }
func (l *builtLayer) Size() (int64, error)                { return l.w.Size, nil }
func (l *builtLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed opens the blob: staged in the build's transaction (a step unpacks the layers below
// it before they are committed), else stored.
func (l *builtLayer) Compressed() (io.ReadCloser, error) {
	if l.tx != nil {
		if f, err := l.tx.OpenBlob(l.w.Digest); err == nil {
			return f, nil
		}
	}
	return l.st.Blob(l.w.Digest)
}

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
