package archive

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-project/kiln/internal/layer"
)

// defaultPath is what an imported root filesystem gets as PATH, as Docker's runtime would assume.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ImportRootfs makes a one-layer image of a plain root filesystem tarball (gzip, zstd or
// uncompressed), such as debootstrap or `tar -C rootfs -c .` make. The tar is kept as it is;
// the store checks it when the image is written. created dates the config and history.
func ImportRootfs(path string, created time.Time) (v1.Image, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	open := func() (io.ReadCloser, error) { return openDecompressed(path) }
	l, err := tarball.LayerFromOpener(open, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	when := v1.Time{Time: created.UTC()}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
		History: v1.History{Created: when, CreatedBy: "kiln import", Comment: "root filesystem"}})
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created, cf.OS, cf.Architecture = when, "linux", runtime.GOARCH
	cf.Config.Env = []string{defaultPath}
	return mutate.ConfigFile(img, cf)
}

// openDecompressed opens path and undoes its compression, if any.
func openDecompressed(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	rc, err := layer.Decompress(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return closeBoth{rc, f}, nil
}

type closeBoth struct {
	io.ReadCloser
	under io.Closer
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if uerr := c.under.Close(); err == nil {
		err = uerr
	}
	return err
}
