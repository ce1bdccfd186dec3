package layer

import (
	"archive/tar"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
)

// gzipLevel is fixed: the level is part of what makes the bytes (and so the
// Digest) reproducible. It is DefaultCompression (klauspost's level 5). On
// libcrypto.so.3 (4,734,232 bytes; BenchmarkGzipLevels, 2-CPU AMD EPYC):
//
//	BestSpeed  2,248,163 bytes (47.5%)  ~160-180 MB/s
//	Default    2,020,447 bytes (42.7%)   ~80-97 MB/s
//
// BestSpeed is about 2x faster but 11% bigger; we only switch when it is more
// than 2x faster for under 10% size, so Default it is. Changing the level, or
// the klauspost/compress version, changes every Digest (not the DiffID).
const gzipLevel = gzip.DefaultCompression

// Written describes a layer produced by Write.
type Written struct {
	Digest           v1.Hash // sha256 of the gzip stream: the blob
	DiffID           v1.Hash // sha256 of the tar inside it
	Size             int64   // bytes of gzip written to w
	UncompressedSize int64   // bytes of tar
}

// Write writes planned (as returned by Plan) as a tar, gzipped, to w, and
// returns the hashes and sizes of both. Every header carries mtime (whole
// seconds), the Entry's owner and mode and no user or group names; the gzip
// header has no name and no time. Same inputs, same bytes.
//
// A Regular entry with a Source is streamed from that file; its size is taken
// when the file is opened, and a file that changes size while being read is
// an error. If its Mode is zero, the source's permission bits (not setuid,
// setgid or sticky) are used.
func Write(w io.Writer, planned []Entry, mtime time.Time) (Written, error) {
	mtime = wholeSeconds(mtime)
	written, err := writeTarGzip(w, func(tw *tar.Writer) error { return writeEntries(tw, planned, mtime) })
	if err != nil {
		return Written{}, fmt.Errorf("write layer: %w", err)
	}
	return written, nil
}

func writeEntries(tw *tar.Writer, planned []Entry, mtime time.Time) error {
	for i, e := range planned {
		if err := validate(e); err != nil {
			return err
		}
		if i > 0 && comparePaths(planned[i-1].Path, e.Path) >= 0 {
			return fmt.Errorf("%s: entries not planned (out of order or duplicate)", e.Path)
		}
		if err := writeEntry(tw, e, mtime); err != nil {
			return fmt.Errorf("%s (%s): %w", e.Path, origin(e), err)
		}
	}
	return nil
}

func writeEntry(tw *tar.Writer, e Entry, mtime time.Time) error {
	hdr := &tar.Header{
		Name:    tarName(e),
		Mode:    tarMode(e.Mode),
		Uid:     e.UID,
		Gid:     e.GID,
		ModTime: mtime,
		// PAX is USTAR plus records only where USTAR cannot say something
		// (a name over 100 bytes, a large uid); pinned so Go's automatic
		// choice between formats never changes our bytes.
		Format: tar.FormatPAX,
	}
	switch e.Kind {
	case Dir:
		hdr.Typeflag = tar.TypeDir
		return tw.WriteHeader(hdr)
	case Symlink:
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.Target
		hdr.Mode = 0o777 // what lstat shows for every symlink on Linux
		return tw.WriteHeader(hdr)
	}
	hdr.Typeflag = tar.TypeReg
	if e.Source == "" {
		hdr.Size = int64(len(e.Data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.Data)
		return err
	}
	return copySource(tw, hdr, e)
}

// copySource streams e.Source into tw, with the size fstat reports for the
// opened file.
func copySource(tw *tar.Writer, hdr *tar.Header, e Entry) error {
	f, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("source %s is a %v, not a regular file", e.Source, info.Mode().Type())
	}
	if e.Mode == 0 {
		hdr.Mode = int64(info.Mode().Perm())
	}
	hdr.Size = info.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyN(tw, f, hdr.Size)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("source %s shrank from %d to %d bytes while being read", e.Source, hdr.Size, n)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", e.Source, err)
	}
	if m, _ := f.Read(make([]byte, 1)); m > 0 {
		return fmt.Errorf("source %s grew beyond %d bytes while being read", e.Source, hdr.Size)
	}
	return nil
}

// tarName is the name in the tar: relative, directories ending in "/".
func tarName(e Entry) string {
	name := strings.TrimPrefix(e.Path, "/")
	if e.Kind == Dir {
		name += "/"
		if name == "/" {
			name = "./"
		}
	}
	return name
}

// tarMode converts fs.FileMode bits to the tar (and Unix) encoding.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func sha256Hash(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
