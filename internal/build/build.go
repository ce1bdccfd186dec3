// Package build turns a parsed kiln.yaml into an image in the store.
//
// It computes the files the image needs (closure of binaries, declared files, trees, accounts and
// the certificates, nss and timezone switches), writes them as one deterministic layer, runs the
// steps in containers (a layer each), assembles the OCI config and manifest with
// go-containerregistry, and commits blobs and tags in one store transaction. Stages are built the
// same way first, never tagged; contents may be taken from their roots. It never prints: progress
// goes to the logger and the Progress callback it is given.
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
	Squash   bool         // fold the image into one layer, as layers: squash does
	Log      *slog.Logger // progress; nil discards
	Progress func(Event)  // what steps do as they run; nil ignores it. Called from one goroutine at a time.
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
	Steps  []StepLayer   // one per step of the image and of its stages, in the order built
	Squash *layer.Written
}

// StepLayer is the layer a step added.
type StepLayer struct {
	Stage  string // "" for a step of the image itself
	Layer  layer.Written
	Cached bool // reused from the build cache without running the step
}

// builder builds the stages of one kiln.yaml and then its image, in one store transaction.
type builder struct {
	st     *store.Store
	tx     *store.Tx
	opts   Options
	start  time.Time
	log    *slog.Logger
	stages map[string]*stage // built so far, by name
	built  []*builtLayer     // every layer made, to record in the cache once committed

	cleanups []func() // run by close: base archives unpacked to temporary dirs
}

// built is one image of a build: a stage or the one tagged.
type built struct {
	img   v1.Image
	lay   *builtLayer // contents
	files int
	steps []*builtLayer
}

// Build builds sp, its stages first, into st. On error the store is left as it was.
func Build(ctx context.Context, st *store.Store, sp *spec.Spec, opts Options) (*Result, error) {
	if opts.Epoch.IsZero() {
		opts.Epoch = time.Unix(0, 0).UTC()
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Progress == nil {
		opts.Progress = func(Event) {}
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
	b := &builder{st: st, tx: tx, opts: opts, start: time.Now(), log: opts.Log, stages: map[string]*stage{}}
	defer b.close()
	res := &Result{Tags: tags}
	for _, s := range sp.Stages {
		out, err := b.image(ctx, s)
		if err != nil {
			return nil, err
		}
		b.stages[s.Stage] = &stage{img: out.img}
		res.addSteps(s.Stage, out.steps)
	}
	out, err := b.image(ctx, sp)
	if err != nil {
		return nil, err
	}
	res.Layer, res.Files = out.lay.w, out.files
	res.addSteps("", out.steps)
	img := out.img
	if sp.Squash || opts.Squash {
		sq, err := b.squash(ctx, img)
		if err != nil {
			return nil, err
		}
		img, res.Squash = sq.img, &sq.layer.w
	}
	if res.Digest, err = commit(tx, img, tags); err != nil {
		return nil, err
	}
	for _, l := range b.built {
		if !l.cached {
			saveCache(opts.CacheDir, l.key, l.w)
		}
	}
	b.log.Info("built", "digest", res.Digest.String(), "tags", tags)
	return res, nil
}

func (r *Result) addSteps(stage string, steps []*builtLayer) {
	for _, l := range steps {
		r.Steps = append(r.Steps, StepLayer{Stage: stage, Layer: l.w, Cached: l.cached})
	}
}

// image builds one image of sp (a stage or the top level) on its base: contents, config, steps.
func (b *builder) image(ctx context.Context, sp *spec.Spec) (*built, error) {
	base, err := b.openBase(ctx, sp)
	if err != nil {
		return nil, err
	}
	if base.cleanup != nil {
		b.cleanups = append(b.cleanups, base.cleanup) // the archive is read until the image is committed
	}
	c, err := collect(sp, base, b.stageRoot(ctx))
	if err != nil {
		return nil, err
	}
	planned, err := layer.Plan(c.entries)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sp.File, err)
	}
	if sp.Stage != "" {
		b.log.Info("stage " + sp.Stage)
	}
	b.log.Info("resolved contents", "entries", len(planned))
	lay, err := contentsLayer(ctx, b.st, b.tx, planned, b.opts, b.start, b.log, c.stableKey)
	if err != nil {
		return nil, err
	}
	b.built = append(b.built, lay)
	img, err := assemble(base, lay, sp, c, b.opts.Epoch)
	if err != nil {
		return nil, err
	}
	baseCfg, err := base.img.ConfigFile()
	if err != nil {
		return nil, err
	}
	steps := &stepper{st: b.st, tx: b.tx, sp: sp, opts: b.opts, start: b.start, baseUser: baseCfg.Config.User}
	img, stepLayers, err := steps.runSteps(ctx, img)
	if err != nil {
		return nil, err
	}
	b.built = append(b.built, stepLayers...)
	return &built{img: img, lay: lay, files: len(planned), steps: stepLayers}, nil
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
