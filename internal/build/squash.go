package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/layer"
)

// Squashing folds an image, its base included, into one layer: the tree a container would see,
// written as layer.Diff writes a step's changes. Nothing deleted by a step is in that tree, so no
// whiteout is needed; the image no longer shares layers with its base, and stands alone. The layer
// is keyed in the build cache by the layers it folds and the epoch.

type squashed struct {
	img   v1.Image
	layer *builtLayer
}

// squash returns img as a one-layer image with the same config.
func (b *builder) squash(ctx context.Context, img v1.Image) (*squashed, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	l, err := b.squashLayer(ctx, img, cf.RootFS.DiffIDs)
	if err != nil {
		return nil, fmt.Errorf("squash: %w", err)
	}
	b.built = append(b.built, l)
	flat := cf.DeepCopy()
	flat.RootFS.DiffIDs, flat.History = nil, nil
	base, err := mutate.ConfigFile(scratch(), flat)
	if err != nil {
		return nil, err
	}
	out, err := mutate.Append(base, mutate.Addendum{
		Layer:     l,
		MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: b.opts.Epoch.UTC()}, CreatedBy: "kiln build",
			Comment: fmt.Sprintf("squashed %d layers", len(cf.RootFS.DiffIDs))},
	})
	if err != nil {
		return nil, err
	}
	return &squashed{img: out, layer: l}, nil
}

func (b *builder) squashLayer(ctx context.Context, img v1.Image, diffIDs []v1.Hash) (*builtLayer, error) {
	ev := Event{Command: "squash"}
	l := &builtLayer{st: b.st, tx: b.tx}
	if b.opts.CacheDir != "" {
		l.key = squashKey(diffIDs, b.opts.Epoch.Unix())
		if w, ok := loadCache(b.opts.CacheDir, l.key); ok && !b.opts.NoCache && b.st.HasBlob(w.Digest) {
			l.w, l.cached = w, true
			ev.Kind, ev.Cached, ev.Digest, ev.Bytes = StepDone, true, w.Digest, w.Size
			b.opts.Progress(ev)
			return l, nil
		}
	}
	ev.Kind = StepStart
	b.opts.Progress(ev)
	dirs, err := b.st.Unpack(ctx, img)
	if err != nil {
		return nil, err
	}
	m, err := mountLayers(dirs)
	if err != nil {
		return nil, err
	}
	defer m.close()
	w, err := writeLayer(ctx, b.tx, func(w io.Writer) (layer.Written, error) {
		cw := &countingWriter{w: w, report: func(n int64) {
			e := ev
			e.Kind, e.Bytes = StepWriting, n
			b.opts.Progress(e)
		}}
		return layer.Diff(cw, m.dir, b.opts.Epoch, nil)
	})
	if err != nil {
		return nil, err
	}
	l.w = w
	ev.Kind, ev.Digest, ev.Bytes = StepDone, w.Digest, w.Size
	b.opts.Progress(ev)
	return l, nil
}

func squashKey(diffIDs []v1.Hash, epoch int64) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00squash\x00%d\x00", cacheVersion(), epoch)
	for _, d := range diffIDs {
		fmt.Fprintf(h, "%s\x00", d)
	}
	return hex.EncodeToString(h.Sum(nil))
}
