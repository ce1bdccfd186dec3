//go:build !linux

package bake

import "errors"

func writeDir(dir string, t tree) error {
	return errors.New("--format dir: only on Linux")
}
