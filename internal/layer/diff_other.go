//go:build !linux

package layer

import (
	"errors"
	"fmt"
	"io"
	"time"
)

// Diff writes the changes recorded in an overlayfs upper directory as a
// layer. Overlayfs is Linux only; elsewhere Diff returns an error wrapping
// errors.ErrUnsupported.
func Diff(w io.Writer, upper string, mtime time.Time, exclude []string) (Written, error) {
	return Written{}, fmt.Errorf("diff %s: %w", upper, errors.ErrUnsupported)
}
