package container

// UnmountUnder detaches every mount at or below dir in this mount namespace (MNT_DETACH,
// deepest first) without following one into what it covers. It is for any directory a crash can
// leave with a mount under it, a container's or a killed build step's, so that removing the
// directory afterwards never deletes through a mount.
func UnmountUnder(dir string) error { return unmountUnder(dir) }
