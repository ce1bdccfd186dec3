//go:build !linux

package runspec

// hasOpaqueXattr: only Linux has overlayfs xattrs; elsewhere the tar-form
// marker is the only way a layer directory is opaque.
func hasOpaqueXattr(dir string) bool { return false }
