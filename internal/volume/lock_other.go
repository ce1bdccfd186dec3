//go:build !unix

package volume

import (
	"errors"
	"fmt"
	"os"
)

var errNoFlock = fmt.Errorf("volume: file locks: %w", errors.ErrUnsupported)

func lockFile(path string) (*os.File, error) { return nil, errNoFlock }

func lockDir(dir string) (*os.File, error) { return nil, errNoFlock }

func tryLockDir(dir string) (*os.File, bool) { return nil, false }
