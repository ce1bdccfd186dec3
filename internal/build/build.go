// Package build turns a parsed kiln.yaml into an image in the store.
//
// It computes the files the image needs (closure of binaries, declared files, trees, accounts and
// the certificates, nss and timezone switches), writes them as one deterministic layer, assembles
// the OCI config and manifest with go-containerregistry, and commits blobs and tags in one store
// transaction. It never prints: progress goes to the logger it is given.
//
//	sp, _ := spec.Load("kiln.yaml")
//	st, _ := store.Open("/var/lib/kiln")
//	res, err := build.Build(ctx, st, sp, build.Options{})
package build

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
	"github.com/kiln-project/kiln/internal/store"
)

// Options tune a build. The zero value builds with the spec's name:tag at epoch 0.
type Options struct {
	Tags     []string     // replace the spec's name:tag
	Epoch    time.Time    // timestamps in layers and config (SOURCE_DATE_EPOCH); zero means 1970-01-01
	CacheDir string       // where layer cache entries live; "" disables the cache
	NoCache  bool         // ignore cache entries (still refresh them)
	WorkDir  string       // where steps keep their containers' directories while they run; required for steps
	Log      *slog.Logger // progress; nil discards
	// ResolveBase finds a base image named by reference in the store (pulling it, if the caller
	// wants that); nil means look in the store only.
	ResolveBase ResolveFunc
}

// ResolveFunc finds the stored image a reference names.
type ResolveFunc func(ctx context.Context, ref string) (v1.Hash, error)

// Result describes a committed image.
type Result struct {
	Digest v1.Hash // manifest digest, as stored
	Tags   []string
	Layer  layer.Written // the contents layer
	Files  int           // entries in the contents layer
	Steps  []StepLayer   // one per step, in order
}

// StepLayer is the layer a step added.
type StepLayer struct {
	Layer  layer.Written
	Cached bool // reused from the build cache without running the step
}

// Build builds sp into st. On error the store is left as it was.
func Build(ctx context.Context, st *store.Store, sp *spec.Spec, opts Options) (*Result, error) {
	start := time.Now()
	if opts.Epoch.IsZero() {
		opts.Epoch = time.Unix(0, 0).UTC()
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tags := opts.Tags
	if len(tags) == 0 {
		tags = []string{sp.Name + ":" + sp.Tag}
	}

	tx, err := st.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Abort()

	base, err := openBase(ctx, st, sp, opts.ResolveBase)
	if err != nil {
		return nil, err
	}
	if base.cleanup != nil {
		defer base.cleanup()
	}
	c, err := collect(sp, base)
	if err != nil {
		return nil, err
	}
	planned, err := layer.Plan(c.entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sp.File, err)
	}
	log.Info("resolved contents", "entries", len(planned))

	lay, err := contentsLayer(ctx, st, tx, planned, opts, start, log)
	if err != nil {
		return nil, err
	}
	img, err := assemble(base, lay, sp, c, opts.Epoch)
	if err != nil {
		return nil, err
	}
	baseCfg, err := base.img.ConfigFile()
	if err != nil {
		return nil, err
	}
	steps := &stepper{st: st, tx: tx, sp: sp, opts: opts, start: start, log: log, baseUser: baseCfg.Config.User}
	img, stepLayers, err := steps.runSteps(ctx, img)
	if err != nil {
		return nil, err
	}
	digest, err := commit(tx, img, tags)
	if err != nil {
		return nil, err
	}
	res := &Result{Digest: digest, Tags: tags, Layer: lay.w, Files: len(planned)}
	for _, l := range append([]*builtLayer{lay}, stepLayers...) {
		if !l.cached {
			saveCache(opts.CacheDir, l.key, l.w)
		}
	}
	for _, l := range stepLayers {
		res.Steps = append(res.Steps, StepLayer{Layer: l.w, Cached: l.cached})
	}
	log.Info("built", "digest", digest.String(), "tags", tags)
	return res, nil
}

// commit stores img under tags and returns the digest of its stored manifest.
func commit(tx *store.Tx, img v1.Image, tags []string) (v1.Hash, error) {
	digest, err := tx.WriteImage(img)
	if err != nil {
		return v1.Hash{}, err
	}
	for _, t := range tags {
		if err := tx.Tag(t, digest); err != nil {
			return v1.Hash{}, err
		}
	}
	return digest, tx.Commit()
}
