//go:build !unix

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
)

type lockMode int

const (
	shared lockMode = iota
	exclusive
)

var errNoFlock = fmt.Errorf("store: file locks: %w", errors.ErrUnsupported)

func lockPath(ctx context.Context, path string, mode lockMode) (*os.File, error) {
	return nil, errNoFlock
}

func lockFile(ctx context.Context, f *os.File, mode lockMode) error { return errNoFlock }

func tryLock(f *os.File, mode lockMode) (bool, error) { return false, errNoFlock }

func unlock(f *os.File) {
	if f != nil {
		f.Close()
	}
}
