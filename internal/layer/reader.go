package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
)

// layerReader is a tar.Reader that tells a complete tar from a truncated one.
//
// archive/tar reports io.EOF when the input ends exactly between entries, so
// a layer cut at an entry boundary would look complete. We count what each
// Next consumes: after the previous entry's content is drained, Next reads at
// most 511 bytes of padding and then whole header blocks, so a real end of
// archive has consumed at least one (zero) block. We accept a lone zero block
// as GNU tar does; POSIX writes two.
type layerReader struct {
	tr   *tar.Reader
	src  *countingReader
	last string // name of the latest entry, for errors
	buf  []byte
}

func newLayerReader(r io.Reader) *layerReader {
	src := &countingReader{r: r}
	return &layerReader{tr: tar.NewReader(src), src: src}
}

// next returns the next header, io.EOF at a proper end of archive, or an
// error naming the last entry read.
func (lr *layerReader) next() (*tar.Header, error) {
	if err := lr.drain(); err != nil {
		return nil, err
	}
	before := lr.src.n
	hdr, err := lr.tr.Next()
	switch {
	case err == io.EOF && lr.src.n-before >= blockSize:
		return nil, io.EOF
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, lr.truncated()
	case err != nil:
		return nil, fmt.Errorf("read layer after entry %q: %w", lr.last, err)
	}
	lr.last = hdr.Name
	return hdr, nil
}

const blockSize = 512

// Read reads the content of the current entry.
func (lr *layerReader) Read(p []byte) (int, error) {
	n, err := lr.tr.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = lr.truncated()
	}
	return n, err
}

// drain discards what is left of the current entry's content.
func (lr *layerReader) drain() error {
	if lr.buf == nil {
		lr.buf = make([]byte, 64<<10)
	}
	for {
		_, err := lr.Read(lr.buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (lr *layerReader) truncated() error {
	if lr.last == "" {
		return fmt.Errorf("layer truncated before its first entry: %w", io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("layer truncated in or after entry %q: %w", lr.last, io.ErrUnexpectedEOF)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
