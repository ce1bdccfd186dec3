package bake

import (
	"fmt"
	"io"
	"slices"
)

// writeCPIO writes t as a newc archive: paths sorted (so parents come first), inode numbers
// given in that order, hard links as one inode whose first path carries the content.
func writeCPIO(w io.Writer, t tree) (int64, error) {
	paths := make([]string, 0, len(t))
	links := map[*node]uint32{}
	for p, n := range t {
		paths = append(paths, p)
		links[n]++
	}
	slices.Sort(paths)
	c := &cpioWriter{w: w}
	inos := map[*node]uint32{}
	for _, p := range paths {
		n := t[p]
		ino, seen := inos[n]
		if !seen {
			ino = uint32(len(inos) + 1)
			inos[n] = ino
		}
		h := cpioHeader{Ino: ino, Mode: n.mode, UID: uint32(n.uid), GID: uint32(n.gid), Nlink: 1,
			Mtime: clampTime(n.mtime), RdevMajor: n.devMajor, RdevMinor: n.devMinor}
		var body []byte
		switch n.mode & 0o170000 {
		case modeReg:
			h.Nlink = links[n]
			if !seen {
				body = n.data
			}
		case modeLink:
			body = []byte(n.target)
		case modeDir:
			h.Nlink = 2
		}
		h.Size = uint32(len(body))
		if err := c.entry(p, h, body); err != nil {
			return c.n, fmt.Errorf("initramfs: %w", err)
		}
	}
	if err := c.close(); err != nil {
		return c.n, fmt.Errorf("initramfs: %w", err)
	}
	return c.n, nil
}

// clampTime fits a Unix time into newc's unsigned 32 bits.
func clampTime(t int64) uint32 {
	return uint32(max(0, min(t, 1<<32-1)))
}
