package layer

import (
	"archive/tar"
	"crypto/sha256"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
)

// writeTarGzip is the pipeline every layer goes through: fill writes tar
// entries, the tar is hashed (DiffID) and gzipped at gzipLevel with no name
// and no time in the gzip header, and the gzip stream is hashed (Digest) and
// written to w. It gives the same bytes as Write for the same tar entries
// (TestWriteTarGzipMatchesWrite), so Write can be expressed with it.
//
// An error from fill comes back unchanged; pipeline errors are not wrapped.
func writeTarGzip(w io.Writer, fill func(tw *tar.Writer) error) (Written, error) {
	digest, diffID := sha256.New(), sha256.New()
	compressed := &counter{w: io.MultiWriter(w, digest)}
	gz, err := gzip.NewWriterLevel(compressed, gzipLevel)
	if err != nil {
		return Written{}, err
	}
	// The zero time.Time would be written as a garbage mtime, not as 0 ("none").
	gz.ModTime = time.Unix(0, 0)
	uncompressed := &counter{w: io.MultiWriter(gz, diffID)}
	tw := tar.NewWriter(uncompressed)
	if err := fill(tw); err != nil {
		return Written{}, err
	}
	if err := tw.Close(); err != nil {
		return Written{}, err
	}
	if err := gz.Close(); err != nil {
		return Written{}, err
	}
	return Written{
		Digest:           sha256Hash(digest),
		DiffID:           sha256Hash(diffID),
		Size:             compressed.n,
		UncompressedSize: uncompressed.n,
	}, nil
}

// wholeSeconds is mtime as every header carries it: whole seconds, UTC, so
// that no PAX mtime record is ever needed.
func wholeSeconds(mtime time.Time) time.Time {
	return time.Unix(mtime.Unix(), 0).UTC()
}
