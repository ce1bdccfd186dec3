//go:build !linux

package container

// unmountUnder has nothing to do where kiln mounts nothing.
func unmountUnder(dir string) error { return nil }
