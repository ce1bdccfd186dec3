package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/build"
	"github.com/kiln-project/kiln/internal/registry"
	"github.com/kiln-project/kiln/internal/spec"
)

func newBuild(e *env) *cobra.Command {
	var file string
	var tags []string
	var noCache, squash bool
	cmd := &cobra.Command{
		Use:   "build [-f kiln.yaml] [-t name:tag] [DIR]",
		Short: "Build an image from a kiln.yaml",
		Long: `Build an image from DIR/kiln.yaml (or -f FILE; relative sources resolve against DIR, default ".").
Stages (stages: in kiln.yaml) are built first, then the image: one layer for contents and one
per step, or a single layer with --squash. Progress goes to stderr: on a terminal a live line for
the running step (time, layer bytes written), plain lines otherwise; a step reused from the build
cache says CACHED. The image's manifest digest is the last line of stdout.
Timestamps come from SOURCE_DATE_EPOCH (default 0), so the same inputs give the same digest.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return runBuild(cmd, e, dir, file, tags, build.Options{NoCache: noCache, Squash: squash})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "kiln.yaml to build (default DIR/kiln.yaml)")
	cmd.Flags().StringArrayVarP(&tags, "tag", "t", nil, "name:tag for the image, repeatable (default the kiln.yaml's name and tag)")
	cmd.Flags().BoolVar(&noCache, "no-cache", false, "rebuild layers even when the build cache has them")
	cmd.Flags().BoolVar(&squash, "squash", false, "fold the image, its base included, into one layer (as layers: squash)")
	return cmd
}

func runBuild(cmd *cobra.Command, e *env, dir, file string, tags []string, opts build.Options) error {
	abs, err := buildDir(dir)
	if err != nil {
		return err
	}
	if file == "" {
		file = filepath.Join(dir, "kiln.yaml")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	sp, err := spec.Parse(file, data, abs)
	if err != nil {
		return err
	}
	if opts.Epoch, err = sourceDateEpoch(); err != nil {
		return err
	}
	st, err := e.store()
	if err != nil {
		return err
	}
	start := time.Now()
	view := e.stepView()
	opts.Tags, opts.Log, opts.Progress = tags, view.logger(e.verbose), view.event
	opts.CacheDir, opts.WorkDir = filepath.Join(e.root, "cache", "layers"), filepath.Join(e.root, "build")
	opts.ResolveBase = func(ctx context.Context, ref string) (v1.Hash, error) {
		p := registry.Puller{Options: e.registryOptions(true, nil)}
		return p.Ensure(ctx, st, ref, registry.PullMissing)
	}
	res, err := build.Build(cmd.Context(), st, sp, opts)
	view.stop()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "built %v in %s (%s)\n", res.Tags, time.Since(start).Round(time.Millisecond), summary(res))
	fmt.Fprintln(e.stdout, res.Digest)
	return nil
}

// summary is "12 files, layer 1.2 MiB, 3 steps, 2 from cache, squashed 5.0 MiB".
func summary(res *build.Result) string {
	s := fmt.Sprintf("%d files, layer %s", res.Files, size(res.Layer.Size))
	if n := len(res.Steps); n > 0 {
		cached := 0
		for _, l := range res.Steps {
			if l.Cached {
				cached++
			}
		}
		s += fmt.Sprintf(", %d steps, %d from cache", n, cached)
	}
	if res.Squash != nil {
		s += ", squashed " + size(res.Squash.Size)
	}
	return s
}

// buildDir is dir as an absolute path without symlinks: the build directory's host path decides
// where its programs' $ORIGIN libraries go in the image, and a symlink on the way (a checkout
// reached through a link) must not show there or change the digest.
func buildDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("build directory %s: %w", dir, err)
	}
	if fi, err := os.Stat(resolved); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("build directory %s: not a directory", dir)
	}
	return resolved, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/).
func sourceDateEpoch() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative integer of seconds", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

// size prints bytes the way people read them.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
