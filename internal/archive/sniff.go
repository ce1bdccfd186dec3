package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Sniff tells what is at path: a directory holding an OCI layout, or a tar (plain or gzip)
// that is an OCI archive (it has oci-layout or index.json; Docker 25+ archives have both
// these and manifest.json) or a docker archive (manifest.json only).
func Sniff(path string) (Kind, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	if fi.IsDir() {
		if _, err := os.Stat(filepath.Join(path, "oci-layout")); err != nil {
			return 0, fmt.Errorf("archive %s: a directory without an oci-layout file is not an OCI layout", path)
		}
		return KindOCILayout, nil
	}
	t, err := openTar(path)
	if err != nil {
		return 0, err
	}
	defer t.Close()
	tr := tar.NewReader(t.Reader())
	docker := false
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if n == 0 {
				return 0, fmt.Errorf("archive %s: not a tar file: %w", path, err)
			}
			return 0, tarError(path, err)
		}
		switch entryName(hdr.Name) {
		case "oci-layout", "index.json":
			return KindOCIArchive, nil
		case "manifest.json":
			docker = true
		}
	}
	if docker {
		return KindDockerArchive, nil
	}
	return 0, fmt.Errorf("archive %s: neither an OCI archive nor a docker archive (no oci-layout, index.json or manifest.json)", path)
}

// entryName is a tar entry's name without a leading "./" (tar -C dir . writes those) or a
// trailing slash; "" for the archive's root directory.
func entryName(name string) string {
	name = strings.TrimPrefix(name, "./")
	name = strings.TrimSuffix(name, "/")
	if name == "." {
		return ""
	}
	return name
}

// tarError is err, met reading the tar in archive, as an error naming archive.
func tarError(archive string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("archive %s: truncated: %w", archive, err)
	}
	return fmt.Errorf("archive %s: %w", archive, err)
}

// tarFile is an archive file opened for reading as a tar, gzip-compressed or not.
type tarFile struct {
	path string
	f    *os.File
	gz   *gzip.Reader // nil for a plain tar
}

var gzipMagic = []byte{0x1f, 0x8b}

func openTar(path string) (*tarFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	t := &tarFile{path: path, f: f}
	magic := make([]byte, len(gzipMagic))
	if _, err := f.ReadAt(magic, 0); err == nil && bytes.Equal(magic, gzipMagic) {
		if t.gz, err = gzip.NewReader(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("archive %s: %w", path, err)
		}
	}
	return t, nil
}

// Reader is the tar stream. For a plain tar it is the *os.File itself, so that
// archive/tar seeks over entries it skips instead of reading them.
func (t *tarFile) Reader() io.Reader {
	if t.gz != nil {
		return t.gz
	}
	return t.f
}

// Drain reads what follows the tar's end, so that a gzip stream's checksum is verified.
func (t *tarFile) Drain() error {
	if t.gz == nil {
		return nil
	}
	if _, err := io.Copy(io.Discard, t.gz); err != nil {
		return tarError(t.path, err)
	}
	return nil
}

func (t *tarFile) Close() error { return t.f.Close() }
