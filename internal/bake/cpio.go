package bake

import (
	"fmt"
	"io"
)

// The newc cpio format the kernel unpacks into its rootfs (Documentation/driver-api/
// early-userspace/buffer-format.rst): a 110-byte ASCII header of 13 hex fields, the NUL-terminated
// name, padding to 4 bytes, the body, padding to 4 bytes; a last entry named TRAILER!!!.
const (
	cpioMagic   = "070701"
	cpioTrailer = "TRAILER!!!"
)

// File type bits of a cpio mode.
const (
	modeFIFO = 0o010000
	modeChar = 0o020000
	modeDir  = 0o040000
	modeBlk  = 0o060000
	modeReg  = 0o100000
	modeLink = 0o120000
)

// cpioHeader is one entry's header; the name and body are written after it.
type cpioHeader struct {
	Ino, Mode, UID, GID, Nlink uint32
	Mtime                      uint32
	Size                       uint32
	RdevMajor, RdevMinor       uint32
}

// cpioWriter writes newc entries and counts the bytes written.
type cpioWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *cpioWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.err = err
}

func (c *cpioWriter) pad() {
	if r := c.n % 4; r != 0 {
		c.write(make([]byte, 4-r))
	}
}

// entry writes one entry; body's length must be h.Size.
func (c *cpioWriter) entry(name string, h cpioHeader, body []byte) error {
	if int64(len(body)) != int64(h.Size) {
		return fmt.Errorf("cpio %s: body of %d bytes, header says %d", name, len(body), h.Size)
	}
	if uint64(len(body)) > 1<<32-1 {
		return fmt.Errorf("cpio %s: %d bytes: newc holds at most 4 GiB per file", name, len(body))
	}
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		cpioMagic, h.Ino, h.Mode, h.UID, h.GID, h.Nlink, h.Mtime, h.Size,
		0, 0, h.RdevMajor, h.RdevMinor, len(name)+1, 0)
	c.write([]byte(hdr))
	c.write([]byte(name))
	c.write([]byte{0})
	c.pad()
	c.write(body)
	c.pad()
	return c.err
}

// close writes the trailer.
func (c *cpioWriter) close() error {
	return c.entry(cpioTrailer, cpioHeader{Nlink: 1}, nil)
}
