//go:build !unix

package container

import (
	"errors"
	"fmt"
	"os"
)

type lockMode int

const (
	shared lockMode = iota
	exclusive
)

func lockFile(path string, mode lockMode, create bool) (*os.File, error) {
	return nil, fmt.Errorf("lock %s: %w", path, errors.ErrUnsupported)
}

func tryLockFile(path string) (*os.File, error) {
	return nil, fmt.Errorf("lock %s: %w", path, errors.ErrUnsupported)
}
