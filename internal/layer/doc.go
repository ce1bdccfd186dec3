// Package layer turns a planned set of files into a deterministic tar+gzip
// image layer, and reads layers from untrusted hands safely.
//
// It owns four things:
//
//   - Plan and Write: the same entries and mtime always give the same bytes,
//     so the same Digest and DiffID. Nothing is taken from the host except the
//     content (and, when no mode is given, the permission bits) of Source
//     files: never their owner, times or xattrs.
//   - Check: a streaming safety check of an uncompressed tar (no path
//     escaping the root, no path through a symlink made earlier in the layer,
//     no truncation).
//   - Decompress and Extract: sniffing gzip/zstd/plain, and unpacking one
//     layer into a directory without ever writing outside it (Linux only).
//   - Diff: a container's overlayfs upper directory as a deterministic layer,
//     whiteouts and opaque directories included (Linux only).
//
// It never knows about images, manifests or the store: callers turn a
// Written into a descriptor, and decide where blobs and unpacked layers live.
//
// Typical use:
//
//	planned, err := layer.Plan(entries)
//	if err != nil { ... }
//	w, err := layer.Write(f, planned, time.Unix(epoch, 0))
//	// w.Digest names the gzip blob, w.DiffID the tar inside it.
package layer
