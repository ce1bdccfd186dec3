package closure

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
)

const (
	ldCachePath = "/etc/ld.so.cache"

	// The format ldconfig has written by default since glibc 2.32.
	cacheMagicNew   = "glibc-ld.so.cache1.1"
	cacheHeaderNew  = 48 // magic+version, nlibs, len_strings, flags, 3 padding, extension_offset, 3 unused
	cacheEntryNew   = 24 // flags, key, value, osversion, hwcap (uint64)
	cacheEndianMask = 3  // in the header's flags byte: 0 unknown, 2 little, 3 big endian
	// The format before it, still written (followed by a new-format copy) by "ldconfig -c compat".
	cacheMagicOld  = "ld.so-1.7.0"
	cacheHeaderOld = 16 // magic (padded to 12), nlibs
	cacheEntryOld  = 12 // flags, key, value
)

// cacheEntry is one line of "ldconfig -p".
type cacheEntry struct {
	name, path string
	flags      int32
	hwcap      uint64 // non-zero: a variant for some CPUs (glibc-hwcaps subdir), not the baseline
}

// readLDCache reads the ld.so.cache at p under the root, indexed by library name. A missing cache
// is an empty one, as it is for ld.so.
func (r *Resolver) readLDCache(p string) (map[string][]cacheEntry, error) {
	b, err := r.readFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("closure: read %s: %w", p, err)
	}
	entries, err := parseLDCache(b)
	if err != nil {
		return nil, fmt.Errorf("closure: parse %s: %w", p, err)
	}
	index := map[string][]cacheEntry{}
	for _, e := range entries {
		index[e.name] = append(index[e.name], e)
	}
	return index, nil
}

// cached returns the paths ld.so.cache lists for name in the ABI a, in the order ld.so tries them.
// CPU-specific variants (hwcap != 0) are left out: the image may run on another CPU, and the
// baseline library is always there too.
func (r *Resolver) cached(name string, a abi) []string {
	var paths []string
	for _, e := range r.cache[name] {
		if e.hwcap == 0 && containsFlag(a.cacheFlags(), e.flags) {
			paths = append(paths, e.path)
		}
	}
	return paths
}

func containsFlag(list []int32, f int32) bool {
	for _, x := range list {
		if x == f {
			return true
		}
	}
	return false
}

// parseLDCache decodes a binary ld.so.cache, in file order.
func parseLDCache(b []byte) ([]cacheEntry, error) {
	switch {
	case bytes.HasPrefix(b, []byte(cacheMagicNew)):
		return parseNewCache(b, 0)
	case bytes.HasPrefix(b, []byte(cacheMagicOld)):
		return parseOldCache(b)
	}
	return nil, errors.New("unknown format")
}

// parseOldCache decodes the old format, whose numbers are in the writer's byte order; strings
// follow the entries and their offsets count from there.
func parseOldCache(b []byte) ([]cacheEntry, error) {
	if len(b) < cacheHeaderOld {
		return nil, errors.New("truncated header")
	}
	bo := binary.NativeEndian
	n := uint64(bo.Uint32(b[12:]))
	end := cacheHeaderOld + n*cacheEntryOld
	if end > uint64(len(b)) {
		return nil, fmt.Errorf("%d entries do not fit in %d bytes", n, len(b))
	}
	// A "compat" file carries a full new-format cache at the next 8-byte boundary; ld.so prefers it.
	if newOff := (end + 7) &^ 7; newOff < uint64(len(b)) && bytes.HasPrefix(b[newOff:], []byte(cacheMagicNew)) {
		return parseNewCache(b, int(newOff))
	}
	strs := b[end:]
	entries := make([]cacheEntry, n)
	for i := range entries {
		e := b[cacheHeaderOld+i*cacheEntryOld:]
		var err error
		entries[i].flags = int32(bo.Uint32(e))
		if entries[i], err = cacheStrings(entries[i], strs, bo.Uint32(e[4:]), bo.Uint32(e[8:])); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return entries, nil
}

// parseNewCache decodes the new format at off; its string offsets count from off.
func parseNewCache(b []byte, off int) ([]cacheEntry, error) {
	h := b[off:]
	if len(h) < cacheHeaderNew {
		return nil, errors.New("truncated header")
	}
	bo, err := cacheByteOrder(h[28])
	if err != nil {
		return nil, err
	}
	n := uint64(bo.Uint32(h[20:]))
	if cacheHeaderNew+n*cacheEntryNew > uint64(len(h)) {
		return nil, fmt.Errorf("%d entries do not fit in %d bytes", n, len(h))
	}
	entries := make([]cacheEntry, n)
	for i := range entries {
		e := h[cacheHeaderNew+i*cacheEntryNew:]
		entries[i].flags = int32(bo.Uint32(e))
		entries[i].hwcap = bo.Uint64(e[16:])
		if entries[i], err = cacheStrings(entries[i], h, bo.Uint32(e[4:]), bo.Uint32(e[8:])); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return entries, nil
}

func cacheByteOrder(flags byte) (binary.ByteOrder, error) {
	switch flags & cacheEndianMask {
	case 0:
		return binary.NativeEndian, nil // written before glibc recorded it: the writer's own order
	case 2:
		return binary.LittleEndian, nil
	case 3:
		return binary.BigEndian, nil
	}
	return nil, errors.New("invalid byte order flag")
}

func cacheStrings(e cacheEntry, strs []byte, key, value uint32) (cacheEntry, error) {
	var err error
	if e.name, err = cString(strs, key); err != nil {
		return e, err
	}
	e.path, err = cString(strs, value)
	return e, err
}

func cString(b []byte, off uint32) (string, error) {
	if uint64(off) >= uint64(len(b)) {
		return "", fmt.Errorf("string offset %d out of range", off)
	}
	s := b[off:]
	n := bytes.IndexByte(s, 0)
	if n < 0 {
		return "", fmt.Errorf("unterminated string at %d", off)
	}
	return string(s[:n]), nil
}
