package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-project/kiln/internal/build"
	"github.com/kiln-project/kiln/internal/container"
	"github.com/kiln-project/kiln/internal/runtime"
	"github.com/kiln-project/kiln/internal/store"
)

func newGC(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs and unpacked layers nothing references, and cached bakes",
		Long: `Remove blobs no tagged image references, and unpacked layers neither a tagged image nor a
container (running or stopped) uses. The bakes kiln boot IMAGE cached are removed too: the next
boot bakes again. So are the cgroups a killed kiln left (empty, and a minute old), and the
directories of build steps whose kiln build was killed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := gcStore(cmd.Context(), e); err != nil {
				return err
			}
			if n := runtime.SweepCgroups(); n > 0 {
				fmt.Fprintf(e.stderr, "removed %d cgroups of containers that no longer exist\n", n)
			}
			stepsErr := removeStaleSteps(e)
			n, freed, err := removeBootCache(e.root)
			if n > 0 {
				fmt.Fprintf(e.stderr, "freed %s in %d cached bakes\n", size(freed), n)
			}
			return errors.Join(stepsErr, err)
		},
	}
}

// gcStore removes the blobs and unpacked layers nothing uses, and says which.
func gcStore(ctx context.Context, e *env) error {
	st, err := e.store()
	if err != nil {
		return err
	}
	rep, err := st.GC(ctx, store.KeepLayers(func() (map[v1.Hash]bool, error) {
		return containerLayers(e)
	}))
	if err != nil {
		return err
	}
	for _, d := range rep.Removed {
		fmt.Fprintf(e.stdout, "removed %s\n", d)
	}
	for _, d := range rep.RemovedLayers {
		fmt.Fprintf(e.stdout, "removed layer %s\n", d)
	}
	fmt.Fprintf(e.stderr, "freed %s in %d blobs and %s in %d unpacked layers\n",
		size(rep.Freed), len(rep.Removed), size(rep.LayersFreed), len(rep.RemovedLayers))
	return nil
}

// removeStaleSteps removes the step directories killed builds left under ROOT/build (the
// WorkDir kiln build gives its steps) and says which.
func removeStaleSteps(e *env) error {
	rep, err := build.RemoveStaleSteps(filepath.Join(e.root, "build"))
	for _, d := range rep.Dirs {
		fmt.Fprintf(e.stdout, "removed build step %s\n", d)
	}
	if len(rep.Dirs) > 0 {
		fmt.Fprintf(e.stderr, "freed %s in %d directories of killed build steps\n", size(rep.Freed), len(rep.Dirs))
	}
	return err
}

// containerLayers are the layers every container record names.
func containerLayers(e *env) (map[v1.Hash]bool, error) {
	cs, err := container.Open(e.root)
	if err != nil {
		return nil, err
	}
	states, err := cs.List()
	if err != nil {
		return nil, err
	}
	keep := map[v1.Hash]bool{}
	for _, s := range states {
		for _, l := range s.Layers {
			h, err := v1.NewHash(l)
			if err != nil {
				return nil, fmt.Errorf("container %s: layer %q: %w", s.Name, l, err)
			}
			keep[h] = true
		}
	}
	return keep, nil
}

// removeBootCache removes the bakes kiln boot IMAGE keeps under ROOT/cache/boot.
func removeBootCache(root string) (n int, freed int64, err error) {
	dir := filepath.Join(root, "cache", "boot")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	for _, ent := range entries {
		p := filepath.Join(dir, ent.Name())
		filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					freed += fi.Size()
				}
			}
			return nil
		})
		if err := os.RemoveAll(p); err != nil {
			return n, freed, fmt.Errorf("remove cached bake: %w", err)
		}
		n++
	}
	return n, freed, nil
}
