package build

import (
	"fmt"

	"github.com/kiln-project/kiln/internal/closure"
	"github.com/kiln-project/kiln/internal/layer"
	"github.com/kiln-project/kiln/internal/spec"
)

// Contents taken from a stage (from:) are read from the stage's root, a read-only tree. Their
// paths are resolved inside it as if it were "/": a symlink there, absolute or made of "..",
// never leads to the host's files.

// addStageBinary adds a program of a stage with its closure, resolved in the stage's root (its
// ld.so.cache, ld.so.conf and PATH): the files keep their paths, and the program goes to dst.
func addStageBinary(sp *spec.Spec, c *collected, b spec.Binary) error {
	r, err := c.fromStage(b.From)
	if err != nil {
		return specErr(sp, b.Pos, "from", err)
	}
	src, err := r.res.Lookup(b.Src)
	if err != nil {
		return specErr(sp, b.Pos, "src", fmt.Errorf("in stage %s: %w", b.From, err))
	}
	files, err := r.res.Resolve(src)
	if err != nil {
		return specErr(sp, b.Pos, "src", fmt.Errorf("in stage %s: %w", b.From, err))
	}
	dst := b.Dst
	if dst == "" {
		dst = src
	}
	org := origin(sp, b.Pos)
	for _, f := range files {
		e, err := stageEntry(r, f, org)
		if err != nil {
			return specErr(sp, b.Pos, "src", err)
		}
		c.add(e)
	}
	if dst != src {
		// The program itself, copied where asked; the path it was found at stays too, so that a
		// link of its chain other files may share is never left dangling.
		real, err := r.res.Real(src)
		if err != nil {
			return specErr(sp, b.Pos, "src", err)
		}
		mode, err := hostMode(r.dir + real)
		if err != nil {
			return specErr(sp, b.Pos, "src", err)
		}
		c.add(layer.Entry{Path: dst, Kind: layer.Regular, Source: r.dir + real, Mode: mode, Origin: org})
	}
	return nil
}

// stageEntry is the layer entry of a file of a closure resolved in r.
func stageEntry(r *stageRoot, f closure.File, org string) (layer.Entry, error) {
	e := layer.Entry{Path: f.Path, Origin: org + ": " + f.Origin}
	if f.Target != "" {
		e.Kind, e.Target, e.Mode = layer.Symlink, f.Target, 0o777
		return e, nil
	}
	mode, err := hostMode(r.dir + f.Path)
	if err != nil {
		return e, err
	}
	e.Kind, e.Source, e.Mode = layer.Regular, r.dir+f.Path, mode
	return e, nil
}

// stagePath is where the file or directory p of stage name is, symlinks resolved in its root.
func (c *collected) stagePath(name, p string) (string, error) {
	r, err := c.fromStage(name)
	if err != nil {
		return "", err
	}
	real, err := r.res.Real(p)
	if err != nil {
		return "", fmt.Errorf("in stage %s: %w", name, err)
	}
	return r.dir + real, nil
}
