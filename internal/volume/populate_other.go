//go:build !linux

package volume

import (
	"errors"
	"fmt"
)

// Populate copies src into the volume. It needs Linux (openat2, mknod,
// lchown, xattrs); elsewhere it returns an error wrapping
// errors.ErrUnsupported.
func (v *Volume) Populate(src string) error {
	return fmt.Errorf("populate volume %s: %w", v.Name, errors.ErrUnsupported)
}

// PopulateIn is Populate of path inside root; Linux only.
func (v *Volume) PopulateIn(root, path string) error {
	return fmt.Errorf("populate volume %s: %w", v.Name, errors.ErrUnsupported)
}

// PopulateFromLayers is PopulateIn on an image's layer dirs; Linux only.
func (v *Volume) PopulateFromLayers(layers []string, path string) error {
	return fmt.Errorf("populate volume %s: %w", v.Name, errors.ErrUnsupported)
}
