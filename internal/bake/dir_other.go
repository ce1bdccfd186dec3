//go:build !linux

package bake

import (
	"errors"
	"os"
)

func writeDir(dir string, t tree) error {
	return errors.New("--format dir: only on Linux")
}

// exchange replaces b with a, leaving nothing at a (not in one step, as on Linux).
func exchange(a, b string) error {
	if err := os.RemoveAll(b); err != nil {
		return err
	}
	return os.Rename(a, b)
}
