package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// maxLinkHops bounds how many links inside a docker archive lead to a file.
const maxLinkHops = 16

// loadDockerArchive reads every image listed in the manifest.json of the docker archive at
// archive. A gzip-compressed archive is decompressed into tmp first, since the tarball package
// reopens the tar for every file it reads.
func loadDockerArchive(archive, tmp string) ([]Loaded, error) {
	file, err := plainTar(archive, tmp)
	if err != nil {
		return nil, err
	}
	entries, err := scanTar(archive, file)
	if err != nil {
		return nil, err
	}
	if err := resolveEntry(entries, "manifest.json", maxJSONSize); err != nil {
		return nil, fmt.Errorf("archive %s: %w", archive, err)
	}
	manifest, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	if err != nil {
		return nil, fmt.Errorf("archive %s: manifest.json: %w", archive, err)
	}
	if len(manifest) == 0 {
		return nil, fmt.Errorf("archive %s: manifest.json lists no images", archive)
	}
	images := make([]Loaded, 0, len(manifest))
	for i, desc := range manifest {
		img, err := dockerImage(file, entries, desc)
		if err != nil {
			return nil, fmt.Errorf("archive %s: manifest.json image %d (config %q): %w", archive, i, desc.Config, err)
		}
		images = append(images, img)
	}
	return images, nil
}

// dockerImage opens one image of a docker archive, after checking that its config and
// layers are in the archive.
func dockerImage(file string, entries map[string]*tar.Header, desc tarball.Descriptor) (Loaded, error) {
	if err := resolveEntry(entries, desc.Config, maxJSONSize); err != nil {
		return Loaded{}, err
	}
	for _, layer := range desc.Layers {
		if err := resolveEntry(entries, layer, 0); err != nil {
			return Loaded{}, err
		}
	}
	opener, err := singleImageOpener(file, desc)
	if err != nil {
		return Loaded{}, err
	}
	img, err := tarball.Image(opener, nil)
	if err != nil {
		return Loaded{}, err
	}
	config, err := img.ConfigFile()
	if err != nil {
		return Loaded{}, fmt.Errorf("config: %w", err)
	}
	if n, m := len(config.RootFS.DiffIDs), len(desc.Layers); n != m {
		return Loaded{}, fmt.Errorf("config lists %d layers, manifest.json %d", n, m)
	}
	var tags []string
	for _, ref := range desc.RepoTags {
		if tag, ok := normalizeTag(ref); ok {
			tags = append(tags, tag)
		}
	}
	return Loaded{Image: img, Tags: tags}, nil
}

// plainTar returns the path of the archive as a plain tar: archive itself, or its
// decompressed copy in tmp.
func plainTar(archive, tmp string) (string, error) {
	t, err := openTar(archive)
	if err != nil {
		return "", err
	}
	defer t.Close()
	if t.gz == nil {
		return archive, nil
	}
	file := filepath.Join(tmp, "archive.tar")
	f, err := os.Create(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := io.Copy(f, t.gz); err != nil {
		return "", tarError(archive, err)
	}
	return file, f.Close()
}

// scanTar reads the whole tar at file (so that a truncated one fails here) and returns its
// entries by clean name; the first of several with one name wins, as in the tarball package.
func scanTar(archive, file string) (map[string]*tar.Header, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, tarError(archive, err)
		}
		name := path.Clean(hdr.Name)
		if _, ok := entries[name]; !ok {
			entries[name] = hdr
		}
	}
}

// resolveEntry checks that name leads to a regular file in the tar, following links inside
// the tar the way the tarball package does (relative to the link's directory), and that the
// file is no larger than limit unless that is 0.
func resolveEntry(entries map[string]*tar.Header, name string, limit int64) error {
	target := name
	for range maxLinkHops {
		hdr, ok := entries[path.Clean(target)]
		if !ok {
			return fmt.Errorf("%q: not in the archive", name)
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			if limit > 0 && hdr.Size > limit {
				return fmt.Errorf("%q is %d bytes, more than the %d allowed", name, hdr.Size, limit)
			}
			return nil
		case tar.TypeSymlink, tar.TypeLink:
			target = path.Join(path.Dir(target), path.Clean(hdr.Linkname))
		default:
			return fmt.Errorf("%q: not a regular file", name)
		}
	}
	return fmt.Errorf("%q: more than %d links", name, maxLinkHops)
}

// singleImageOpener opens the tar at file as if its manifest.json listed desc only.
// tarball.Image picks an image of a multi-image archive by tag, and an entry may have
// none; so every open starts with a tar entry "manifest.json" holding desc, which the tarball
// package finds before the archive's own (it reads the first entry of a name).
func singleImageOpener(file string, desc tarball.Descriptor) (tarball.Opener, error) {
	m, err := json.Marshal(tarball.Manifest{desc})
	if err != nil {
		return nil, err
	}
	var prefix bytes.Buffer
	tw := tar.NewWriter(&prefix)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Size: int64(len(m)), Mode: 0o644}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(m); err != nil {
		return nil, err
	}
	// Flush, not Close: the archive's own entries follow, not an end-of-archive marker.
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	return func() (io.ReadCloser, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		return &prefixedFile{prefix: bytes.NewReader(prefix.Bytes()), f: f}, nil
	}, nil
}

// prefixedFile reads prefix, then f. Once past the prefix it seeks relative to the current
// position (all archive/tar needs to skip an entry without reading it).
type prefixedFile struct {
	prefix *bytes.Reader
	f      *os.File
}

func (p *prefixedFile) Read(b []byte) (int, error) {
	if p.prefix.Len() > 0 {
		return p.prefix.Read(b)
	}
	return p.f.Read(b)
}

func (p *prefixedFile) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || p.prefix.Len() > 0 {
		return 0, errors.New("prefixedFile: seek unsupported here")
	}
	pos, err := p.f.Seek(offset, io.SeekCurrent)
	return pos + p.prefix.Size(), err
}

func (p *prefixedFile) Close() error { return p.f.Close() }
