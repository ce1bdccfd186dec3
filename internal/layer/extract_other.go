//go:build !linux

package layer

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Extract unpacks a layer into dir. It needs Linux (openat2, mknod, lchown,
// overlayfs whiteouts); elsewhere it returns an error wrapping
// errors.ErrUnsupported.
func Extract(ctx context.Context, r io.Reader, dir string) error {
	return fmt.Errorf("extract layer into %s: %w", dir, errors.ErrUnsupported)
}
